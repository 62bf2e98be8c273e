"""Exceptions: detect them, read them, dismiss them, and start the draft that resolves one.

Detection reads the workspace and stores what it finds in one transaction. A condition that
already has an active exception opens nothing (the database's unique constraint settles a
race between two detections); an open or drafted exception whose condition cleared is
resolved, and a dismissed one lets go of its condition, so a new occurrence opens anew.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order3.audit.appender import AuditAppender
from order3.audit.records import AuditEntry, SealedRecord, utc_timestamp
from order3.config import Settings
from order3.domain.drafts import DraftContent, DraftKind, RecordRef, RecordType, parse_payload
from order3.domain.errors import Conflict, InvalidInput, NotFound
from order3.domain.exceptions import (
    CLEARING_KINDS,
    ExceptionKind,
    ExceptionRecord,
    ExceptionState,
    Finding,
    Snapshot,
    detect,
)
from order3.domain.identifiers import new_id
from order3.domain.inventory import OUTSTANDING, PurchaseOrderState, record_change
from order3.domain.principals import SYSTEM_ACTOR_ID, Actor
from order3.storage import inventory as store
from order3.storage.idempotency import IdempotencyClaim
from order3.workflow.drafts import DraftWorkflow, Outcome

log = structlog.get_logger(__name__)

SYSTEM = {"id": SYSTEM_ACTOR_ID, "type": "system"}
_RATIONALE_LIMIT = 4000


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    opened: list[ExceptionRecord]
    resolved: list[ExceptionRecord]


class Drafted(msgspec.Struct, frozen=True, kw_only=True):
    """What starting a draft for an exception came to: the draft workflow's outcome (with its
    own audit records) and, when the policy allowed it, the exception now linked to it."""

    outcome: Outcome
    submit_records: list[SealedRecord]
    exception: ExceptionRecord | None


class DraftRequest(msgspec.Struct, frozen=True, kw_only=True):
    approval_owner: str
    supplier_id: str | None = None
    """For a low-stock purchase order when the item names no preferred supplier."""
    location_id: str | None = None
    """For a sync conflict on an item that is stocked nowhere yet."""


async def take_snapshot(
    connection: AsyncConnection, workspace_id: str, settings: Settings
) -> Snapshot:
    on_hand = await store.on_hand_by_location(connection, workspace_id)
    short = await store.short_receipts(connection, workspace_id)
    outstanding = await store.orders_in_states(connection, workspace_id, OUTSTANDING)
    closed = await store.orders_by_id(
        connection, workspace_id, {receipt.purchase_order_id for receipt in short}
    )
    return Snapshot(
        today=datetime.now(UTC).date().isoformat(),
        items=await store.all_items(connection, workspace_id),
        suppliers=await store.all_suppliers(connection, workspace_id),
        on_hand=on_hand,
        orders=outstanding + [o for o in closed if o.state is PurchaseOrderState.RECEIVED],
        counts=await store.counted_counts(connection, workspace_id),
        short_receipts=short,
        drift_percent=settings.count_drift_percent,
        drift_units=settings.count_drift_units,
        stocked=set(on_hand),
    )


def new_exception(finding: Finding, owner: dict[str, str], now: str) -> ExceptionRecord:
    return ExceptionRecord(
        id=new_id("exc"),
        kind=finding.kind,
        state=ExceptionState.OPEN,
        condition=finding.key,
        sku=finding.sku,
        location_id=finding.location_id,
        supplier_id=finding.supplier_id,
        reason=finding.reason,
        evidence={**finding.evidence, "observed_at": now, "reason": finding.reason},
        owner=owner,
        version=1,
        created_at=now,
        updated_at=now,
    )


def _entry(
    workspace_id: str,
    actor: dict[str, str],
    action: str,
    record: ExceptionRecord,
    before: int | None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry(
        workspace_id=workspace_id,
        actor=actor,
        action=action,
        subject={"type": "exception", "id": record.id},
        details={
            "records": [record_change("exception", record.id, before, record.version)],
            "kind": str(record.kind),
            "condition": record.condition,
            **(details or {}),
        },
    )


async def detect_in(
    connection: AsyncConnection, workspace_id: str, actor: dict[str, str], settings: Settings
) -> tuple[Detection, list[AuditEntry]]:
    """The change that runs detection for one workspace: open what is new, resolve what
    cleared, one audit entry for each."""
    snapshot = await take_snapshot(connection, workspace_id, settings)
    findings = {finding.key: finding for finding in detect(snapshot)}
    active = {
        record.condition: record
        for record in await store.active_exceptions(connection, workspace_id)
    }
    now, opened, resolved, entries = utc_timestamp(), [], [], []
    for key, finding in findings.items():
        if key in active:
            continue
        record = new_exception(finding, actor, now)
        if await store.insert_exception(connection, workspace_id, record):
            opened.append(record)
            entries.append(_entry(workspace_id, actor, "exception.opened", record, None))
    for record in active.values():
        if record.kind not in CLEARING_KINDS or record.condition in findings:
            continue
        state = record.state
        if state is not ExceptionState.DISMISSED:
            state = ExceptionState.RESOLVED
        cleared = msgspec.structs.replace(
            record, state=state, resolved_at=now, version=record.version + 1, updated_at=now
        )
        await store.update_exception(connection, workspace_id, cleared, seen_version=record.version)
        resolved.append(cleared)
        details = {"state": str(state), "reason": "the condition no longer holds"}
        entries.append(
            _entry(workspace_id, actor, "exception.resolved", cleared, record.version, details)
        )
    return Detection(opened=opened, resolved=resolved), entries


class ExceptionWorkflow:
    def __init__(
        self, db: AsyncEngine, appender: AuditAppender, drafts: DraftWorkflow, settings: Settings
    ) -> None:
        self._db = db
        self._appender = appender
        self._drafts = drafts
        self._settings = settings

    # ---- reads ----------------------------------------------------------------------------

    async def get(self, actor: Actor, exception_id: str) -> ExceptionRecord:
        async with self._db.connect() as connection:
            record = await store.load_exception(connection, actor.workspace_id, exception_id)
        if record is None:
            raise NotFound(
                f"no exception {exception_id} in this workspace", exception_id=exception_id
            )
        return record

    async def list_exceptions(
        self, actor: Actor, filters: dict[str, Any], after: str | None, limit: int
    ) -> list[ExceptionRecord]:
        async with self._db.connect() as connection:
            return await store.list_exceptions(
                connection, actor.workspace_id, filters, after, limit
            )

    # ---- detection ------------------------------------------------------------------------

    async def detect(
        self, actor: Actor, claim: IdempotencyClaim | None = None
    ) -> tuple[Detection, list[SealedRecord]]:
        """Detect in the actor's workspace now; the exceptions it opens name the actor."""

        async def work(connection: AsyncConnection) -> tuple[Detection, list[AuditEntry]]:
            return await detect_in(
                connection, actor.workspace_id, actor.reference(), self._settings
            )

        return await self._appender.commit(work, claim=claim)

    async def sweep(self) -> int:
        """Detect in every workspace, as the system; return how many exceptions opened."""
        async with self._db.connect() as connection:
            workspaces = await store.workspace_ids(connection)
        opened = 0
        for workspace_id in workspaces:

            async def work(
                connection: AsyncConnection, workspace_id: str = workspace_id
            ) -> tuple[Detection, list[AuditEntry]]:
                return await detect_in(connection, workspace_id, SYSTEM, self._settings)

            detection, _ = await self._appender.commit(work)
            opened += len(detection.opened)
        return opened

    # ---- dismissal ------------------------------------------------------------------------

    async def dismiss(
        self, actor: Actor, exception_id: str, reason: str, claim: IdempotencyClaim | None = None
    ) -> tuple[ExceptionRecord, list[SealedRecord]]:
        """Dismiss an open exception, naming who and why. It stays dismissed while its
        condition lasts.

        Raises:
            NotFound: no such exception in the workspace.
            Conflict: it is not open (already dismissed, drafted or resolved).
        """

        async def work(connection: AsyncConnection) -> tuple[ExceptionRecord, list[AuditEntry]]:
            record = await store.load_exception(connection, actor.workspace_id, exception_id)
            record = _ensure_open(record, exception_id, "dismiss")
            now = utc_timestamp()
            dismissal = {"reason": reason, "by": actor.reference(), "at": now}
            dismissed = msgspec.structs.replace(
                record,
                state=ExceptionState.DISMISSED,
                dismissal=dismissal,
                version=record.version + 1,
                updated_at=now,
            )
            await store.update_exception(
                connection, actor.workspace_id, dismissed, seen_version=record.version
            )
            entry = _entry(
                actor.workspace_id,
                actor.reference(),
                "exception.dismissed",
                dismissed,
                record.version,
                {"reason": reason},
            )
            return dismissed, [entry]

        return await self._appender.commit(work, claim=claim)

    # ---- drafting -------------------------------------------------------------------------

    async def start_draft(
        self, actor: Actor, exception_id: str, ask: DraftRequest, claim: IdempotencyClaim | None
    ) -> tuple[Drafted, list[SealedRecord]]:
        """Submit the draft that resolves an open exception, through the draft workflow, so
        the policy decides it like any other; then link the exception to it.

        Raises:
            NotFound: no such exception.
            Conflict: it is not open, or it changed while the draft was submitted.
            InvalidInput: the evidence lacks what the draft needs and the request does too.
        """
        record = _ensure_open(await self._load(actor, exception_id), exception_id, "draft")
        content = draft_content(record, ask)
        outcome, submitted = await self._drafts.submit(actor, content, None)

        async def link(connection: AsyncConnection) -> tuple[Drafted, list[AuditEntry]]:
            if not outcome.allowed or outcome.draft is None:
                return Drafted(outcome=outcome, submit_records=submitted, exception=None), []
            current = await store.load_exception(connection, actor.workspace_id, exception_id)
            current = _ensure_open(current, exception_id, "draft")
            if current.version != record.version:
                raise Conflict(
                    f"exception {exception_id} changed while draft {outcome.draft.id} was "
                    "submitted; the draft stays pending unlinked",
                    draft_id=outcome.draft.id,
                )
            now = utc_timestamp()
            drafted = msgspec.structs.replace(
                current,
                state=ExceptionState.DRAFTED,
                draft_id=outcome.draft.id,
                version=current.version + 1,
                updated_at=now,
            )
            await store.update_exception(
                connection, actor.workspace_id, drafted, seen_version=current.version
            )
            details = {"draft_id": outcome.draft.id, "draft_kind": str(content.kind)}
            entry = _entry(
                actor.workspace_id,
                actor.reference(),
                "exception.drafted",
                drafted,
                current.version,
                details,
            )
            return Drafted(outcome=outcome, submit_records=submitted, exception=drafted), [entry]

        return await self._appender.commit(link, claim=claim)

    async def _load(self, actor: Actor, exception_id: str) -> ExceptionRecord | None:
        async with self._db.connect() as connection:
            return await store.load_exception(connection, actor.workspace_id, exception_id)


