"""Reading and writing records. Every function takes the connection it runs on, so a write
can share the transaction of the audit records that describe it.

The statements on the decision path are built once, with bind parameters, and executed with
their values: building a statement with its values inside costs more CPU than running it.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.verify import StoredRecord
from order3.domain.drafts import Approval, Draft, DraftKind, DraftState, Verdict
from order3.domain.errors import Conflict
from order3.domain.money import Money
from order3.storage import schema
from order3.storage.schema import (
    api_tokens,
    approvals,
    audit_records,
    drafts,
    principals,
    spend_totals,
)

AnyRow = sa.Row[*tuple[Any, ...]]

# ---- drafts -------------------------------------------------------------------------------


def _draft_from_row(row: AnyRow) -> Draft:
    amount = None
    if row.currency is not None:
        amount = Money(minor_units=row.amount_minor, currency=row.currency)
    return Draft(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=DraftKind(row.kind),
        state=DraftState(row.state),
        payload=row.payload,
        rationale=row.rationale,
        affected_records=row.affected_records,
        approval_owner=row.approval_owner_id,
        requester_id=row.requester_id,
        requester_type=row.requester_type,
        amount=amount,
        content_hash=row.content_hash,
        version=row.version,
        required=row.required,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        execution=row.execution,
        escalate_at=row.escalate_at,
        escalate_to=row.escalate_to,
        escalated_at=row.escalated_at,
    )


def _draft_values(draft: Draft) -> dict[str, Any]:
    return {
        "kind": str(draft.kind),
        "state": str(draft.state),
        "payload": draft.payload,
        "rationale": draft.rationale,
        "affected_records": draft.affected_records,
        "approval_owner_id": draft.approval_owner,
        "amount_minor": None if draft.amount is None else draft.amount.minor_units,
        "currency": None if draft.amount is None else draft.amount.currency,
        "content_hash": draft.content_hash,
        "version": draft.version,
        "required": draft.required,
        "updated_at": draft.updated_at,
        "expires_at": draft.expires_at,
        "execution": draft.execution,
        "escalate_at": draft.escalate_at,
        "escalate_to": draft.escalate_to,
        "escalated_at": draft.escalated_at,
    }


_APPROVAL_COLUMNS = [column.label(f"approval_{column.name}") for column in approvals.c]

_LOAD_DRAFT = (
    sa.select(drafts, *_APPROVAL_COLUMNS)
    .select_from(drafts.outerjoin(approvals, approvals.c.draft_id == drafts.c.id))
    .where(
        drafts.c.workspace_id == sa.bindparam("workspace_id"),
        drafts.c.id == sa.bindparam("draft_id"),
    )
    .order_by(approvals.c.id)
)
_INSERT_DRAFT = drafts.insert()
# The SET clause comes from the keys of the parameters it is executed with.
_UPDATE_DRAFT = drafts.update().where(
    drafts.c.id == sa.bindparam("where_id"), drafts.c.version == sa.bindparam("where_version")
)


async def load_draft(
    connection: AsyncConnection, workspace_id: str, draft_id: str
) -> tuple[Draft, list[Approval]] | None:
    """A draft with every approval it was given, oldest first, in one round trip."""
    rows = list(
        await connection.execute(_LOAD_DRAFT, {"workspace_id": workspace_id, "draft_id": draft_id})
    )
    if not rows:
        return None
    given = [_approval_from_row(row, "approval_") for row in rows if row.approval_id is not None]
    return _draft_from_row(rows[0]), given


async def insert_draft(connection: AsyncConnection, draft: Draft) -> None:
    await connection.execute(
        _INSERT_DRAFT,
        {
            "id": draft.id,
            "workspace_id": draft.workspace_id,
            "requester_id": draft.requester_id,
            "requester_type": draft.requester_type,
            "created_at": draft.created_at,
            **_draft_values(draft),
        },
    )


async def update_draft(connection: AsyncConnection, draft: Draft, *, seen_version: int) -> None:
    """Store ``draft`` if nobody changed it since ``seen_version``.

    Raises:
        Conflict: the draft changed after it was read (another decision won the race).
    """
    result = await connection.execute(
        _UPDATE_DRAFT, {"where_id": draft.id, "where_version": seen_version, **_draft_values(draft)}
    )
    if result.rowcount != 1:
        raise Conflict(
            "the draft changed while this request was decided; read it again and retry",
            draft_id=draft.id,
        )


async def list_drafts(
    connection: AsyncConnection,
    workspace_id: str,
    *,
    state: str | None,
    kind: str | None,
    owner: str | None,
    after: str | None,
    limit: int,
) -> list[Draft]:
    query = sa.select(drafts).where(drafts.c.workspace_id == workspace_id)
    if state is not None:
        query = query.where(drafts.c.state == state)
    if kind is not None:
        query = query.where(drafts.c.kind == kind)
    if owner is not None:
        query = query.where(drafts.c.approval_owner_id == owner)
    if after is not None:
        query = query.where(drafts.c.id > after)
    rows = await connection.execute(query.order_by(drafts.c.id).limit(limit))
    return [_draft_from_row(row) for row in rows]


async def due_drafts(connection: AsyncConnection, now: str, limit: int) -> list[Draft]:
    """Pending drafts whose time ran out."""
    rows = await connection.execute(
        sa.select(drafts)
        .where(drafts.c.state == "pending", drafts.c.expires_at <= now)
        .order_by(drafts.c.expires_at)
        .limit(limit)
    )
    return [_draft_from_row(row) for row in rows]


async def due_escalations(connection: AsyncConnection, now: str, limit: int) -> list[Draft]:
    """Pending drafts whose escalation time came, not escalated yet and not yet due to
    expire (expiring them is the expiry sweep's work)."""
    rows = await connection.execute(
        sa.select(drafts)
        .where(
            drafts.c.state == "pending",
            drafts.c.escalate_at <= now,
            drafts.c.escalated_at.is_(None),
            drafts.c.expires_at > now,
        )
        .order_by(drafts.c.escalate_at)
        .limit(limit)
    )
    return [_draft_from_row(row) for row in rows]


# ---- spend totals -------------------------------------------------------------------------

EXECUTED_AT_LOCATION = "executed_at_location"
"""Purchase orders executed for a location (the subject) in a UTC month (YYYY-MM)."""
SUBMITTED_BY_REQUESTER = "submitted_by_requester"
"""Drafts a requester (the subject) submitted in a UTC day (YYYY-MM-DD), whatever became of
them, at their current amount."""

# Built once, like the other statements on the decision path.
_SPEND_TOTALS = sa.select(
    spend_totals.c.measure,
    spend_totals.c.subject_id,
    spend_totals.c.period,
    spend_totals.c.amount_minor,
).where(
    spend_totals.c.workspace_id == sa.bindparam("workspace_id"),
    spend_totals.c.currency == sa.bindparam("currency"),
    sa.tuple_(spend_totals.c.measure, spend_totals.c.subject_id, spend_totals.c.period).in_(
        sa.bindparam("keys", expanding=True)
    ),
)


def _add_to_total(insert: Any) -> Any:
    statement = insert(spend_totals)
    return statement.on_conflict_do_update(
        index_elements=list(spend_totals.primary_key.columns),
        set_={"amount_minor": spend_totals.c.amount_minor + statement.excluded.amount_minor},
    )


_ADD_TO_TOTAL = {
    "postgresql": _add_to_total(postgresql.insert),
    "sqlite": _add_to_total(sqlite.insert),
}


SpendKey = tuple[str, str, str]
"""A running total's measure, subject and period."""


async def spend_totals_of(
    connection: AsyncConnection, workspace_id: str, currency: str, keys: list[SpendKey]
) -> dict[SpendKey, int]:
    """The minor units of ``currency`` counted under each of ``keys``, in one statement; 0
    for a total nothing was counted in yet."""
    totals = dict.fromkeys(keys, 0)
    if keys:
        rows = await connection.execute(
            _SPEND_TOTALS, {"workspace_id": workspace_id, "currency": currency, "keys": keys}
        )
        totals.update(((row.measure, row.subject_id, row.period), row.amount_minor) for row in rows)
    return totals


def add_to_spend_total(
    connection: AsyncConnection,
    workspace_id: str,
    *,
    measure: str,
    subject_id: str,
    period: str,
    minor_units: int,
    currency: str,
) -> None:
    """Count ``minor_units`` of ``currency`` (negative to take them back) under ``measure``
    for ``subject_id`` in ``period``, in the caller's transaction.

    The change is gathered on the connection and written by `write_spend_totals` with the
    transaction's other changes to totals, in key order: every transaction then locks the
    total rows it moves in the same order, so two never wait on each other in a cycle.
    """
    changes = connection.info.setdefault(_SPEND_CHANGES, collections.Counter())
    changes[(workspace_id, measure, subject_id, period, currency)] += minor_units


async def write_spend_totals(connection: AsyncConnection) -> None:
    """Write the changes to totals gathered in this transaction, in key order."""
    changes = connection.info.pop(_SPEND_CHANGES, None) or collections.Counter()
    rows = [
        dict(zip(_SPEND_KEY, key, strict=True), amount_minor=changes[key])
        for key in sorted(changes)
        if changes[key]
    ]
    if rows:
        await connection.execute(_ADD_TO_TOTAL[connection.dialect.name], rows)


def forget_spend_totals(connection: AsyncConnection) -> None:
    """Drop the changes to totals gathered so far: their transaction was rolled back."""
    connection.info.pop(_SPEND_CHANGES, None)


_SPEND_CHANGES = "order3.spend_changes"
_SPEND_KEY = ("workspace_id", "measure", "subject_id", "period", "currency")


# ---- approvals ----------------------------------------------------------------------------


def _approval_from_row(row: AnyRow, prefix: str = "") -> Approval:
    values = row._mapping
    return Approval(
        id=values[f"{prefix}id"],
        draft_id=values[f"{prefix}draft_id"],
        approver_id=values[f"{prefix}approver_id"],
        approver_type=values[f"{prefix}approver_type"],
        approver_roles=values[f"{prefix}approver_roles"],
        verdict=Verdict(values[f"{prefix}verdict"]),
        role=values[f"{prefix}role"],
        comment=values[f"{prefix}comment"],
        content_hash=values[f"{prefix}content_hash"],
        decided_at=values[f"{prefix}decided_at"],
    )


_INSERT_APPROVAL = approvals.insert()


async def insert_approval(
    connection: AsyncConnection, workspace_id: str, approval: Approval
) -> None:
    values = msgspec.to_builtins(approval)
    await connection.execute(_INSERT_APPROVAL, {"workspace_id": workspace_id, **values})


# ---- workspaces, principals and tokens ----------------------------------------------------


async def insert_workspace(
    connection: AsyncConnection, workspace_id: str, name: str, created_at: str
) -> None:
    await connection.execute(
        schema.workspaces.insert().values(id=workspace_id, name=name, created_at=created_at)
    )


async def insert_principal(connection: AsyncConnection, **values: Any) -> None:
    await connection.execute(principals.insert().values(**values))


_LOAD_PRINCIPAL = sa.select(principals).where(
    principals.c.workspace_id == sa.bindparam("workspace_id"),
    principals.c.id == sa.bindparam("principal_id"),
)


async def load_principal(
    connection: AsyncConnection, workspace_id: str, principal_id: str
) -> AnyRow | None:
    params = {"workspace_id": workspace_id, "principal_id": principal_id}
    return (await connection.execute(_LOAD_PRINCIPAL, params)).one_or_none()


async def list_principals(connection: AsyncConnection, workspace_id: str) -> list[AnyRow]:
    rows = await connection.execute(
        sa.select(principals)
        .where(principals.c.workspace_id == workspace_id)
        .order_by(principals.c.id)
    )
    return list(rows)


async def insert_token(connection: AsyncConnection, **values: Any) -> None:
    await connection.execute(api_tokens.insert().values(**values))


_FIND_ACTIVE_TOKEN = (
    sa.select(
        api_tokens.c.id,
        api_tokens.c.workspace_id,
        api_tokens.c.scopes,
        principals.c.id.label("principal_id"),
        principals.c.type,
        principals.c.name,
        principals.c.roles,
    )
    .join(principals, principals.c.id == api_tokens.c.principal_id)
    .where(
        api_tokens.c.secret_hash == sa.bindparam("secret_hash"), api_tokens.c.revoked_at.is_(None)
    )
)


async def find_active_token(engine: AsyncEngine, secret_hash: str) -> AnyRow | None:
    """The live token with this hash, joined with its principal."""
    async with engine.connect() as connection:
        result = await connection.execute(_FIND_ACTIVE_TOKEN, {"secret_hash": secret_hash})
        return result.one_or_none()


async def load_token(
    connection: AsyncConnection, workspace_id: str, token_id: str
) -> AnyRow | None:
    return (
        await connection.execute(
            sa.select(api_tokens).where(
                api_tokens.c.workspace_id == workspace_id, api_tokens.c.id == token_id
            )
        )
    ).one_or_none()


async def list_tokens(connection: AsyncConnection, workspace_id: str) -> list[AnyRow]:
    rows = await connection.execute(
        sa.select(api_tokens)
        .where(api_tokens.c.workspace_id == workspace_id)
        .order_by(api_tokens.c.id)
    )
    return list(rows)


async def revoke_token(connection: AsyncConnection, token_id: str, revoked_at: str) -> None:
    result = await connection.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=revoked_at)
    )
    if result.rowcount != 1:
        raise Conflict("the token is already revoked", token_id=token_id)


