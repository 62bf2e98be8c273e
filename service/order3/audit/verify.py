"""Verification of the audit chain: every hash, every signature, and unbroken continuity."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.canonical import canonical_json
from order3.audit.records import GENESIS_HASH, hash_canonical
from order3.audit.signing import verify_record_signature


class StoredRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A record as read back from storage or an export: untrusted until verified."""

    seq: int
    body: str
    hash: str
    signature: str
    key_id: str


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    reason: str


class Report(msgspec.Struct, frozen=True, kw_only=True):
    records: int
    head_hash: str
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class ChainVerifier:
    """Checks records one at a time, in storage order, from sequence number 1.

    A record is bad when its body is not canonical JSON, its sequence number or previous
    hash breaks the chain, its hash does not match its body, or its signature does not
    verify under the key it names. Memory use does not grow with the log.
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = keys
        self._expected_seq, self._prev_hash, self._count = 1, GENESIS_HASH, 0
        self.failure: Failure | None = None

    def feed(self, record: StoredRecord) -> bool:
        """Check the next record; False (and `failure` set) at the first bad one."""
        if self.failure is not None:
            return False
        reason = _check(record, self._expected_seq, self._prev_hash, self._keys)
        if reason is not None:
            self.failure = Failure(seq=record.seq, reason=reason)
            return False
        self._expected_seq, self._prev_hash = self._expected_seq + 1, record.hash
        self._count += 1
        return True

    def report(self) -> Report:
        return Report(records=self._count, head_hash=self._prev_hash, failure=self.failure)


def verify_chain(records: Iterable[StoredRecord], keys: Mapping[str, Ed25519PublicKey]) -> Report:
    """Verify a whole log held in memory or read lazily; see `ChainVerifier`."""
    verifier = ChainVerifier(keys)
    for record in records:
        if not verifier.feed(record):
            break
    return verifier.report()


def _check(
    record: StoredRecord, expected_seq: int, prev_hash: str, keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    if record.seq != expected_seq:
        return f"expected sequence number {expected_seq}, found {record.seq}"
    try:
        body = json.loads(record.body)
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    try:
        canonical = canonical_json(body)
    except ValueError:
        return "body has no RFC 8785 form (a NaN, an infinity, a huge integer or a lone surrogate)"
    if canonical != record.body.encode():
        return "body is not in RFC 8785 canonical form"
    if body.get("seq") != record.seq:
        return f"body names sequence number {body.get('seq')}, stored as {record.seq}"
    if body.get("prev_hash") != prev_hash:
        return "previous hash does not match the record before it"
    if body.get("key_id") != record.key_id:
        return "body names another key id than the record"
    if hash_canonical(canonical) != record.hash:
        return "hash does not match the body"
    key = keys.get(record.key_id)
    if key is None:
        return f"no public key with id {record.key_id}"
    if not verify_record_signature(key, record.hash, record.signature):
        return "signature does not verify"
    return None