def _ensure_open(record: ExceptionRecord | None, exception_id: str, action: str) -> ExceptionRecord:
    if record is None:
        raise NotFound(f"no exception {exception_id} in this workspace", exception_id=exception_id)
    if record.state is not ExceptionState.OPEN:
        raise Conflict(
            f"cannot {action}: the exception is {record.state}, not open",
            state=str(record.state),
            draft_id=record.draft_id,
        )
    return record


# ---- the draft each kind of exception starts ---------------------------------------------------


def draft_content(record: ExceptionRecord, ask: DraftRequest) -> DraftContent:
    """The draft that resolves ``record``, with its evidence as the rationale.

    low stock -> purchase_order; count drift -> count_task; supplier delay -> supplier_note;
    short receipt -> reconciliation; sync conflict -> reconciliation (zero-unit corrections
    that put both sides before the approvers), or supplier_note for a supplier, which has no
    stock to reconcile.
    """
    kind, payload = _payload(record, ask)
    affected = [RecordRef(type=RecordType.EXCEPTION, id=record.id, version=record.version)]
    if record.sku is not None:
        affected.append(RecordRef(type=RecordType.ITEM, id=record.sku))
    if record.supplier_id is not None:
        affected.append(RecordRef(type=RecordType.SUPPLIER, id=record.supplier_id))
    return DraftContent(
        kind=kind,
        payload=parse_payload(kind, payload),
        rationale=_rationale(record),
        affected_records=affected,
        approval_owner=ask.approval_owner,
    )