# ---- audit records ------------------------------------------------------------------------


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str | None = None
    since: str | None = None
    until: str | None = None
    actor: str | None = None
    principal_type: str | None = None
    draft: str | None = None
    action: str | None = None
    outcome: str | None = None
    rule: str | None = None
    policy_revision: str | None = None
    decision: str | None = None


_rules = schema.audit_record_rules

AUDIT_GROUPS: dict[str, sa.ColumnElement[Any]] = {
    "outcome": audit_records.c.outcome,
    "action": audit_records.c.action,
    "principal_type": audit_records.c.actor_type,
    "policy_revision": audit_records.c.policy_revision,
    "day": sa.func.substr(audit_records.c.recorded_at, 1, 10),
    "rule": _rules.c.rule_id,
}
"""What audit counts can be grouped by; ``day`` is the UTC date of ``recorded_at``."""


def _audit_conditions(where: AuditFilter) -> list[sa.ColumnElement[bool]]:
    equal = {
        audit_records.c.workspace_id: where.workspace_id,
        audit_records.c.actor_id: where.actor,
        audit_records.c.actor_type: where.principal_type,
        audit_records.c.draft_id: where.draft,
        audit_records.c.action: where.action,
        audit_records.c.outcome: where.outcome,
        audit_records.c.policy_revision: where.policy_revision,
        audit_records.c.decision_id: where.decision,
    }
    conditions = [column == value for column, value in equal.items() if value is not None]
    if where.since is not None:
        conditions.append(audit_records.c.recorded_at >= where.since)
    if where.until is not None:
        conditions.append(audit_records.c.recorded_at < where.until)
    if where.rule is not None:
        decided_by = sa.select(_rules.c.seq).where(_rules.c.rule_id == where.rule)
        conditions.append(audit_records.c.seq.in_(decided_by))
    return conditions


