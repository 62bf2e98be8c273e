"""Sync: an integration upserts items, suppliers or purchase orders, and never overwrites a
change it has not seen.

Each upsert carries ``base_version``, the version the integration last saw (null for a record
it thinks is new). Against the record as stored:

    stored          base_version          result
    absent          null                  created at version 1
    absent          a number              conflict (we have no such record)
    present         null                  conflict (it exists already), unless equal
    present         = current version     applied, version + 1 (unchanged if equal)
    present         < current version     conflict, unless equal
    present         > current version     422: a version we never gave out

A conflict writes nothing to the record. It opens a ``sync_conflict`` exception holding both
sides, theirs and ours, for a person to settle; neither side wins. The whole batch commits in
one transaction with one audit record owned by the integration's token.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.audit.appender import AuditAppender
from order3.audit.records import AuditEntry, SealedRecord, utc_timestamp
from order3.domain.drafts import Identifier
from order3.domain.errors import Forbidden, InvalidInput
from order3.domain.exceptions import ExceptionKind, Finding
from order3.domain.identifiers import new_id
from order3.domain.inventory import (
    ItemData,
    OrderLine,
    PurchaseOrder,
    PurchaseOrderData,
    PurchaseOrderLine,
    PurchaseOrderState,
    SupplierData,
    convert_input,
    record_change,
    state_after_receipt,
)
from order3.domain.money import Currency
from order3.domain.principals import Actor, PrincipalType
from order3.storage import inventory as store
from order3.storage.idempotency import IdempotencyClaim
from order3.workflow.exceptions import new_exception
from order3.workflow.inventory_records import (
    build_item,
    build_order,
    build_supplier,
    check_order,
    owner_of,
)


class SyncedType(enum.StrEnum):
    ITEMS = "items"
    SUPPLIERS = "suppliers"
    PURCHASE_ORDERS = "purchase-orders"


_RECORD_TYPE = {
    SyncedType.ITEMS: "item",
    SyncedType.SUPPLIERS: "supplier",
    SyncedType.PURCHASE_ORDERS: "purchase_order",
}
_DATA_TYPE: dict[SyncedType, type[msgspec.Struct]] = {
    SyncedType.ITEMS: ItemData,
    SyncedType.SUPPLIERS: SupplierData,
    SyncedType.PURCHASE_ORDERS: PurchaseOrderData,
}


class Upsert(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Identifier
    base_version: Annotated[int, msgspec.Meta(ge=1)] | None
    data: dict[str, Any]


class SyncBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    records: Annotated[list[Upsert], msgspec.Meta(min_length=1, max_length=500)]


class SyncResult(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    records: str
    applied: list[dict[str, Any]]
    """``{id, version_before, version_after}``; ``version_before`` is null for a new record."""
    unchanged: list[dict[str, Any]]
    """``{id, version}``: the data equalled ours, so nothing was written."""
    conflicts: list[dict[str, Any]]
    """``{id, base_version, current_version, exception_id, opened}``."""


# A stored record's data in the shape an integration sends, its version, owner, time and the
# place a reconciliation of it would name.
Current = tuple[msgspec.Struct, int, dict[str, str], str, str | None]


class _Batch:
    """One batch being applied inside its transaction."""

    def __init__(self, connection: AsyncConnection, actor: Actor, kind: SyncedType) -> None:
        self.connection = connection
        self.actor = actor
        self.kind = kind
        self.now = utc_timestamp()
        self.applied: list[dict[str, Any]] = []
        self.unchanged: list[dict[str, Any]] = []
        self.conflicts: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []

    @property
    def workspace_id(self) -> str:
        return self.actor.workspace_id

    async def upsert(self, index: int, upsert: Upsert, data: msgspec.Struct) -> None:
        current = await _LOADERS[self.kind](self, upsert.id)
        path = f"$.records[{index}]"
        if current is None:
            if upsert.base_version is None:
                await _WRITERS[self.kind](self, path, upsert.id, data, None)
                self._applied(upsert.id, None, 1)
            else:
                await self._conflict(upsert, data, None)
            return
        ours, version = current[0], current[1]
        if upsert.base_version is not None and upsert.base_version > version:
            raise InvalidInput(
                f"{path}.base_version",
                f"version {upsert.base_version} of {upsert.id} was never given out; ours is "
                f"{version}",
            )
        if ours == data:
            self.unchanged.append({"id": upsert.id, "version": version})
        elif upsert.base_version == version:
            await _WRITERS[self.kind](self, path, upsert.id, data, version)
            self._applied(upsert.id, version, version + 1)
        else:
            await self._conflict(upsert, data, current)

    def _applied(self, record_id: str, before: int | None, after: int) -> None:
        self.applied.append({"id": record_id, "version_before": before, "version_after": after})
        self.changes.append(record_change(_RECORD_TYPE[self.kind], record_id, before, after))

    async def _conflict(
        self, upsert: Upsert, theirs: msgspec.Struct, current: Current | None
    ) -> None:
        record_type = _RECORD_TYPE[self.kind]
        theirs_doc = msgspec.to_builtins(theirs)
        version = None if current is None else current[1]
        fingerprint = hashlib.sha256(msgspec.json.encode(theirs_doc, order="sorted")).hexdigest()
        key = (
            f"sync_conflict:{record_type}:{upsert.id}:{upsert.base_version}:{version}:"
            f"{fingerprint[:16]}"
        )
        finding = Finding(
            kind=ExceptionKind.SYNC_CONFLICT,
            key=key,
            reason=_conflict_reason(record_type, upsert, version),
            evidence={
                "record_type": record_type,
                "record_id": upsert.id,
                "base_version": upsert.base_version,
                "current_version": version,
                "theirs": theirs_doc,
                "ours": None if current is None else msgspec.to_builtins(current[0]),
                "ours_owner": None if current is None else current[2],
                "ours_updated_at": None if current is None else current[3],
                "integration": self.actor.reference(),
                "location_id": None if current is None else current[4],
                "unit_costs": _unit_costs(upsert.id, theirs),
            },
            sku=upsert.id if self.kind is SyncedType.ITEMS else None,
            location_id=None if current is None else current[4],
            supplier_id=upsert.id if self.kind is SyncedType.SUPPLIERS else None,
        )
        record = new_exception(finding, self.actor.reference(), self.now)
        opened = await store.insert_exception(self.connection, self.workspace_id, record)
        if opened:
            self.changes.append(record_change("exception", record.id, None, 1))
        else:
            active = await store.active_exception(self.connection, self.workspace_id, key)
            record = active or record
        self.conflicts.append(
            {
                "id": upsert.id,
                "base_version": upsert.base_version,
                "current_version": version,
                "exception_id": record.id,
                "opened": opened,
            }
        )

    def result(self, batch_id: str) -> SyncResult:
        return SyncResult(
            batch_id=batch_id,
            records=str(self.kind),
            applied=self.applied,
            unchanged=self.unchanged,
            conflicts=self.conflicts,
        )


def _conflict_reason(record_type: str, upsert: Upsert, version: int | None) -> str:
    if version is None:
        return (
            f"the integration updated {record_type} {upsert.id} from version "
            f"{upsert.base_version}, but there is no such {record_type} here"
        )
    if upsert.base_version is None:
        return (
            f"the integration created {record_type} {upsert.id}, which exists here already "
            f"at version {version} with other data"
        )
    return (
        f"the integration changed {record_type} {upsert.id} from version "
        f"{upsert.base_version}, but it is at version {version} here: someone else changed it"
    )


def _unit_costs(record_id: str, data: msgspec.Struct) -> dict[str, Any]:
    """The unit costs a reconciliation of the conflict would name, per SKU."""
    if isinstance(data, ItemData):
        return {record_id: msgspec.to_builtins(data.unit_cost)}
    if isinstance(data, PurchaseOrderData):
        return {line.sku: msgspec.to_builtins(line.unit_cost) for line in data.lines}
    return {}


# ---- per record type: load the current state, write a new one ---------------------------------


async def _load_item(batch: _Batch, sku: str) -> Current | None:
    item = await store.load_item(batch.connection, batch.workspace_id, sku, lock=True)
    if item is None:
        return None
    data = ItemData(
        description=item.description,
        unit=item.unit,
        unit_cost=item.unit_cost,
        category=item.category,
        reorder_point=item.reorder_point,
        reorder_quantity=item.reorder_quantity,
        supplier_id=item.supplier_id,
    )
    stocked = await store.stock_levels(batch.connection, batch.workspace_id, {"sku": sku}, None, 1)
    place = stocked[0].location_id if stocked else None
    return data, item.version, msgspec.to_builtins(item.owner), item.updated_at, place


async def _write_item(
    batch: _Batch, path: str, sku: str, data: msgspec.Struct, version: int | None
) -> None:
    assert isinstance(data, ItemData)
    if version is None:
        item = build_item(sku, data, owner_of(batch.actor), batch.now)
        await store.insert_item(batch.connection, batch.workspace_id, item)
        return
    current = await store.load_item(batch.connection, batch.workspace_id, sku)
    assert current is not None  # loaded under lock a moment ago
    if data.unit_cost.currency != current.unit_cost.currency:
        raise InvalidInput(
            f"{path}.data.unit_cost.currency",
            f"an item's currency cannot change (it is `{current.unit_cost.currency}`)",
        )
    item = msgspec.structs.replace(
        build_item(sku, data, current.owner, current.created_at, version + 1),
        updated_at=batch.now,
    )
    await store.update_item(batch.connection, batch.workspace_id, item, seen_version=version)


async def _load_supplier(batch: _Batch, supplier_id: str) -> Current | None:
    found = await store.load_supplier(batch.connection, batch.workspace_id, supplier_id, lock=True)
    if found is None:
        return None
    data = SupplierData(name=found.name, status=found.status, lead_time_days=found.lead_time_days)
    return data, found.version, msgspec.to_builtins(found.owner), found.updated_at, None


async def _write_supplier(
    batch: _Batch, path: str, supplier_id: str, data: msgspec.Struct, version: int | None
) -> None:
    assert isinstance(data, SupplierData)
    if version is None:
        supplier = build_supplier(supplier_id, data, owner_of(batch.actor), batch.now)
        await store.insert_supplier(batch.connection, batch.workspace_id, supplier)
        return
    current = await store.load_supplier(batch.connection, batch.workspace_id, supplier_id)
    assert current is not None  # loaded under lock a moment ago
    supplier = msgspec.structs.replace(
        build_supplier(supplier_id, data, current.owner, current.created_at, version + 1),
        updated_at=batch.now,
    )
    await store.update_supplier(
        batch.connection, batch.workspace_id, supplier, seen_version=version
    )


def _order_data(order: PurchaseOrder) -> PurchaseOrderData:
    return PurchaseOrderData(
        supplier_id=order.supplier_id,
        location_id=order.location_id,
        currency=Currency(order.currency),
        lines=[
            OrderLine(sku=line.sku, quantity=line.quantity, unit_cost=line.unit_cost)
            for line in order.lines
        ],
        expected_date=None
        if order.expected_date is None
        else date.fromisoformat(order.expected_date),
        cancelled=order.state is PurchaseOrderState.CANCELLED,
    )


async def _load_order(batch: _Batch, order_id: str) -> Current | None:
    ws = batch.workspace_id
    order = await store.load_purchase_order(batch.connection, ws, order_id, lock=True)
    if order is None:
        return None
    return (
        _order_data(order),
        order.version,
        msgspec.to_builtins(order.owner),
        order.updated_at,
        order.location_id,
    )


async def _write_order(
    batch: _Batch, path: str, order_id: str, data: msgspec.Struct, version: int | None
) -> None:
    assert isinstance(data, PurchaseOrderData)
    ws = batch.workspace_id
    await check_order(batch.connection, ws, data, f"{path}.data", refuse_blocked=False)
    if version is None:
        order = build_order(order_id, data, owner_of(batch.actor), batch.now)
        if data.cancelled:
            order = msgspec.structs.replace(order, state=PurchaseOrderState.CANCELLED)
        await store.insert_purchase_order(batch.connection, ws, order)
        return
    current = await store.load_purchase_order(batch.connection, ws, order_id)
    assert current is not None  # loaded under lock a moment ago
    lines = _merged_lines(current, data, path)
    if current.state in (PurchaseOrderState.RECEIVED, PurchaseOrderState.CANCELLED):
        raise InvalidInput(f"{path}.data", f"purchase order {order_id} is {current.state}")
    received = any(line.received for line in lines)
    if data.cancelled and received:
        raise InvalidInput(
            f"{path}.data.cancelled", "an order that received goods cannot be cancelled"
        )
    state = (
        PurchaseOrderState.CANCELLED if data.cancelled else state_after_receipt(lines, close=False)
    )
    order = msgspec.structs.replace(
        build_order(order_id, data, current.owner, current.created_at, version + 1),
        lines=lines,
        state=state,
        updated_at=batch.now,
    )
    await store.update_purchase_order(batch.connection, ws, order, seen_version=version)


def _merged_lines(
    current: PurchaseOrder, data: PurchaseOrderData, path: str
) -> list[PurchaseOrderLine]:
    """The synced lines, keeping what was received: a received line keeps its SKU and cannot
    drop below what arrived."""
    received = {line.line: line for line in current.lines if line.received}
    lines = []
    for number, line in enumerate(data.lines, start=1):
        got = received.pop(number, None)
        where = f"{path}.data.lines[{number - 1}]"
        if got is not None and (got.sku != line.sku or line.quantity < got.received):
            raise InvalidInput(
                where, f"line {number} received {got.received} of {got.sku}; it cannot become less"
            )
        lines.append(
            PurchaseOrderLine(
                line=number,
                sku=line.sku,
                quantity=line.quantity,
                unit_cost=line.unit_cost,
                received=0 if got is None else got.received,
            )
        )
    if received:
        raise InvalidInput(f"{path}.data.lines", "a line that received goods cannot be removed")
    return lines


Loader = Callable[[_Batch, str], Awaitable[Current | None]]
Writer = Callable[[_Batch, str, str, msgspec.Struct, int | None], Awaitable[None]]
_LOADERS: dict[SyncedType, Loader] = {
    SyncedType.ITEMS: _load_item,
    SyncedType.SUPPLIERS: _load_supplier,
    SyncedType.PURCHASE_ORDERS: _load_order,
}
_WRITERS: dict[SyncedType, Writer] = {
    SyncedType.ITEMS: _write_item,
    SyncedType.SUPPLIERS: _write_supplier,
    SyncedType.PURCHASE_ORDERS: _write_order,
}


class SyncWorkflow:
    def __init__(self, appender: AuditAppender) -> None:
        self._appender = appender

    async def sync(
        self, actor: Actor, kind: SyncedType, batch: SyncBatch, claim: IdempotencyClaim | None
    ) -> tuple[SyncResult, list[SealedRecord]]:
        """Apply a batch of upserts in one transaction with one audit record.

        Raises:
            Forbidden: the principal is not an integration.
            InvalidInput: a record's data is malformed, names what does not exist, repeats
                an id, or claims a version never given out; nothing of the batch is written.
        """
        if actor.type is not PrincipalType.INTEGRATION:
            raise Forbidden("sync is for integration principals", principal_type=str(actor.type))
        parsed = _parse(kind, batch)

        async def work(connection: AsyncConnection) -> tuple[SyncResult, list[AuditEntry]]:
            applying = _Batch(connection, actor, kind)
            for index, (upsert, data) in enumerate(parsed):
                await applying.upsert(index, upsert, data)
            result = applying.result(new_id("syn"))
            return result, [_entry(actor, result, applying.changes)]

        return await self._appender.commit(work, claim=claim)


def _parse(kind: SyncedType, batch: SyncBatch) -> list[tuple[Upsert, msgspec.Struct]]:
    seen: set[str] = set()
    parsed = []
    for index, upsert in enumerate(batch.records):
        if upsert.id in seen:
            raise InvalidInput(f"$.records[{index}].id", f"{upsert.id} appears twice in the batch")
        seen.add(upsert.id)
        data = convert_input(upsert.data, _DATA_TYPE[kind], f"$.records[{index}].data")
        parsed.append((upsert, data))
    return parsed


def _entry(actor: Actor, result: SyncResult, changes: list[dict[str, Any]]) -> AuditEntry:
    return AuditEntry(
        workspace_id=actor.workspace_id,
        actor=actor.reference(),
        action="sync.batch",
        subject={"type": "sync_batch", "id": result.batch_id},
        details={
            "records": changes,
            "synced": result.records,
            "applied": result.applied,
            "unchanged": result.unchanged,
            "conflicts": result.conflicts,
        },
    )
