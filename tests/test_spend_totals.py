"""The running spend totals the budget and agent rules read: concurrent changes move them
exactly, and upgrading a database that already holds drafts counts those drafts in."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.audit.appender import Work
from order3.audit.records import AuditEntry
from order3.config import Settings
from order3.runtime import open_storage
from order3.storage import repositories as repo
from order3.storage.database import create_engine, migrate
from order3.storage.schema import drafts, spend_totals, workspaces
from support.api import Workspace

BEFORE_TOTALS = "0008"


def test_concurrent_changes_to_the_same_totals_all_commit_exactly(
    settings: Settings, workspace: Workspace
) -> None:
    """Changes that move the same totals in opposite orders, committed concurrently (several
    batches at once on PostgreSQL), all commit, and each total is the sum of its moves."""
    subjects = ["loc_a", "loc_b", "loc_c"]

    def moving(order: list[str], minor_units: int) -> Work[None]:
        async def work(connection: AsyncConnection) -> tuple[None, list[AuditEntry]]:
            for subject in order:
                repo.add_to_spend_total(
                    connection,
                    workspace.id,
                    measure=repo.EXECUTED_AT_LOCATION,
                    subject_id=subject,
                    period="2026-12",
                    minor_units=minor_units,
                    currency="USD",
                )
                await connection.execute(sa.select(sa.literal(1)))
            return None, []

        return work

    async def run() -> dict[str, int]:
        async with open_storage(settings) as (db, _, appender):
            changes = [moving(subjects if n % 2 else subjects[::-1], n) for n in range(1, 201)]
            await asyncio.gather(*(appender.commit(change) for change in changes))
            async with db.connect() as connection:
                keys = [(repo.EXECUTED_AT_LOCATION, subject, "2026-12") for subject in subjects]
                totals = await repo.spend_totals_of(connection, workspace.id, "USD", keys)
                return {subject: total for (_, subject, _), total in totals.items()}

    assert asyncio.run(run()) == dict.fromkeys(subjects, sum(range(1, 201)))


def draft(number: int, **values: Any) -> dict[str, Any]:
    row = {
        "id": f"drf_{number}",
        "workspace_id": "wsp_old",
        "kind": "purchase_order",
        "state": "pending",
        "payload": {"location_id": "loc_main", "supplier_id": "sup_a", "lines": []},
        "rationale": "Restock.",
        "affected_records": [],
        "approval_owner_id": "prn_mia",
        "requester_id": "prn_bot",
        "requester_type": "agent",
        "amount_minor": 1_000,
        "currency": "USD",
        "content_hash": "sha256:" + "0" * 64,
        "version": 1,
        "created_at": "2026-11-30T23:59:59.000000Z",
        "updated_at": "2026-11-30T23:59:59.000000Z",
        "required": [],
        "expires_at": "2026-12-30T00:00:00.000000Z",
    }
    return row | values


DRAFTS = [
    draft(1),
    draft(2, amount_minor=250, state="rejected"),
    draft(3, created_at="2026-12-01T00:00:00.000000Z", updated_at="2026-12-01T00:00:00.000000Z"),
    draft(4, currency="EUR", amount_minor=90),
    draft(5, state="executed", amount_minor=5_000, updated_at="2026-12-02T10:00:00.000000Z"),
    draft(6, state="executed", amount_minor=7, payload={"location_id": "loc_east"}),
    draft(7, state="executed", kind="adjustment", amount_minor=300),
    draft(8, amount_minor=None, currency=None, kind="count_task"),
]


def test_upgrading_counts_existing_drafts_into_the_totals(database_url: str) -> None:
    async def run() -> set[tuple[Any, ...]]:
        engine = create_engine(database_url, pool_size=1)
        try:
            await migrate(engine, BEFORE_TOTALS)
            async with engine.begin() as connection:
                await connection.execute(
                    sa.insert(workspaces),
                    {"id": "wsp_old", "name": "Old", "created_at": "2026-11-01T00:00:00.000000Z"},
                )
                await connection.execute(sa.insert(drafts), DRAFTS)
            await migrate(engine)
            async with engine.connect() as connection:
                rows = await connection.execute(sa.select(spend_totals))
                return {tuple(row) for row in rows}
        finally:
            await engine.dispose()

    totals = asyncio.run(run())

    by_day = "submitted_by_requester"
    at_location = "executed_at_location"
    assert totals == {
        # Every priced draft counts toward the day it was submitted, whatever became of it.
        ("wsp_old", by_day, "prn_bot", "2026-11-30", "USD", 1_000 + 250 + 5_000 + 7 + 300),
        ("wsp_old", by_day, "prn_bot", "2026-12-01", "USD", 1_000),
        ("wsp_old", by_day, "prn_bot", "2026-11-30", "EUR", 90),
        # Executed purchase orders count toward their location's month of execution.
        ("wsp_old", at_location, "loc_main", "2026-12", "USD", 5_000),
        ("wsp_old", at_location, "loc_east", "2026-11", "USD", 7),
    }