async def query_audit(
    connection: AsyncConnection, where: AuditFilter, *, after: int | None, limit: int
) -> list[AnyRow]:
    query = sa.select(audit_records).where(*_audit_conditions(where))
    if after is not None:
        query = query.where(audit_records.c.seq > after)
    return list(await connection.execute(query.order_by(audit_records.c.seq).limit(limit)))


async def count_audit(
    connection: AsyncConnection, where: AuditFilter, group_by: list[str]
) -> list[tuple[dict[str, Any], int]]:
    """How many records match ``where``, per combination of the ``group_by`` keys, most
    first. Grouping by rule counts a record once for each rule that decided it."""
    keys = [AUDIT_GROUPS[name].label(name) for name in group_by]
    source: sa.FromClause = audit_records
    if "rule" in group_by:
        source = audit_records.join(_rules, _rules.c.seq == audit_records.c.seq)
    count = sa.func.count().label("count")
    query = (
        sa.select(*keys, count)
        .select_from(source)
        .where(*_audit_conditions(where))
        .group_by(*keys)
        .order_by(count.desc(), *keys)
    )
    rows = await connection.execute(query)
    return [
        ({name: row._mapping[name] for name in group_by}, int(row._mapping["count"]))
        for row in rows
    ]


async def load_decision_record(
    connection: AsyncConnection, workspace_id: str, decision_id: str
) -> AnyRow | None:
    query = sa.select(audit_records).where(
        audit_records.c.decision_id == decision_id,
        audit_records.c.workspace_id == workspace_id,
    )
    return (await connection.execute(query)).one_or_none()


async def stream_audit_records(
    engine: AsyncEngine, batch: int = 5000
) -> AsyncIterator[StoredRecord]:
    """Every record in sequence order, read in pages so memory stays flat."""
    after = 0
    while True:
        async with engine.connect() as connection:
            rows = list(
                await connection.execute(
                    sa.select(
                        audit_records.c.seq,
                        audit_records.c.body,
                        audit_records.c.hash,
                        audit_records.c.signature,
                        audit_records.c.key_id,
                    )
                    .where(audit_records.c.seq > after)
                    .order_by(audit_records.c.seq)
                    .limit(batch)
                )
            )
        for row in rows:
            yield StoredRecord(
                seq=row.seq,
                body=row.body,
                hash=row.hash,
                signature=row.signature,
                key_id=row.key_id,
            )
        if len(rows) < batch:
            return
        after = rows[-1].seq
