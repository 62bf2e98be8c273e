"""Verification of the audit chain: every hash, every signature, and unbroken continuity.

Checking a record costs an RFC 8785 re-encoding, a SHA-256 and an Ed25519 verification, and
needs nothing from the records around it but the previous record's stored hash. So with
``jobs`` above one, `ChainVerifier` sends contiguous batches to worker processes, each batch
with the sequence number and previous hash its first record must continue from, and reads
the verdicts back in order. A batch's verdict assumes every record before it was good; the
verifier stops at the first batch that holds a bad record, so the failure it reports, and the
count and head before it, are exactly what checking one record at a time would give.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from types import TracebackType
from typing import Any, Self

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.canonical import canonical_json, same_key_order
from order3.audit.records import GENESIS_HASH, hash_canonical
from order3.audit.signing import verify_record_signature

DEFAULT_BATCH = 1000


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


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least one."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class ChainVerifier:
    """Checks records in storage order, from sequence number 1.

    A record is bad when its body is not canonical JSON, its sequence number or previous
    hash breaks the chain, its hash does not match its body, or its signature does not
    verify under the key it names. Memory use does not grow with the log: with ``jobs``
    above one, at most ``2 * jobs`` batches of ``batch`` records are in flight.

    With ``jobs`` above one, `feed` answers for the records checked so far, which may lag
    behind the records fed; `report` waits for the rest. Call `report` (or `close`, or use
    the verifier as a context manager) to stop the worker processes.
    """

    def __init__(
        self, keys: Mapping[str, Ed25519PublicKey], *, jobs: int = 1, batch: int = DEFAULT_BATCH
    ) -> None:
        if jobs < 1 or batch < 1:
            raise ValueError(f"jobs and batch must be at least 1, got {jobs} and {batch}")
        self._keys, self._jobs, self._batch_size = keys, jobs, batch
        self._expected_seq, self._prev_hash, self._count = 1, GENESIS_HASH, 0
        self.failure: Failure | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._batch: list[StoredRecord] = []
        self._in_flight: deque[tuple[list[StoredRecord], Future[_Verdict]]] = deque()
        self._next_seq, self._next_prev_hash = 1, GENESIS_HASH

    def feed(self, record: StoredRecord) -> bool:
        """Check the next record; False (and `failure` set) once a bad one is found."""
        if self.failure is not None:
            return False
        if self._jobs == 1:
            self._settle([record], _check_batch([record], *self._continuation(), self._keys))
            return self.failure is None
        self._batch.append(record)
        if len(self._batch) >= self._batch_size:
            self._submit()
        return self.failure is None

    def report(self) -> Report:
        """The outcome over every record fed, once all of them are checked."""
        if self._batch and self.failure is None:
            if self._pool is None:  # fewer records than one batch: not worth a process
                batch, self._batch = self._batch, []
                self._settle(batch, _check_batch(batch, *self._continuation(), self._keys))
            else:
                self._submit()
        while self._in_flight:
            self._collect()
        self.close()
        return Report(records=self._count, head_hash=self._prev_hash, failure=self.failure)

    def close(self) -> None:
        """Stop the worker processes, dropping whatever is still in flight."""
        for _, future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _continuation(self) -> tuple[int, str]:
        """Where the next record checked in this process must continue the chain."""
        return self._expected_seq, self._prev_hash

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        if self._pool is None:
            self._pool = _start_pool(self._keys, self._jobs)
        encoded = _BATCH_ENCODER.encode(batch)
        future = self._pool.submit(_check_encoded, encoded, self._next_seq, self._next_prev_hash)
        self._in_flight.append((batch, future))
        self._next_seq, self._next_prev_hash = self._next_seq + len(batch), batch[-1].hash
        while len(self._in_flight) > 2 * self._jobs or (
            self._in_flight and self._in_flight[0][1].done()
        ):
            self._collect()

    def _collect(self) -> None:
        batch, future = self._in_flight.popleft()
        self._settle(batch, future.result())
        if self.failure is not None:
            self.close()

    def _settle(self, batch: list[StoredRecord], verdict: _Verdict) -> None:
        """Move past the good records of a checked batch; note its first bad one."""
        good = len(batch) if verdict is None else verdict[0]
        if good:
            self._expected_seq += good
            self._prev_hash = batch[good - 1].hash
            self._count += good
        if verdict is not None:
            self.failure = Failure(seq=batch[good].seq, reason=verdict[1])


def verify_chain(
    records: Iterable[StoredRecord], keys: Mapping[str, Ed25519PublicKey], *, jobs: int = 1
) -> Report:
    """Verify a whole log held in memory or read lazily; see `ChainVerifier`."""
    verifier = ChainVerifier(keys, jobs=jobs)
    with verifier:
        for record in records:
            if not verifier.feed(record):
                break
        return verifier.report()


_Verdict = tuple[int, str] | None
"""None when a whole batch is good, else the offset of its first bad record and why."""


def _check_batch(
    batch: list[StoredRecord],
    first_seq: int,
    prev_hash: str,
    keys: Mapping[str, Ed25519PublicKey],
) -> _Verdict:
    for offset, record in enumerate(batch):
        reason = _check(record, first_seq + offset, prev_hash, keys)
        if reason is not None:
            return offset, reason
        prev_hash = record.hash
    return None


def check_record(
    record: StoredRecord, keys: Mapping[str, Ed25519PublicKey]
) -> dict[str, Any] | str:
    """Check one record on its own, as the chain check does but for continuity: its body
    when it is good, else why it is bad. Filtered exports are checked this way."""
    parsed = _certainly_canonical(record.body) or _canonical_or_why_not(record.body)
    if isinstance(parsed, str):
        return parsed
    body = parsed[0]
    reason = _check(record, record.seq, str(body.get("prev_hash")), keys)
    return body if reason is None else reason


def _check(
    record: StoredRecord, expected_seq: int, prev_hash: str, keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    if record.seq != expected_seq:
        return f"expected sequence number {expected_seq}, found {record.seq}"
    parsed = _certainly_canonical(record.body) or _canonical_or_why_not(record.body)
    if isinstance(parsed, str):
        return parsed
    body, canonical = parsed
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


def _canonical_or_why_not(text: str) -> tuple[dict[str, Any], bytes] | str:
    """The body and its bytes when ``text`` is the RFC 8785 form of a JSON object, else why."""
    try:
        body = json.loads(text)
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    try:
        canonical = canonical_json(body)
    except ValueError:
        return "body has no RFC 8785 form (a NaN, an infinity, a huge integer or a lone surrogate)"
    if canonical != text.encode():
        return "body is not in RFC 8785 canonical form"
    return body, canonical


# The fast path below re-encodes with msgspec, in C, instead of the pure-Python RFC 8785
# encoder, which takes most of a record's checking time. Both give the same bytes on the
# domain `order3.audit.canonical` describes: no floats, no integers beyond 2**53 and no keys
# whose two orders may differ. When a body is outside that domain, or is not canonical,
# `_canonical_or_why_not` decides.
def _refuse_float(text: str) -> Any:
    raise ValueError(f"{text} is a float: left to the exact check")


_FAST_DECODER = msgspec.json.Decoder(float_hook=_refuse_float)
_FAST_ENCODER = msgspec.json.Encoder(order="sorted")
# In compact JSON a number follows ":", "," or "["; 16 digits may exceed 2**53 - 1.
_LONG_NUMBER = re.compile(rb"[:,\[]-?[0-9]{16}")


def _certainly_canonical(text: str) -> tuple[dict[str, Any], bytes] | None:
    """The body and its bytes when ``text`` is surely canonical; None when unsure."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:
        return None
    if _LONG_NUMBER.search(raw) or not same_key_order(raw):
        return None
    try:
        body = _FAST_DECODER.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(body, dict) or _FAST_ENCODER.encode(body) != raw:
        return None
    return body, raw


# Worker processes: batches travel as MessagePack, keys once, as raw bytes, at start.
_BATCH_ENCODER = msgspec.msgpack.Encoder()
_BATCH_DECODER = msgspec.msgpack.Decoder(list[StoredRecord])
_worker_keys: dict[str, Ed25519PublicKey] = {}


def _start_pool(keys: Mapping[str, Ed25519PublicKey], jobs: int) -> ProcessPoolExecutor:
    raw = {
        key_id: key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        for key_id, key in keys.items()
    }
    # "spawn": the caller may run an event loop and database threads that must not be forked.
    return ProcessPoolExecutor(
        jobs, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(raw,)
    )


def _start_worker(raw_keys: dict[str, bytes]) -> None:
    _worker_keys.update(
        {key_id: Ed25519PublicKey.from_public_bytes(raw) for key_id, raw in raw_keys.items()}
    )


def _check_encoded(encoded: bytes, first_seq: int, prev_hash: str) -> _Verdict:
    return _check_batch(_BATCH_DECODER.decode(encoded), first_seq, prev_hash, _worker_keys)
