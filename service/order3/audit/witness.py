"""Witnesses and their cosignatures, as C2SP ``tlog-witness`` and ``tlog-cosignature`` v1
specify them.

A witness keeps, for each log it follows, the size and root of the last checkpoint it
cosigned. Shown a newer checkpoint with a consistency proof from that size, it checks the
log's signature and the proof and, only if both hold, cosigns and remembers the new size. A
log that forks or rolls back cannot get a cosignature for the other branch from a witness
that saw one, so a client that requires cosignatures sees one history or none.

A cosignature is a signed-note signature line (signature type 0x04, timestamped Ed25519)::

    — <witness name> base64(key ID (4) || timestamp (8, big-endian) || Ed25519 signature (64))

The key ID is SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]. The signature covers
``cosignature/v1\\n``, ``time <timestamp>\\n`` (decimal, no leading zeros) and then the
checkpoint's note text with its final newline and without any signature line. Witness public
keys are written as C2SP verifier keys, ``<name>+<hex key ID>+<base64(0x04 || key)>``.

Refusals carry the HTTP status ``tlog-witness`` gives them::

    WitnessRefusal
    ├── MalformedRequest   400  unreadable request, or an old size above the checkpoint's
    ├── NotSignedByLog     403  no valid signature by a key the witness trusts for the origin
    ├── UnknownLog         404  the witness follows no log with that origin
    ├── StateConflict      409  the old size is not the size it last cosigned, or a fork
    └── InconsistentProof  422  the consistency proof does not verify
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from order3.audit.checkpoints import (
    DASH,
    Cosignature,
    NoteSignature,
    note_key_id,
    note_vkey,
    open_checkpoint,
    split_note,
)
from order3.audit.merkle import verify_consistency

COSIGNATURE_TYPE = b"\x04"
MAX_TIMESTAMP = 2**63 - 1
MAX_PROOF_LINES = 63
_SIGNATURE_BYTES = 8 + 64


def valid_key_name(name: str) -> bool:
    """Signed-note key names are non-empty, with no Unicode space and no plus sign."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


@dataclass(frozen=True)
class WitnessKey:
    """A witness's name and public key: what a verifier trusts it by."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return note_key_id(self.name, self.public_key, COSIGNATURE_TYPE)

    @property
    def vkey(self) -> str:
        return note_vkey(self.name, self.public_key, COSIGNATURE_TYPE)

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        """Read a C2SP verifier key for a timestamped Ed25519 cosigner.

        Raises:
            ValueError: the text is not ``name+keyid+base64``, the key is not type 0x04 with
                32 bytes, or the key ID does not match the name and key.
        """
        name, _, rest = vkey.strip().partition("+")
        key_hex, _, material = rest.partition("+")
        if not valid_key_name(name):
            raise ValueError(f"witness key {vkey!r}: the name is empty or has a space or '+'")
        if len(key_hex) != 8 or any(c not in "0123456789abcdefABCDEF" for c in key_hex):
            raise ValueError(f"witness key {vkey!r}: the key ID is not 8 hex digits")
        try:
            raw = base64.b64decode(material, validate=True)
        except ValueError:
            raise ValueError(f"witness key {vkey!r}: the key is not base64") from None
        if len(raw) != 33 or raw[:1] != COSIGNATURE_TYPE:
            raise ValueError(
                f"witness key {vkey!r}: expected signature type 0x04 and a 32-byte Ed25519 key"
            )
        key = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if key.key_id != bytes.fromhex(key_hex):
            raise ValueError(f"witness key {vkey!r}: the key ID does not match the name and key")
        return key


def parse_witnesses(setting: str) -> list[WitnessKey]:
    """Comma-separated verifier keys, as ``ORDER3_AUDIT_WITNESSES`` holds them."""
    return [WitnessKey.parse(part) for part in setting.split(",") if part.strip()]


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The exact bytes a v1 cosignature signs, over a checkpoint's note text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(name: str, private_key: Ed25519PrivateKey, text: str, timestamp: int) -> str:
    """The signature line of a cosignature over the note text ``text``, made at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp} is out of range")
    key_id = note_key_id(name, private_key.public_key(), COSIGNATURE_TYPE)
    signature = private_key.sign(cosignature_message(text, timestamp))
    encoded = base64.b64encode(key_id + timestamp.to_bytes(8, "big") + signature).decode()
    return f"{DASH} {name} {encoded}"


def open_cosignature(signature: NoteSignature, text: str, witness: WitnessKey) -> Cosignature:
    """Verify one signature line as ``witness``'s cosignature over the note text ``text``.

    Raises:
        ValueError: the line is by another key, is not a timestamped signature, or does not
            verify.
    """
    if signature.name != witness.name or signature.key_id != witness.key_id:
        raise ValueError(f"the signature line is not by witness {witness.name}")
    if len(signature.signature) != _SIGNATURE_BYTES:
        raise ValueError(f"the cosignature by witness {witness.name} is not 76 bytes")
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise ValueError(f"the cosignature by witness {witness.name} has a bad timestamp")
    try:
        witness.public_key.verify(signature.signature[8:], cosignature_message(text, timestamp))
    except InvalidSignature:
        raise ValueError(f"the cosignature by witness {witness.name} does not verify") from None
    return Cosignature(witness=witness.name, timestamp=timestamp, signature_line=signature.line)


