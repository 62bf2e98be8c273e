"""Operations on the inventory's reference records: items, locations, suppliers, purchase
orders and supplier notes. Stock itself moves in ``order3.workflow.inventory``.

Each operation takes the connection of the transaction it runs in and returns its value and
the audit entries that commit with it; see ``order3.workflow.inventory`` for how to run one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.audit.records import AuditEntry, utc_timestamp
from order3.domain.errors import Conflict, InvalidInput
from order3.domain.identifiers import new_id
from order3.domain.inventory import (
    Bin,
    Item,
    ItemData,
    Location,
    LocationData,
    NewPurchaseOrder,
    NewSupplierNote,
    Owner,
    PurchaseOrder,
    PurchaseOrderData,
    PurchaseOrderLine,
    PurchaseOrderState,
    Supplier,
    SupplierData,
    SupplierNote,
    SupplierStatus,
    ensure_same_currency,
    record_change,
)
from order3.domain.principals import Actor
from order3.storage import inventory as store

Change = dict[str, str | int | None]


def owner_of(actor: Actor) -> Owner:
    return Owner(id=actor.id, type=str(actor.type))


def entry(
    actor: Actor,
    action: str,
    subject: tuple[str, str],
    changes: list[Change],
    details: dict[str, Any] | None = None,
    cause: dict[str, Any] | None = None,
) -> AuditEntry:
    """The audit entry of one operation: every record it touched, with versions before and
    after, and what caused it (a draft, for instance) when the caller says."""
    body: dict[str, Any] = {"records": changes, **(details or {})}
    if cause is not None:
        body["cause"] = cause
    return AuditEntry(
        workspace_id=actor.workspace_id,
        actor=actor.reference(),
        action=action,
        subject={"type": subject[0], "id": subject[1]},
        details=body,
    )


# ---- builders (sync uses them too) ----------------------------------------------------------


def build_item(sku: str, data: ItemData, owner: Owner, now: str, version: int = 1) -> Item:
    return Item(
        sku=sku,
        description=data.description,
        unit=data.unit,
        unit_cost=data.unit_cost,
        category=data.category,
        reorder_point=data.reorder_point,
        reorder_quantity=data.reorder_quantity,
        supplier_id=data.supplier_id,
        owner=owner,
        version=version,
        created_at=now,
        updated_at=now,
    )


def build_supplier(
    supplier_id: str, data: SupplierData, owner: Owner, now: str, version: int = 1
) -> Supplier:
    return Supplier(
        id=supplier_id,
        name=data.name,
        status=data.status,
        lead_time_days=data.lead_time_days,
        owner=owner,
        version=version,
        created_at=now,
        updated_at=now,
    )


async def check_order(
    connection: AsyncConnection,
    workspace_id: str,
    order: NewPurchaseOrder | PurchaseOrderData,
    path: str = "$",
    *,
    refuse_blocked: bool = True,
) -> None:
    """Refuse an order whose supplier is unknown (or, with ``refuse_blocked``, blocked), whose
    location is unknown, or whose lines name unknown items or mix currencies.

    A supplier on hold still takes orders: the policy decides what such an order needs (an
    approval from finance, by default), and an approved one goes ahead.
    """
    found = {
        (record.type, record.id): record
        for record in await store.named_records(
            connection,
            workspace_id,
            skus=[line.sku for line in order.lines],
            suppliers=[order.supplier_id],
            locations=[order.location_id],
        )
    }
    supplier = found.get(("supplier", order.supplier_id))
    if supplier is None:
        raise InvalidInput(f"{path}.supplier_id", f"no supplier {order.supplier_id}")
    if refuse_blocked and supplier.detail == SupplierStatus.BLOCKED:
        raise Conflict(
            f"supplier {supplier.id} is blocked; no order goes to it",
            supplier_id=supplier.id,
            status=str(supplier.detail),
        )
    if ("location", order.location_id) not in found:
        raise InvalidInput(f"{path}.location_id", f"no location {order.location_id}")
    for index, line in enumerate(order.lines):
        where = f"{path}.lines[{index}]"
        item = found.get(("item", line.sku))
        if item is None:
            raise InvalidInput(f"{where}.sku", f"no item {line.sku}")
        ensure_same_currency(f"{where}.unit_cost", line.unit_cost, str(order.currency))
        ensure_same_currency(f"{where}.unit_cost", line.unit_cost, str(item.currency))


def build_order(
    order_id: str,
    order: NewPurchaseOrder | PurchaseOrderData,
    owner: Owner,
    now: str,
    version: int = 1,
) -> PurchaseOrder:
    return PurchaseOrder(
        id=order_id,
        supplier_id=order.supplier_id,
        location_id=order.location_id,
        currency=str(order.currency),
        state=PurchaseOrderState.OPEN,
        expected_date=None if order.expected_date is None else order.expected_date.isoformat(),
        lines=[
            PurchaseOrderLine(
                line=number,
                sku=line.sku,
                quantity=line.quantity,
                unit_cost=line.unit_cost,
                received=0,
            )
            for number, line in enumerate(order.lines, start=1)
        ],
        owner=owner,
        version=version,
        created_at=now,
        updated_at=now,
    )


# ---- operations -----------------------------------------------------------------------------


async def create_item(
    connection: AsyncConnection, actor: Actor, sku: str, data: ItemData, *, cause: Any = None
) -> tuple[Item, list[AuditEntry]]:
    if await store.load_item(connection, actor.workspace_id, sku) is not None:
        raise Conflict(f"item {sku} already exists", sku=sku)
    item = build_item(sku, data, owner_of(actor), utc_timestamp())
    await store.insert_item(connection, actor.workspace_id, item)
    changes = [record_change("item", sku, None, 1)]
    return item, [entry(actor, "inventory.item_created", ("item", sku), changes, cause=cause)]


async def create_location(
    connection: AsyncConnection,
    actor: Actor,
    location_id: str,
    data: LocationData,
    *,
    cause: Any = None,
) -> tuple[Location, list[AuditEntry]]:
    if await store.location_exists(connection, actor.workspace_id, location_id):
        raise Conflict(f"location {location_id} already exists", location_id=location_id)
    codes = [bin_.code for bin_ in data.bins]
    if len(set(codes)) != len(codes):
        raise InvalidInput("$.bins", "bin codes must differ from each other")
    now = utc_timestamp()
    location = Location(
        id=location_id,
        name=data.name,
        bins=[Bin(code=b.code, description=b.description) for b in data.bins],
        owner=owner_of(actor),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await store.insert_location(connection, actor.workspace_id, location)
    changes = [record_change("location", location_id, None, 1)]
    details = {"bins": codes}
    subject = ("location", location_id)
    return location, [
        entry(actor, "inventory.location_created", subject, changes, details, cause=cause)
    ]


async def create_supplier(
    connection: AsyncConnection,
    actor: Actor,
    supplier_id: str,
    data: SupplierData,
    *,
    cause: Any = None,
) -> tuple[Supplier, list[AuditEntry]]:
    if await store.load_supplier(connection, actor.workspace_id, supplier_id) is not None:
        raise Conflict(f"supplier {supplier_id} already exists", supplier_id=supplier_id)
    supplier = build_supplier(supplier_id, data, owner_of(actor), utc_timestamp())
    await store.insert_supplier(connection, actor.workspace_id, supplier)
    changes = [record_change("supplier", supplier_id, None, 1)]
    subject = ("supplier", supplier_id)
    return supplier, [entry(actor, "inventory.supplier_created", subject, changes, cause=cause)]


async def create_purchase_order(
    connection: AsyncConnection, actor: Actor, order: NewPurchaseOrder, *, cause: Any = None
) -> tuple[PurchaseOrder, list[AuditEntry]]:
    """Place an order with a supplier that is not blocked (the ``purchase_order`` draft kind).

    Raises:
        InvalidInput: an unknown supplier, location or item, or a line in another currency.
        Conflict: the supplier is blocked, or the order id is taken.
    """
    await check_order(connection, actor.workspace_id, order)
    order_id = order.id or new_id("po")
    # A generated id is new; only an id the caller chose can be taken.
    taken = order.id is not None and await store.load_purchase_order(
        connection, actor.workspace_id, order_id
    )
    if taken:
        raise Conflict(f"purchase order {order_id} already exists", purchase_order_id=order_id)
    created = build_order(order_id, order, owner_of(actor), utc_timestamp())
    await store.insert_purchase_order(connection, actor.workspace_id, created)
    changes = [record_change("purchase_order", order_id, None, 1)]
    details = {"purchase_order": msgspec.to_builtins(created)}
    subject = ("purchase_order", order_id)
    return created, [
        entry(actor, "inventory.purchase_order_created", subject, changes, details, cause)
    ]


async def attach_supplier_note(
    connection: AsyncConnection, actor: Actor, ask: NewSupplierNote, *, cause: Any = None
) -> tuple[SupplierNote, list[AuditEntry]]:
    """Attach a note to a supplier (the ``supplier_note`` draft kind)."""
    if await store.load_supplier(connection, actor.workspace_id, ask.supplier_id) is None:
        raise InvalidInput("$.supplier_id", f"no supplier {ask.supplier_id}")
    now = utc_timestamp()
    note = SupplierNote(
        id=new_id("sno"),
        supplier_id=ask.supplier_id,
        note=ask.note,
        owner=owner_of(actor),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await store.insert_supplier_note(connection, actor.workspace_id, note)
    changes = [record_change("supplier_note", note.id, None, 1)]
    details = {"supplier_id": ask.supplier_id, "note": ask.note}
    subject = ("supplier", ask.supplier_id)
    return note, [
        entry(actor, "inventory.supplier_note_attached", subject, changes, details, cause)
    ]
