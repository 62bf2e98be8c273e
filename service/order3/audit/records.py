"""Audit records: what is appended, and how a record is sealed into the chain.

An `AuditEntry` is what a change asks to have recorded. Sealing gives it its place in the
chain: a sequence number, the time, the previous record's hash, its own hash over the RFC 8785
encoding of its body, and an Ed25519 signature. ``docs/audit-format.md`` specifies the body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from order3.audit.canonical import HASH_PREFIX, canonical_json
from order3.audit.signing import SigningKey

FORMAT_VERSION = 1
GENESIS_HASH = HASH_PREFIX + "0" * 64


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A record waiting for its place in the chain."""

    workspace_id: str | None
    actor: dict[str, str]
    action: str
    subject: dict[str, str]
    outcome: str | None = None
    decision: dict[str, Any] | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def draft_id(self) -> str | None:
        return self.subject["id"] if self.subject.get("type") == "draft" else None


class SealedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A record in the chain, as stored and as served."""

    seq: int
    recorded_at: str
    body: dict[str, Any]
    canonical: bytes
    hash: str
    signature: str
    key_id: str


class ChainHead(msgspec.Struct, frozen=True):
    seq: int
    hash: str


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``, the only time format records carry."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_body(
    entry: AuditEntry, *, seq: int, recorded_at: str, prev_hash: str, key_id: str
) -> dict[str, Any]:
    """The JSON object a record's hash covers."""
    return {
        "format": FORMAT_VERSION,
        "seq": seq,
        "recorded_at": recorded_at,
        "workspace_id": entry.workspace_id,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "outcome": entry.outcome,
        "decision": entry.decision,
        "details": entry.details,
        "prev_hash": prev_hash,
        "key_id": key_id,
    }


def hash_canonical(canonical: bytes) -> str:
    return HASH_PREFIX + hashlib.sha256(canonical).hexdigest()


def seal(entries: Iterable[AuditEntry], head: ChainHead, key: SigningKey) -> Iterator[SealedRecord]:
    """Chain ``entries`` after ``head``, in order, signing each with ``key``."""
    seq, prev_hash = head.seq, head.hash
    recorded_at = utc_timestamp()
    for entry in entries:
        seq += 1
        body = record_body(
            entry, seq=seq, recorded_at=recorded_at, prev_hash=prev_hash, key_id=key.key_id
        )
        canonical = canonical_json(body)
        record_hash = hash_canonical(canonical)
        yield SealedRecord(
            seq=seq,
            recorded_at=recorded_at,
            body=body,
            canonical=canonical,
            hash=record_hash,
            signature=key.sign_record(record_hash),
            key_id=key.key_id,
        )
        prev_hash = record_hash
