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


def verify_chain(records: Iterable[StoredRecord], keys: Mapping[str, Ed25519PublicKey]) -> Report:
    """Check records in storage order; stop at, and name, the first bad one.

    The records must be the whole log from sequence number 1. A record is bad when its body
    is not canonical JSON, its sequence number or previous hash breaks the chain, its hash
    does not match its body, or its signature does not verify under the key it names.
    """
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for record in records:
        reason = _check(record, expected_seq, prev_hash, keys)
        if reason is not None:
            return Report(
                records=count, head_hash=prev_hash, failure=Failure(seq=record.seq, reason=reason)
            )
        expected_seq, prev_hash, count = expected_seq + 1, record.hash, count + 1
    return Report(records=count, head_hash=prev_hash)


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
    canonical = canonical_json(body)
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