def verify_cosignatures(note: str, witnesses: Iterable[WitnessKey]) -> list[Cosignature]:
    """Each witness's cosignature in ``note``, all verified.

    Raises:
        ValueError: naming the first witness with no cosignature, or whose cosignature does
            not verify.
    """
    text, signatures = split_note(note)
    found = []
    for witness in witnesses:
        own = [s for s in signatures if s.name == witness.name and s.key_id == witness.key_id]
        if not own:
            raise ValueError(f"no cosignature by witness {witness.name}")
        found += [open_cosignature(signature, text, witness) for signature in own]
    return found


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """A ``tlog-witness`` add-checkpoint request body."""
    lines = [f"old {old_size}", *(base64.b64encode(node).decode() for node in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """The old size, consistency proof and checkpoint note of an add-checkpoint request.

    Raises:
        MalformedRequest: the body is not in that shape.
    """
    head, separator, note = body.decode("utf-8", errors="strict").partition("\n\n")
    old, *proof_lines = head.split("\n")
    size = old.removeprefix("old ")
    if not separator or size == old or not size.isdigit() or size != str(int(size)):
        raise MalformedRequest("the request does not start with an `old <size>` line")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
    try:
        proof = [base64.b64decode(line, validate=True) for line in proof_lines]
    except ValueError:
        raise MalformedRequest("a consistency proof line is not base64") from None
    return int(size), proof, note


class WitnessRefusal(Exception):
    """The witness will not cosign; ``status`` is the HTTP status tlog-witness gives."""

    status: ClassVar[int] = 400


class MalformedRequest(WitnessRefusal):
    status = 400


class NotSignedByLog(WitnessRefusal):
    status = 403


class UnknownLog(WitnessRefusal):
    status = 404


class StateConflict(WitnessRefusal):
    status = 409

    def __init__(self, detail: str, size: int) -> None:
        super().__init__(detail)
        self.size = size
        """The size of the last checkpoint the witness cosigned for the origin."""


class InconsistentProof(WitnessRefusal):
    status = 422


class Witness:
    """A witness for the logs in ``logs`` (origin to the keys it may sign with).

    Its state, the size and root hash it last cosigned per origin, is a JSON file; checking
    a request against it and writing the new state happen under an exclusive lock, so two
    requests can never both move it, and one can never move it back.
    """

    def __init__(
        self,
        name: str,
        private_key: Ed25519PrivateKey,
        state_path: Path,
        logs: Mapping[str, Sequence[Ed25519PublicKey]],
    ) -> None:
        if not valid_key_name(name):
            raise ValueError(f"witness name {name!r} is empty or has a space or '+'")
        self.key = WitnessKey(name, private_key.public_key())
        self._private_key = private_key
        self._state_path = state_path
        self._logs = logs

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """The size and root hash last cosigned for ``origin``, if any."""
        return self._load().get(origin)

    def add_checkpoint(
        self, old_size: int, proof: Sequence[bytes], note: str, *, now: int | None = None
    ) -> str:
        """Cosign ``note`` if it extends the last checkpoint cosigned for its origin.

        Returns the cosignature's signature line (without a newline).

        Raises:
            WitnessRefusal: one of its subclasses, as the module docstring lists.
        """
        try:
            text, _ = split_note(note)
        except ValueError as exc:
            raise MalformedRequest(str(exc)) from None
        origin = text.partition("\n")[0]
        keys = self._logs.get(origin)
        if keys is None:
            raise UnknownLog(f"this witness follows no log {origin!r}")
        try:
            size, root = open_checkpoint(note, origin, keys)
        except ValueError as exc:
            raise NotSignedByLog(str(exc)) from None
        if old_size > size:
            raise MalformedRequest(f"old size {old_size} is above the checkpoint's {size}")
        if len(proof) > MAX_PROOF_LINES:
            raise MalformedRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
        with self._locked():
            state = self._load()
            self._check(state.get(origin), old_size, size, root, proof)
            timestamp = int(time.time()) if now is None else now
            line = cosign(self.key.name, self._private_key, text, timestamp)
            state[origin] = (size, root)
            self._save(state)
        return line

    @staticmethod
    def _check(
        seen: tuple[int, bytes] | None,
        old_size: int,
        size: int,
        root: bytes,
        proof: Sequence[bytes],
    ) -> None:
        seen_size, seen_root = seen or (0, None)
        if old_size != seen_size:
            raise StateConflict(f"the last checkpoint cosigned has size {seen_size}", seen_size)
        if seen_root is None or old_size == 0:
            if proof:
                raise InconsistentProof("a proof from size 0 must be empty")
            return
        if old_size == size and root != seen_root:
            raise StateConflict(
                f"a checkpoint of size {size} with another root was cosigned: a fork", seen_size
            )
        if not verify_consistency(old_size, size, seen_root, root, proof):
            raise InconsistentProof(
                f"the consistency proof from {old_size} to {size} does not verify"
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self._state_path.with_name(self._state_path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> dict[str, tuple[int, bytes]]:
        try:
            document = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return {}
        return {
            origin: (int(entry["size"]), base64.b64decode(entry["root_hash"]))
            for origin, entry in document["logs"].items()
        }

    def _save(self, logs: dict[str, tuple[int, bytes]]) -> None:
        document = {
            "witness": self.key.vkey,
            "logs": {
                origin: {"size": size, "root_hash": base64.b64encode(root).decode()}
                for origin, (size, root) in logs.items()
            },
        }
        # Written aside and renamed, so a crash leaves the old state or the new, never half.
        partial = self._state_path.with_name(self._state_path.name + ".partial")
        with partial.open("w") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self._state_path)