def _payload(record: ExceptionRecord, ask: DraftRequest) -> tuple[DraftKind, dict[str, Any]]:
    evidence = record.evidence
    if record.kind is ExceptionKind.LOW_STOCK:
        return DraftKind.PURCHASE_ORDER, _purchase_order(record, ask)
    if record.kind is ExceptionKind.COUNT_DRIFT:
        payload = {"location_id": evidence["location_id"], "skus": [evidence["sku"]]}
        return DraftKind.COUNT_TASK, payload
    if record.kind is ExceptionKind.SUPPLIER_DELAY:
        note = f"{record.reason}. Ask the supplier for a delivery date."
        return DraftKind.SUPPLIER_NOTE, {"supplier_id": record.supplier_id, "note": note}
    if record.kind is ExceptionKind.SHORT_RECEIPT:
        lines = evidence["short_lines"]
        corrections = [
            {
                "sku": line["sku"],
                "location_id": evidence["location_id"],
                "quantity_delta": line["missing"],
                "unit_cost": line["unit_cost"],
                "note": f"line {line['line']}: ordered {line['ordered']}, "
                f"received {line['received']}; post only if the rest did arrive",
            }
            for line in lines
        ]
        currency = lines[0]["unit_cost"]["currency"]
        return DraftKind.RECONCILIATION, {"currency": currency, "corrections": corrections}
    return _sync_conflict(record, ask)


