"""Idempotency keys: a POST repeated with the same key replays its first answer.

A request claims its key before it does anything. The answer is stored by the same
transaction that commits the request's change (see `order3.audit.appender`), so a change
can never commit without the answer a retry will get. A request that ends without a stored
answer (bad input, or a server-side failure) releases its claim, and a retry runs afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from order3.audit.appender import AuditAppender

from order3.audit.records import AuditEntry, SealedRecord, utc_timestamp
from order3.domain.errors import Conflict, IdempotencyMismatch
from order3.storage.schema import idempotency_keys as keys

IN_FLIGHT = "in_flight"
DONE = "done"


@dataclass
class IdempotencyClaim:
    """A claimed key, and how to render the answer that will be stored under it."""

    workspace_id: str
    principal_id: str
    key: str
    request_hash: str
    render: Callable[[Any, list[SealedRecord]], tuple[int, bytes]] | None = None
    completed: bool = False


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: bytes


def _this_key(claim: IdempotencyClaim) -> sa.ColumnElement[bool]:
    return sa.and_(
        keys.c.workspace_id == claim.workspace_id,
        keys.c.principal_id == claim.principal_id,
        keys.c.key == claim.key,
    )


async def claim_key(
    appender: AuditAppender, engine: AsyncEngine, claim: IdempotencyClaim
) -> StoredAnswer | None:
    """Claim the key; return the stored answer when this request was already answered.

    Raises:
        IdempotencyMismatch: the key was used with another request body.
        Conflict: a request with this key is still being handled.
    """

    if await _insert_claim(appender, engine, claim):
        return None
    async with engine.connect() as connection:
        row = (await connection.execute(sa.select(keys).where(_this_key(claim)))).one_or_none()
    if row is None:  # released between our insert and this read; the client may retry
        raise Conflict("a request with this Idempotency-Key was just released; retry it")
    if row.request_hash != claim.request_hash:
        raise IdempotencyMismatch(
            "this Idempotency-Key was used with another request; use a new key",
            idempotency_key=claim.key,
        )
    if row.state == IN_FLIGHT:
        raise Conflict(
            "a request with this Idempotency-Key is still in flight", idempotency_key=claim.key
        )
    return StoredAnswer(status_code=row.status_code, body=row.response_body)


_CLAIM_ON_POSTGRESQL = postgresql.insert(keys).on_conflict_do_nothing().returning(keys.c.key)
_CLAIM_ON_SQLITE = sqlite.insert(keys).on_conflict_do_nothing().returning(keys.c.key)


async def _insert_claim(
    appender: AuditAppender, engine: AsyncEngine, claim: IdempotencyClaim
) -> bool:
    values = {
        "workspace_id": claim.workspace_id,
        "principal_id": claim.principal_id,
        "key": claim.key,
        "request_hash": claim.request_hash,
        "state": IN_FLIGHT,
        "created_at": utc_timestamp(),
    }
    if engine.dialect.name == "postgresql":
        # Row locks suffice on PostgreSQL: one statement on its own connection.
        async with engine.begin() as connection:
            result = await connection.execute(_CLAIM_ON_POSTGRESQL, values)
            return result.first() is not None

    # SQLite has one write lock: take it through the appender, this process's one writer,
    # rather than wait on it against the appender's own batches.
    async def insert(connection: AsyncConnection) -> tuple[bool, list[AuditEntry]]:
        result = await connection.execute(_CLAIM_ON_SQLITE, values)
        return result.first() is not None, []

    claimed, _ = await appender.commit(insert)
    return claimed


def answer_of(
    claim: IdempotencyClaim, value: Any, records: list[SealedRecord]
) -> dict[str, Any] | None:
    """The stored answer for ``value``, or None when none is stored.

    Answers of 500 and above are not stored: the claim is released and a retry decides anew.
    """
    if claim.render is None:
        return None
    status_code, body = claim.render(value, records)
    if status_code >= 500:
        return None
    return {
        "claim_workspace_id": claim.workspace_id,
        "claim_principal_id": claim.principal_id,
        "claim_key": claim.key,
        "answer_status": status_code,
        "answer_body": body,
    }


_STORE_ANSWER = (
    keys.update()
    .where(
        keys.c.workspace_id == sa.bindparam("claim_workspace_id"),
        keys.c.principal_id == sa.bindparam("claim_principal_id"),
        keys.c.key == sa.bindparam("claim_key"),
    )
    .values(
        state=DONE,
        status_code=sa.bindparam("answer_status"),
        response_body=sa.bindparam("answer_body"),
    )
)


async def store_answers(connection: AsyncConnection, answers: list[dict[str, Any]]) -> None:
    """Store answers in the transaction that commits their changes, in one round trip."""
    if answers:
        await connection.execute(_STORE_ANSWER, answers)


async def release_claim(appender: AuditAppender, claim: IdempotencyClaim) -> None:
    """Forget an in-flight claim whose request stored no answer."""

    async def delete(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
        await connection.execute(keys.delete().where(_this_key(claim), keys.c.state == IN_FLIGHT))
        return None, []

    await appender.commit(delete)
