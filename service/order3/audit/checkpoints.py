"""Signed checkpoints of the audit log, as C2SP ``tlog-checkpoint`` notes.

A checkpoint commits to the whole log at one size: the note text is the log's origin, the
tree size and the base64 RFC 9162 root hash, each on its own line, signed as a C2SP
``signed-note`` with the audit key (signature type 0x01, Ed25519). Tooling built for
transparency logs can read and verify it.
"""

from __future__ import annotations

import base64
import hashlib

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.signing import SigningKey

ED25519_TYPE = b"\x01"
_DASH = "\u2014"


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A signed tree head: the log at ``tree_size`` records has root ``root_hash``."""

    origin: str
    tree_size: int
    root_hash: bytes
    note: str
    key_id: str
    created_at: str


def note_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte signed-note key ID for an Ed25519 key under ``name``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + raw).digest()[:4]


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"


def sign_checkpoint(origin: str, tree_size: int, root_hash: bytes, key: SigningKey) -> str:
    """The checkpoint as a signed note, signed by ``key`` under the origin as key name."""
    text = checkpoint_text(origin, tree_size, root_hash)
    signature = note_key_id(origin, key.public_key) + key.sign(text.encode())
    return f"{text}\n{_DASH} {origin} {base64.b64encode(signature).decode()}\n"


def open_checkpoint(note: str, origin: str, public_key: Ed25519PublicKey) -> tuple[int, bytes]:
    """Verify a checkpoint note from ``origin``; return its tree size and root hash.

    Raises:
        ValueError: the note is malformed, from another origin, or has no valid signature
            by ``public_key``.
    """
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise ValueError("not a signed note: no blank line before the signatures")
    text += "\n"
    wanted = note_key_id(origin, public_key)
    verified = False
    for line in signatures.splitlines():
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != _DASH or not name or not encoded:
            raise ValueError(f"malformed signature line: {line!r}")
        signature = base64.b64decode(encoded, validate=True)
        if name != origin or signature[:4] != wanted:
            continue  # a signature by another key, a witness for example
        try:
            public_key.verify(signature[4:], text.encode())
        except InvalidSignature:
            raise ValueError("the log's signature does not verify") from None
        verified = True
    if not verified:
        raise ValueError("no signature by the log's key")
    lines = text.splitlines()
    if len(lines) < 3 or lines[0] != origin:
        raise ValueError("not a checkpoint of this log")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise ValueError(f"bad tree size {lines[1]!r}")
    return int(lines[1]), base64.b64decode(lines[2], validate=True)