def _purchase_order(record: ExceptionRecord, ask: DraftRequest) -> dict[str, Any]:
    evidence = record.evidence
    supplier_id = ask.supplier_id or record.supplier_id
    if supplier_id is None:
        raise InvalidInput("$.supplier_id", "the item names no preferred supplier; name one")
    shortfall = evidence["reorder_point"] - evidence["on_hand"] - evidence["on_order"]
    quantity = max(evidence["reorder_quantity"], shortfall, 1)
    return {
        "supplier_id": supplier_id,
        "location_id": evidence["location_id"],
        "currency": evidence["unit_cost"]["currency"],
        "lines": [
            {"sku": evidence["sku"], "quantity": quantity, "unit_cost": evidence["unit_cost"]}
        ],
    }


def _sync_conflict(record: ExceptionRecord, ask: DraftRequest) -> tuple[DraftKind, dict[str, Any]]:
    evidence = record.evidence
    theirs, ours = _compact(evidence["theirs"]), _compact(evidence["ours"])
    note = f"{record.reason}. Theirs: {theirs}. Ours: {ours}."
    if evidence["record_type"] == "supplier":
        return DraftKind.SUPPLIER_NOTE, {"supplier_id": evidence["record_id"], "note": note[:4000]}
    location_id = ask.location_id or evidence.get("location_id")
    if location_id is None:
        raise InvalidInput("$.location_id", "the item is stocked nowhere; name a location")
    unit_costs = evidence["unit_costs"]
    corrections = [
        {
            "sku": sku,
            "location_id": location_id,
            "quantity_delta": 0,
            "unit_cost": unit_cost,
            "note": note[:4000],
        }
        for sku, unit_cost in sorted(unit_costs.items())
    ]
    currency = next(iter(unit_costs.values()))["currency"]
    return DraftKind.RECONCILIATION, {"currency": currency, "corrections": corrections}


def _rationale(record: ExceptionRecord) -> str:
    head = f"Resolves exception {record.id} ({record.kind}): {record.reason}. Evidence: "
    evidence = _compact(record.evidence)
    room = _RATIONALE_LIMIT - len(head)
    if len(evidence) > room:
        evidence = evidence[: room - 1] + "…"
    return head + evidence


def _compact(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def sweep_exceptions(
    db: AsyncEngine, appender: AuditAppender, drafts: DraftWorkflow, settings: Settings
) -> None:
    """Run detection in every workspace every ``exception_sweep_seconds``."""
    workflow = ExceptionWorkflow(db, appender, drafts, settings)
    while True:
        await asyncio.sleep(settings.exception_sweep_seconds)
        try:
            opened = await workflow.sweep()
        except Exception as exc:
            log.warning("exception.sweep_failed", error=repr(exc))
            continue
        if opened:
            log.info("exception.swept", opened=opened)
