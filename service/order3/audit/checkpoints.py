"""Signed checkpoints of the audit log, as C2SP ``tlog-checkpoint`` notes.

A checkpoint commits to the whole log at one size: the note text is the log's origin, the
tree size and the base64 RFC 9162 root hash, each on its own line, signed as a C2SP
``signed-note`` with the audit key (signature type 0x01, Ed25519). Tooling built for
transparency logs can read and verify it. Witnesses add their cosignatures as further
signature lines (see ``order3.audit.witness``).

When the signing key is rotated, checkpoints signed before keep verifying under the key that
signed them, so verifiers take every key the log has published, not only the newest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.signing import SigningKey

ED25519_TYPE = b"\x01"
DASH = "\u2014"


class Cosignature(msgspec.Struct, frozen=True, kw_only=True):
    """A witness's statement that it saw this checkpoint extend what it saw before."""

    witness: str
    """The witness's key name."""

    timestamp: int
    """When the witness cosigned, in POSIX seconds."""

    signature_line: str
    """The signed-note signature line, without its newline."""


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A signed tree head: the log at ``tree_size`` records has root ``root_hash``."""

    origin: str
    tree_size: int
    root_hash: bytes
    note: str
    """The note as the log signed it: text, blank line, the log's signature line."""

    key_id: str
    created_at: str
    cosignatures: tuple[Cosignature, ...] = ()

    @property
    def cosigned_note(self) -> str:
        """The note with every cosignature line after the log's own signature."""
        return self.note + "".join(c.signature_line + "\n" for c in self.cosignatures)


class NoteSignature(msgspec.Struct, frozen=True):
    """One signature line of a signed note, decoded but not verified."""

    name: str
    key_id: bytes
    signature: bytes
    line: str


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_id(
    name: str, public_key: Ed25519PublicKey, signature_type: bytes = ED25519_TYPE
) -> bytes:
    """The 4-byte signed-note key ID for an Ed25519 key under ``name``."""
    return hashlib.sha256(
        name.encode() + b"\n" + signature_type + raw_public_key(public_key)
    ).digest()[:4]


def note_vkey(name: str, public_key: Ed25519PublicKey, signature_type: bytes = ED25519_TYPE) -> str:
    """The C2SP verifier key: ``name+<hex key ID>+<base64(type || public key)>``."""
    key_id = note_key_id(name, public_key, signature_type).hex()
    material = base64.b64encode(signature_type + raw_public_key(public_key)).decode()
    return f"{name}+{key_id}+{material}"


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"


def sign_checkpoint(origin: str, tree_size: int, root_hash: bytes, key: SigningKey) -> str:
    """The checkpoint as a signed note, signed by ``key`` under the origin as key name."""
    text = checkpoint_text(origin, tree_size, root_hash)
    signature = note_key_id(origin, key.public_key) + key.sign(text.encode())
    return f"{text}\n{DASH} {origin} {base64.b64encode(signature).decode()}\n"


def parse_signature_line(line: str) -> NoteSignature:
    """One signed-note signature line, decoded but not verified.

    Raises:
        ValueError: the line is not ``— <name> <base64 of at least 4 bytes>``.
    """
    dash, _, rest = line.partition(" ")
    name, _, encoded = rest.partition(" ")
    if dash != DASH or not name or not encoded or " " in encoded:
        raise ValueError(f"malformed signature line: {line!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError(f"signature line is not base64: {line!r}") from None
    if len(raw) < 4:
        raise ValueError(f"signature line too short: {line!r}")
    return NoteSignature(name, raw[:4], raw[4:], line)


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """A signed note's text (with its final newline) and its signature lines.

    Raises:
        ValueError: the note has no blank line before its signatures, or a malformed
            signature line.
    """
    text, separator, lines = note.rpartition("\n\n")
    if not separator:
        raise ValueError("not a signed note: no blank line before the signatures")
    signatures = [parse_signature_line(line) for line in lines.splitlines()]
    if not signatures:
        raise ValueError("not a signed note: no signature lines")
    return text + "\n", signatures


def open_checkpoint(
    note: str, origin: str, public_keys: Ed25519PublicKey | Iterable[Ed25519PublicKey]
) -> tuple[int, bytes]:
    """Verify a checkpoint note from ``origin``; return its tree size and root hash.

    ``public_keys`` are the keys the log may have signed with (every key it has used, when
    it rotated its key); one valid signature by any of them is enough. Signature lines by
    other keys, a witness's for example, are ignored, as signed notes require.

    Raises:
        ValueError: the note is malformed, from another origin, carries a signature by one
            of ``public_keys`` that does not verify, or none by any of them.
    """
    keys = [public_keys] if isinstance(public_keys, Ed25519PublicKey) else list(public_keys)
    text, signatures = split_note(note)
    verified = False
    for signature in signatures:
        if signature.name != origin:
            continue
        candidates = [key for key in keys if note_key_id(origin, key) == signature.key_id]
        if not candidates:
            continue  # a key this verifier was not given
        if not any(_verifies(key, signature.signature, text) for key in candidates):
            raise ValueError("the log's signature does not verify")
        verified = True
    if not verified:
        raise ValueError("no signature by the log's key")
    lines = text.splitlines()
    if len(lines) < 3 or lines[0] != origin:
        raise ValueError("not a checkpoint of this log")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise ValueError(f"bad tree size {lines[1]!r}")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != hashlib.sha256().digest_size:
        raise ValueError(f"bad root hash {lines[2]!r}")
    return int(lines[1]), root


def _verifies(key: Ed25519PublicKey, signature: bytes, text: str) -> bool:
    try:
        key.verify(signature, text.encode())
    except InvalidSignature:
        return False
    return True
