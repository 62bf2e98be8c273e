"""The one write path: every change commits in the same transaction as its audit records.

Appending to a hash chain serializes writers on the chain head. Taking the head lock per
request, across several round trips, caps a process at a few hundred appends a second. So
each process runs appender tasks that gather whatever changes are waiting and commit them
together (a group commit):

1. open one transaction (SQLite: ``BEGIN IMMEDIATE``) and run every change in it, then
   write the changes to running spend totals they gathered, in key order;
2. lock the chain head (``SELECT ... FOR UPDATE`` on PostgreSQL), seal the batch's records
   after it, insert them in one statement and move the head;
3. store each idempotent request's answer;
4. commit, then answer every caller.

A change that raises fails alone: the transaction is rolled back, its caller gets the
exception, and the rest of the batch runs again without it. Changes rarely fail, so this
costs less than a savepoint around every change.

The head is locked only from step 2 to the commit, once per batch. On PostgreSQL a process
runs several such pipelines at once, so one batch writes its changes while another holds the
head; they, and other processes on the same database, queue on that row lock, so the chain
never forks and never skips a number. (SQLite has one write lock and runs one pipeline.) A
failed commit fails every change in the batch: nothing is half-written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.masking import DecisionMasker
from order3.audit.records import AuditEntry, ChainHead, SealedRecord, seal
from order3.audit.signing import SigningKey
from order3.storage import schema
from order3.storage.database import is_sqlite
from order3.storage.idempotency import IdempotencyClaim, answer_of, store_answers
from order3.storage.repositories import forget_spend_totals, write_spend_totals

log = structlog.get_logger(__name__)

T = TypeVar("T")

Work = Callable[[AsyncConnection], Awaitable[tuple[T, list[AuditEntry]]]]
"""A change: it writes through the connection and returns its value and audit entries."""


@dataclass
class _Pending(Generic[T]):
    work: Work[T]
    claim: IdempotencyClaim | None
    future: asyncio.Future[tuple[T, list[SealedRecord]]]
    value: Any = None
    entries: list[AuditEntry] = field(default_factory=list)
    records: list[SealedRecord] = field(default_factory=list)
    answer_stored: bool = False


class _ChangeFailed(Exception):
    def __init__(self, pending: _Pending[Any], cause: Exception) -> None:
        super().__init__(repr(cause))
        self.pending = pending
        self.cause = cause


class AuditAppender:
    """Commits changes with their audit records, in batches, from one task per process."""

    def __init__(
        self,
        engine: AsyncEngine,
        key: SigningKey,
        *,
        masker: DecisionMasker | None = None,
        max_batch: int = 64,
        pipelines: int = 4,
    ) -> None:
        self._engine = engine
        self._key = key
        self._masker = masker
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending[Any]] = asyncio.Queue()
        # SQLite has a single write lock, so parallel batches would only queue on it.
        self._pipelines = 1 if is_sqlite(engine) else pipelines
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def key(self) -> SigningKey:
        return self._key

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"audit-appender-{n}")
            for n in range(self._pipelines)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def commit(
        self, work: Work[T], *, claim: IdempotencyClaim | None = None
    ) -> tuple[T, list[SealedRecord]]:
        """Run ``work`` in the next batch; return its value and its sealed records.

        Raises whatever ``work`` raised (nothing of it is written), or the storage error
        that failed the batch's commit.
        """
        if not self._tasks:
            raise RuntimeError("the audit appender is not running")
        future: asyncio.Future[tuple[T, list[SealedRecord]]] = (
            asyncio.get_running_loop().create_future()
        )
        await self._queue.put(_Pending(work=work, claim=claim, future=future))
        return await future

    async def record(self, entries: list[AuditEntry]) -> list[SealedRecord]:
        """Append records that come with no other change."""

        async def nothing_else(_: AsyncConnection) -> tuple[None, list[AuditEntry]]:
            return None, entries

        _, sealed = await self.commit(nothing_else)
        return sealed

    async def _run(self) -> None:
        # Each pipeline keeps its connection between batches; a failed batch replaces it.
        connection: AsyncConnection | None = None
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    connection = connection or await self._connect()
                    await self._commit_batch(connection, batch)
                except Exception as exc:  # answer the callers; the appender must keep running
                    log.error("audit.batch_failed", size=len(batch), error=repr(exc))
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(exc)
                    if connection is not None:
                        await connection.close()
                        connection = None
        finally:
            if connection is not None:
                await asyncio.shield(connection.close())

    async def _connect(self) -> AsyncConnection:
        connection = await self._engine.connect()
        if is_sqlite(self._engine):
            connection = await connection.execution_options(sqlite_begin="IMMEDIATE")
        return connection

    async def _commit_batch(self, connection: AsyncConnection, batch: list[_Pending[Any]]) -> None:
        remaining = batch
        while remaining:
            try:
                sealed = await self._try_commit(connection, remaining)
            except _ChangeFailed as failed:
                failed.pending.future.set_exception(failed.cause)
                remaining = [pending for pending in remaining if pending is not failed.pending]
                continue
            for pending in remaining:
                if pending.claim is not None and pending.answer_stored:
                    pending.claim.completed = True
                pending.future.set_result((pending.value, pending.records))
            if sealed:
                log.debug("audit.appended", records=len(sealed), last_seq=sealed[-1].seq)
            return

    async def _try_commit(
        self, connection: AsyncConnection, batch: list[_Pending[Any]]
    ) -> list[SealedRecord]:
        forget_spend_totals(connection)  # from an attempt that was rolled back
        async with connection.begin():
            for pending in batch:
                try:
                    pending.value, pending.entries = await pending.work(connection)
                except Exception as exc:  # leaving the block rolls the whole batch back
                    raise _ChangeFailed(pending, exc) from exc
            await write_spend_totals(connection)
            entries = [entry for pending in batch for entry in pending.entries]
            sealed = await self._append(connection, entries) if entries else []
            position, answers = 0, []
            for pending in batch:
                pending.records = sealed[position : position + len(pending.entries)]
                position += len(pending.entries)
                if pending.claim is not None:
                    answer = answer_of(pending.claim, pending.value, pending.records)
                    pending.answer_stored = answer is not None
                    answers += [answer] if answer is not None else []
            await store_answers(connection, answers)
        return sealed

    async def _append(
        self, connection: AsyncConnection, entries: list[AuditEntry]
    ) -> list[SealedRecord]:
        if self._masker:
            entries = [_masked(entry, self._masker) for entry in entries]
        head_row = (await connection.execute(_LOCK_HEAD)).one()
        sealed = list(seal(entries, ChainHead(head_row.seq, head_row.hash), self._key))
        await connection.execute(
            _INSERT_RECORDS,
            [_record_row(entry, record) for entry, record in zip(entries, sealed, strict=True)],
        )
        rules = [
            {"seq": record.seq, "rule_id": rule}
            for entry, record in zip(entries, sealed, strict=True)
            if entry.decision is not None
            for rule in dict.fromkeys(entry.decision.get("rules") or ())
        ]
        if rules:
            await connection.execute(_INSERT_RULES, rules)
        await connection.execute(_MOVE_HEAD, {"seq": sealed[-1].seq, "hash": sealed[-1].hash})
        return sealed


_HEAD = schema.audit_chain_head
_LOCK_HEAD = sa.select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_RECORDS = schema.audit_records.insert()
_INSERT_RULES = schema.audit_record_rules.insert()
_MOVE_HEAD = _HEAD.update().where(_HEAD.c.id == 1)


def _masked(entry: AuditEntry, masker: DecisionMasker) -> AuditEntry:
    if entry.decision is None:
        return entry
    return msgspec.structs.replace(entry, decision=masker.mask(entry.decision))


def _record_row(entry: AuditEntry, record: SealedRecord) -> dict[str, Any]:
    decision = entry.decision or {}
    return {
        "seq": record.seq,
        "recorded_at": record.recorded_at,
        "workspace_id": entry.workspace_id,
        "actor_id": entry.actor["id"],
        "actor_type": entry.actor["type"],
        "action": entry.action,
        "subject_type": entry.subject["type"],
        "subject_id": entry.subject["id"],
        "draft_id": entry.draft_id,
        "outcome": entry.outcome,
        "body": record.canonical.decode(),
        "hash": record.hash,
        "signature": record.signature,
        "key_id": record.key_id,
        "decision_id": decision.get("id"),
        "policy_revision": decision.get("policy_revision"),
    }
