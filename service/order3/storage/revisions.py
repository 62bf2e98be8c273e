"""Keeping every policy revision that decided, and reading back what decisions to re-run.

A revision is stored once, under its id, when a policy engine first sees it and before any
decision names it. Several service processes see the same revision at about the same time, so
the insert does nothing when the row is there already (``ON CONFLICT DO NOTHING``, which both
SQLite and PostgreSQL have): whichever process commits first wrote the one row, and the rest
find it there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from order3.audit.records import utc_timestamp
from order3.audit.verify import StoredRecord
from order3.policy.revisions import PolicyRevision, StoredRevision
from order3.storage.schema import audit_records, policy_revisions

_ENGINE_CHARS = 40  # the width of policy_revisions.engine
_PAGE = 1000


async def store_revision(db: AsyncEngine, revision: PolicyRevision) -> bool:
    """Store ``revision`` unless it is stored already; tell whether this call stored it."""
    insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(policy_revisions)
        .on_conflict_do_nothing(index_elements=["revision"])
        .returning(policy_revisions.c.revision)
    )
    async with db.begin() as connection:
        result = await connection.execute(
            statement,
            {
                "revision": revision.revision,
                "engine": revision.engine[:_ENGINE_CHARS],
                "content": revision.content.canonical(),
                "first_seen_at": utc_timestamp(),
            },
        )
        # RETURNING, not rowcount: the psycopg async driver reports no rowcount here.
        return result.first() is not None


async def load_revisions(db: AsyncEngine, revisions: Iterable[str]) -> dict[str, StoredRevision]:
    """The stored revisions among ``revisions``, by id; unverified."""
    wanted = sorted(set(revisions))
    if not wanted:
        return {}
    async with db.connect() as connection:
        rows = await connection.execute(
            sa.select(policy_revisions).where(policy_revisions.c.revision.in_(wanted))
        )
        return {row.revision: _stored(row) for row in rows}


async def revision_lines(db: AsyncEngine, upto: int) -> AsyncIterator[bytes]:
    """Export lines for the revisions that records 1 to ``upto`` name, oldest first.

    Each is one JSON object on a line:
    ``{"type": "policy_revision", "revision", "engine", "first_seen_at", "content"}``, with the
    content as a JSON object, so an export can re-run its decisions with nothing else.
    """
    named = (
        sa.select(audit_records.c.policy_revision)
        .where(audit_records.c.seq <= upto, audit_records.c.policy_revision.is_not(None))
        .distinct()
    )
    query = (
        sa.select(policy_revisions)
        .where(policy_revisions.c.revision.in_(named))
        .order_by(policy_revisions.c.first_seen_at, policy_revisions.c.revision)
    )
    async with db.connect() as connection:
        rows = list(await connection.execute(query))
    for row in rows:
        stored = _stored(row)
        line: dict[str, Any] = {"type": "policy_revision", **msgspec.structs.asdict(stored)}
        line["content"] = msgspec.json.decode(row.content)
        yield msgspec.json.encode(line) + b"\n"


async def records_between(
    db: AsyncEngine, first: int, last: int | None
) -> AsyncIterator[StoredRecord]:
    """Records ``first`` to ``last`` (to the end when None), in order, a page at a time."""
    after = first - 1
    while True:
        query = sa.select(
            audit_records.c.seq,
            audit_records.c.body,
            audit_records.c.hash,
            audit_records.c.signature,
            audit_records.c.key_id,
        ).where(audit_records.c.seq > after)
        if last is not None:
            query = query.where(audit_records.c.seq <= last)
        async with db.connect() as connection:
            rows = list(await connection.execute(query.order_by(audit_records.c.seq).limit(_PAGE)))
        for row in rows:
            yield StoredRecord(
                seq=row.seq,
                body=row.body,
                hash=row.hash,
                signature=row.signature,
                key_id=row.key_id,
            )
        if len(rows) < _PAGE:
            return
        after = rows[-1].seq


def _stored(row: sa.Row[Any]) -> StoredRevision:
    return StoredRevision(
        revision=row.revision,
        engine=row.engine,
        content=row.content,
        first_seen_at=row.first_seen_at,
    )
