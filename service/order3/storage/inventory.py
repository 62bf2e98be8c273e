"""Reading and writing inventory records, the stock ledger and exceptions.

Every function takes the connection it runs on, so that an operation's writes share the
transaction of the audit record that describes them. Updates name the version they read
(`Conflict` when someone changed the record since), and the ledger has inserts only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.domain.errors import Conflict
from order3.domain.exceptions import ExceptionKind, ExceptionRecord, ExceptionState
from order3.domain.inventory import (
    Bin,
    CountLine,
    CountState,
    Item,
    Location,
    Movement,
    MovementKind,
    Owner,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderState,
    Receipt,
    ReceiptLine,
    Reservation,
    ReservationState,
    SignedMoney,
    StockCount,
    StockLevel,
    Supplier,
    SupplierNote,
    SupplierStatus,
)
from order3.domain.money import Money
from order3.storage import schema as s

AnyRow = sa.Row[Any]
Filters = dict[str, Any]


def stored_bin(bin_: str | None) -> str:
    return bin_ or ""


def shown_bin(bin_: str) -> str | None:
    return bin_ or None


def _owner(row: AnyRow) -> Owner:
    return Owner(id=row.owner_id, type=row.owner_type)


def _owned(row: AnyRow) -> dict[str, Any]:
    return {
        "owner": _owner(row),
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _owner_values(record: Any) -> dict[str, Any]:
    return {
        "owner_id": record.owner.id,
        "owner_type": record.owner.type,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _lock(query: sa.Select[Any], lock: bool) -> sa.Select[Any]:
    # SQLite has one writer at a time, and SQLAlchemy leaves FOR UPDATE out there.
    return query.with_for_update() if lock else query


def _where(table: sa.Table, workspace_id: str, filters: Filters) -> list[sa.ColumnElement[bool]]:
    conditions = [table.c.workspace_id == workspace_id]
    for name, value in filters.items():
        if value is not None:
            conditions.append(table.c[name] == value)
    return conditions


async def _update(
    connection: AsyncConnection,
    table: sa.Table,
    key: dict[str, Any],
    seen_version: int,
    values: dict[str, Any],
) -> None:
    conditions = [table.c[name] == value for name, value in key.items()]
    result = await connection.execute(
        table.update().where(*conditions, table.c.version == seen_version).values(**values)
    )
    if result.rowcount != 1:
        raise Conflict(
            f"the {table.name} record changed while this request ran; read it again and retry",
            **{k: v for k, v in key.items() if k != "workspace_id"},
        )


async def _page(
    connection: AsyncConnection,
    table: sa.Table,
    workspace_id: str,
    key: str,
    filters: Filters,
    after: str | None,
    limit: int,
) -> list[AnyRow]:
    query = sa.select(table).where(*_where(table, workspace_id, filters))
    if after is not None:
        query = query.where(table.c[key] > after)
    return list(await connection.execute(query.order_by(table.c[key]).limit(limit)))


# ---- items ----------------------------------------------------------------------------------


def item_of(row: AnyRow) -> Item:
    return Item(
        sku=row.sku,
        description=row.description,
        unit=row.unit,
        unit_cost=Money(minor_units=row.unit_cost_minor, currency=row.currency),
        category=row.category,
        reorder_point=row.reorder_point,
        reorder_quantity=row.reorder_quantity,
        supplier_id=row.supplier_id,
        **_owned(row),
    )


def _item_values(item: Item) -> dict[str, Any]:
    return {
        "description": item.description,
        "unit": item.unit,
        "unit_cost_minor": item.unit_cost.minor_units,
        "currency": str(item.unit_cost.currency),
        "category": item.category,
        "reorder_point": item.reorder_point,
        "reorder_quantity": item.reorder_quantity,
        "supplier_id": item.supplier_id,
        **_owner_values(item),
    }


async def insert_item(connection: AsyncConnection, workspace_id: str, item: Item) -> None:
    values = {"workspace_id": workspace_id, "sku": item.sku, **_item_values(item)}
    await connection.execute(s.items.insert().values(**values))


async def update_item(
    connection: AsyncConnection, workspace_id: str, item: Item, *, seen_version: int
) -> None:
    key = {"workspace_id": workspace_id, "sku": item.sku}
    await _update(connection, s.items, key, seen_version, _item_values(item))


async def load_item(
    connection: AsyncConnection, workspace_id: str, sku: str, *, lock: bool = False
) -> Item | None:
    """One item; ``lock`` holds its row until the transaction ends (PostgreSQL), which is
    how operations that change an item's stock take turns."""
    query = sa.select(s.items).where(s.items.c.workspace_id == workspace_id, s.items.c.sku == sku)
    row = (await connection.execute(_lock(query, lock))).one_or_none()
    return None if row is None else item_of(row)


async def list_items(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[Item]:
    rows = await _page(connection, s.items, workspace_id, "sku", filters, after, limit)
    return [item_of(row) for row in rows]


async def all_items(connection: AsyncConnection, workspace_id: str) -> dict[str, Item]:
    rows = await connection.execute(
        sa.select(s.items).where(s.items.c.workspace_id == workspace_id)
    )
    return {row.sku: item_of(row) for row in rows}


# ---- locations and bins ---------------------------------------------------------------------


async def insert_location(
    connection: AsyncConnection, workspace_id: str, location: Location
) -> None:
    await connection.execute(
        s.locations.insert().values(
            workspace_id=workspace_id, id=location.id, name=location.name, **_owner_values(location)
        )
    )
    if location.bins:
        await connection.execute(
            s.bins.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "location_id": location.id,
                    "code": bin_.code,
                    "description": bin_.description,
                }
                for bin_ in location.bins
            ],
        )


async def list_locations(
    connection: AsyncConnection, workspace_id: str, after: str | None, limit: int
) -> list[Location]:
    rows = await _page(connection, s.locations, workspace_id, "id", {}, after, limit)
    bins: dict[str, list[Bin]] = {row.id: [] for row in rows}
    if rows:
        found = await connection.execute(
            sa.select(s.bins)
            .where(s.bins.c.workspace_id == workspace_id, s.bins.c.location_id.in_(list(bins)))
            .order_by(s.bins.c.location_id, s.bins.c.code)
        )
        for row in found:
            bins[row.location_id].append(Bin(code=row.code, description=row.description))
    return [Location(id=row.id, name=row.name, bins=bins[row.id], **_owned(row)) for row in rows]


async def bin_exists(
    connection: AsyncConnection, workspace_id: str, location_id: str, code: str
) -> bool:
    query = sa.select(s.bins.c.code).where(
        s.bins.c.workspace_id == workspace_id,
        s.bins.c.location_id == location_id,
        s.bins.c.code == code,
    )
    return (await connection.execute(query)).first() is not None


async def location_exists(connection: AsyncConnection, workspace_id: str, location_id: str) -> bool:
    query = sa.select(s.locations.c.id).where(
        s.locations.c.workspace_id == workspace_id, s.locations.c.id == location_id
    )
    return (await connection.execute(query)).first() is not None


# ---- suppliers and their notes --------------------------------------------------------------


def supplier_of(row: AnyRow) -> Supplier:
    return Supplier(
        id=row.id,
        name=row.name,
        status=SupplierStatus(row.status),
        lead_time_days=row.lead_time_days,
        **_owned(row),
    )


def _supplier_values(supplier: Supplier) -> dict[str, Any]:
    return {
        "name": supplier.name,
        "status": str(supplier.status),
        "lead_time_days": supplier.lead_time_days,
        **_owner_values(supplier),
    }


async def insert_supplier(
    connection: AsyncConnection, workspace_id: str, supplier: Supplier
) -> None:
    values = {"workspace_id": workspace_id, "id": supplier.id, **_supplier_values(supplier)}
    await connection.execute(s.suppliers.insert().values(**values))


async def update_supplier(
    connection: AsyncConnection, workspace_id: str, supplier: Supplier, *, seen_version: int
) -> None:
    key = {"workspace_id": workspace_id, "id": supplier.id}
    await _update(connection, s.suppliers, key, seen_version, _supplier_values(supplier))


async def load_supplier(
    connection: AsyncConnection, workspace_id: str, supplier_id: str, *, lock: bool = False
) -> Supplier | None:
    query = sa.select(s.suppliers).where(
        s.suppliers.c.workspace_id == workspace_id, s.suppliers.c.id == supplier_id
    )
    row = (await connection.execute(_lock(query, lock))).one_or_none()
    return None if row is None else supplier_of(row)


async def list_suppliers(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[Supplier]:
    rows = await _page(connection, s.suppliers, workspace_id, "id", filters, after, limit)
    return [supplier_of(row) for row in rows]


async def all_suppliers(connection: AsyncConnection, workspace_id: str) -> dict[str, Supplier]:
    rows = await connection.execute(
        sa.select(s.suppliers).where(s.suppliers.c.workspace_id == workspace_id)
    )
    return {row.id: supplier_of(row) for row in rows}


async def insert_supplier_note(
    connection: AsyncConnection, workspace_id: str, note: SupplierNote
) -> None:
    await connection.execute(
        s.supplier_notes.insert().values(
            workspace_id=workspace_id,
            id=note.id,
            supplier_id=note.supplier_id,
            note=note.note,
            **_owner_values(note),
        )
    )


# ---- purchase orders ------------------------------------------------------------------------


def _order_of(row: AnyRow, lines: list[PurchaseOrderLine]) -> PurchaseOrder:
    return PurchaseOrder(
        id=row.id,
        supplier_id=row.supplier_id,
        location_id=row.location_id,
        currency=row.currency,
        state=PurchaseOrderState(row.state),
        expected_date=row.expected_date,
        lines=lines,
        **_owned(row),
    )


def _order_values(order: PurchaseOrder) -> dict[str, Any]:
    return {
        "supplier_id": order.supplier_id,
        "location_id": order.location_id,
        "currency": order.currency,
        "state": str(order.state),
        "expected_date": order.expected_date,
        **_owner_values(order),
    }


def _line_values(workspace_id: str, order: PurchaseOrder) -> list[dict[str, Any]]:
    return [
        {
            "workspace_id": workspace_id,
            "purchase_order_id": order.id,
            "line": line.line,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_cost_minor": line.unit_cost.minor_units,
            "received": line.received,
        }
        for line in order.lines
    ]


async def insert_purchase_order(
    connection: AsyncConnection, workspace_id: str, order: PurchaseOrder
) -> None:
    values = {"workspace_id": workspace_id, "id": order.id, **_order_values(order)}
    await connection.execute(s.purchase_orders.insert().values(**values))
    await connection.execute(s.purchase_order_lines.insert(), _line_values(workspace_id, order))


async def update_purchase_order(
    connection: AsyncConnection, workspace_id: str, order: PurchaseOrder, *, seen_version: int
) -> None:
    """Store the order and replace its lines, if nobody changed it since ``seen_version``."""
    key = {"workspace_id": workspace_id, "id": order.id}
    await _update(connection, s.purchase_orders, key, seen_version, _order_values(order))
    lines = s.purchase_order_lines
    await connection.execute(
        lines.delete().where(
            lines.c.workspace_id == workspace_id, lines.c.purchase_order_id == order.id
        )
    )
    await connection.execute(lines.insert(), _line_values(workspace_id, order))


async def _orders_with_lines(
    connection: AsyncConnection, workspace_id: str, rows: Sequence[AnyRow]
) -> list[PurchaseOrder]:
    by_order: dict[str, list[PurchaseOrderLine]] = {row.id: [] for row in rows}
    currency = {row.id: row.currency for row in rows}
    lines = s.purchase_order_lines
    for chunk in _chunks(list(by_order)):
        found = await connection.execute(
            sa.select(lines)
            .where(lines.c.workspace_id == workspace_id, lines.c.purchase_order_id.in_(chunk))
            .order_by(lines.c.purchase_order_id, lines.c.line)
        )
        for line in found:
            by_order[line.purchase_order_id].append(
                PurchaseOrderLine(
                    line=line.line,
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_cost=Money(
                        minor_units=line.unit_cost_minor, currency=currency[line.purchase_order_id]
                    ),
                    received=line.received,
                )
            )
    return [_order_of(row, by_order[row.id]) for row in rows]


async def load_purchase_order(
    connection: AsyncConnection, workspace_id: str, order_id: str, *, lock: bool = False
) -> PurchaseOrder | None:
    table = s.purchase_orders
    query = sa.select(table).where(table.c.workspace_id == workspace_id, table.c.id == order_id)
    row = (await connection.execute(_lock(query, lock))).one_or_none()
    if row is None:
        return None
    return (await _orders_with_lines(connection, workspace_id, [row]))[0]


async def list_purchase_orders(
    connection: AsyncConnection,
    workspace_id: str,
    filters: Filters,
    after: str | None,
    limit: int,
    *,
    sku: str | None = None,
) -> list[PurchaseOrder]:
    table, lines = s.purchase_orders, s.purchase_order_lines
    query = sa.select(table).where(*_where(table, workspace_id, filters))
    if sku is not None:
        query = query.where(
            table.c.id.in_(
                sa.select(lines.c.purchase_order_id).where(
                    lines.c.workspace_id == workspace_id, lines.c.sku == sku
                )
            )
        )
    if after is not None:
        query = query.where(table.c.id > after)
    rows = list(await connection.execute(query.order_by(table.c.id).limit(limit)))
    return await _orders_with_lines(connection, workspace_id, rows)


async def orders_in_states(
    connection: AsyncConnection, workspace_id: str, states: Iterable[PurchaseOrderState]
) -> list[PurchaseOrder]:
    table = s.purchase_orders
    query = sa.select(table).where(
        table.c.workspace_id == workspace_id, table.c.state.in_([str(x) for x in states])
    )
    rows = list(await connection.execute(query.order_by(table.c.id)))
    return await _orders_with_lines(connection, workspace_id, rows)


async def orders_by_id(
    connection: AsyncConnection, workspace_id: str, order_ids: Iterable[str]
) -> list[PurchaseOrder]:
    table, rows = s.purchase_orders, []
    for chunk in _chunks(sorted(set(order_ids))):
        query = sa.select(table).where(table.c.workspace_id == workspace_id, table.c.id.in_(chunk))
        rows += list(await connection.execute(query))
    return await _orders_with_lines(connection, workspace_id, rows)


# ---- receipts -------------------------------------------------------------------------------


async def insert_receipt(connection: AsyncConnection, workspace_id: str, receipt: Receipt) -> None:
    await connection.execute(
        s.receipts.insert().values(
            workspace_id=workspace_id,
            id=receipt.id,
            purchase_order_id=receipt.purchase_order_id,
            location_id=receipt.location_id,
            closes=receipt.closes,
            short=receipt.short,
            **_owner_values(receipt),
        )
    )
    if receipt.lines:
        await connection.execute(
            s.receipt_lines.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "receipt_id": receipt.id,
                    "position": position,
                    "line": line.line,
                    "sku": line.sku,
                    "bin": stored_bin(line.bin),
                    "quantity": line.quantity,
                    "unit_cost_minor": line.unit_cost.minor_units,
                    "currency": str(line.unit_cost.currency),
                }
                for position, line in enumerate(receipt.lines)
            ],
        )


async def list_receipts(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[Receipt]:
    rows = await _page(connection, s.receipts, workspace_id, "id", filters, after, limit)
    return await _receipts_with_lines(connection, workspace_id, rows)


async def short_receipts(connection: AsyncConnection, workspace_id: str) -> list[Receipt]:
    table = s.receipts
    query = sa.select(table).where(table.c.workspace_id == workspace_id, table.c.short.is_(True))
    rows = list(await connection.execute(query.order_by(table.c.id)))
    return await _receipts_with_lines(connection, workspace_id, rows)


async def _receipts_with_lines(
    connection: AsyncConnection, workspace_id: str, rows: Sequence[AnyRow]
) -> list[Receipt]:
    by_receipt: dict[str, list[ReceiptLine]] = {row.id: [] for row in rows}
    lines = s.receipt_lines
    for chunk in _chunks(list(by_receipt)):
        found = await connection.execute(
            sa.select(lines)
            .where(lines.c.workspace_id == workspace_id, lines.c.receipt_id.in_(chunk))
            .order_by(lines.c.receipt_id, lines.c.position)
        )
        for line in found:
            by_receipt[line.receipt_id].append(
                ReceiptLine(
                    line=line.line,
                    sku=line.sku,
                    bin=shown_bin(line.bin),
                    quantity=line.quantity,
                    unit_cost=Money(minor_units=line.unit_cost_minor, currency=line.currency),
                )
            )
    return [
        Receipt(
            id=row.id,
            purchase_order_id=row.purchase_order_id,
            location_id=row.location_id,
            closes=row.closes,
            short=row.short,
            lines=by_receipt[row.id],
            **_owned(row),
        )
        for row in rows
    ]


# ---- stock counts ---------------------------------------------------------------------------


def _count_line_values(workspace_id: str, count: StockCount) -> list[dict[str, Any]]:
    return [
        {
            "workspace_id": workspace_id,
            "count_id": count.id,
            "sku": line.sku,
            "bin": stored_bin(line.bin),
            "book": line.book,
            "counted": line.counted,
        }
        for line in count.lines
    ]


def _count_values(count: StockCount) -> dict[str, Any]:
    return {
        "location_id": count.location_id,
        "state": str(count.state),
        "due_date": count.due_date,
        **_owner_values(count),
    }


async def insert_count(connection: AsyncConnection, workspace_id: str, count: StockCount) -> None:
    values = {"workspace_id": workspace_id, "id": count.id, **_count_values(count)}
    await connection.execute(s.stock_counts.insert().values(**values))
    await connection.execute(s.stock_count_lines.insert(), _count_line_values(workspace_id, count))


async def update_count(
    connection: AsyncConnection, workspace_id: str, count: StockCount, *, seen_version: int
) -> None:
    key = {"workspace_id": workspace_id, "id": count.id}
    await _update(connection, s.stock_counts, key, seen_version, _count_values(count))
    lines = s.stock_count_lines
    await connection.execute(
        lines.delete().where(lines.c.workspace_id == workspace_id, lines.c.count_id == count.id)
    )
    await connection.execute(lines.insert(), _count_line_values(workspace_id, count))


async def _counts_with_lines(
    connection: AsyncConnection, workspace_id: str, rows: Sequence[AnyRow]
) -> list[StockCount]:
    by_count: dict[str, list[CountLine]] = {row.id: [] for row in rows}
    lines = s.stock_count_lines
    for chunk in _chunks(list(by_count)):
        found = await connection.execute(
            sa.select(lines)
            .where(lines.c.workspace_id == workspace_id, lines.c.count_id.in_(chunk))
            .order_by(lines.c.count_id, lines.c.sku, lines.c.bin)
        )
        for line in found:
            by_count[line.count_id].append(
                CountLine(
                    sku=line.sku, bin=shown_bin(line.bin), book=line.book, counted=line.counted
                )
            )
    return [
        StockCount(
            id=row.id,
            location_id=row.location_id,
            state=CountState(row.state),
            due_date=row.due_date,
            lines=by_count[row.id],
            **_owned(row),
        )
        for row in rows
    ]


async def load_count(
    connection: AsyncConnection, workspace_id: str, count_id: str, *, lock: bool = False
) -> StockCount | None:
    table = s.stock_counts
    query = sa.select(table).where(table.c.workspace_id == workspace_id, table.c.id == count_id)
    row = (await connection.execute(_lock(query, lock))).one_or_none()
    if row is None:
        return None
    return (await _counts_with_lines(connection, workspace_id, [row]))[0]


async def list_counts(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[StockCount]:
    rows = await _page(connection, s.stock_counts, workspace_id, "id", filters, after, limit)
    return await _counts_with_lines(connection, workspace_id, rows)


async def counted_counts(connection: AsyncConnection, workspace_id: str) -> list[StockCount]:
    """Recorded and posted counts, oldest first."""
    table = s.stock_counts
    query = sa.select(table).where(
        table.c.workspace_id == workspace_id,
        table.c.state.in_([str(CountState.RECORDED), str(CountState.POSTED)]),
    )
    rows = list(await connection.execute(query.order_by(table.c.id)))
    return await _counts_with_lines(connection, workspace_id, rows)


# ---- reservations ---------------------------------------------------------------------------


def _reservation_of(row: AnyRow) -> Reservation:
    return Reservation(
        id=row.id,
        sku=row.sku,
        location_id=row.location_id,
        bin=shown_bin(row.bin),
        quantity=row.quantity,
        state=ReservationState(row.state),
        reference=row.reference,
        **_owned(row),
    )


async def insert_reservation(
    connection: AsyncConnection, workspace_id: str, reservation: Reservation
) -> None:
    await connection.execute(
        s.reservations.insert().values(
            workspace_id=workspace_id,
            id=reservation.id,
            sku=reservation.sku,
            location_id=reservation.location_id,
            bin=stored_bin(reservation.bin),
            quantity=reservation.quantity,
            state=str(reservation.state),
            reference=reservation.reference,
            **_owner_values(reservation),
        )
    )


async def update_reservation(
    connection: AsyncConnection,
    workspace_id: str,
    reservation: Reservation,
    *,
    seen_version: int,
) -> None:
    key = {"workspace_id": workspace_id, "id": reservation.id}
    values = {"state": str(reservation.state), **_owner_values(reservation)}
    await _update(connection, s.reservations, key, seen_version, values)


async def load_reservation(
    connection: AsyncConnection, workspace_id: str, reservation_id: str
) -> Reservation | None:
    table = s.reservations
    query = sa.select(table).where(
        table.c.workspace_id == workspace_id, table.c.id == reservation_id
    )
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else _reservation_of(row)


async def list_reservations(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[Reservation]:
    rows = await _page(connection, s.reservations, workspace_id, "id", filters, after, limit)
    return [_reservation_of(row) for row in rows]


async def reserved_at(
    connection: AsyncConnection, workspace_id: str, sku: str, location_id: str, bin_: str | None
) -> int:
    table = s.reservations
    query = sa.select(sa.func.coalesce(sa.func.sum(table.c.quantity), 0)).where(
        table.c.workspace_id == workspace_id,
        table.c.sku == sku,
        table.c.location_id == location_id,
        table.c.bin == stored_bin(bin_),
        table.c.state == str(ReservationState.ACTIVE),
    )
    return int((await connection.execute(query)).scalar_one())


# ---- the stock ledger -----------------------------------------------------------------------


def _movement_of(row: AnyRow) -> Movement:
    return Movement(
        id=row.id,
        kind=MovementKind(row.kind),
        sku=row.sku,
        location_id=row.location_id,
        bin=shown_bin(row.bin),
        quantity=row.quantity,
        value=SignedMoney(minor_units=row.value_minor, currency=row.currency),
        reference={"type": row.reference_type, "id": row.reference_id},
        owner=_owner(row),
        created_at=row.created_at,
        note=row.note,
    )


async def append_movements(
    connection: AsyncConnection, workspace_id: str, movements: Sequence[Movement]
) -> None:
    """Append to the ledger. There is no function that changes or removes a movement."""
    if not movements:
        return
    await connection.execute(
        s.stock_ledger.insert(),
        [
            {
                "workspace_id": workspace_id,
                "id": m.id,
                "kind": str(m.kind),
                "sku": m.sku,
                "location_id": m.location_id,
                "bin": stored_bin(m.bin),
                "quantity": m.quantity,
                "value_minor": m.value.minor_units,
                "currency": m.value.currency,
                "reference_type": m.reference["type"],
                "reference_id": m.reference["id"],
                "note": m.note,
                "owner_id": m.owner.id,
                "owner_type": m.owner.type,
                "created_at": m.created_at,
            }
            for m in movements
        ],
    )


async def stock_at(
    connection: AsyncConnection, workspace_id: str, sku: str, location_id: str, bin_: str | None
) -> tuple[int, int]:
    """Units on hand and their value in minor units, summed from the ledger."""
    ledger = s.stock_ledger
    query = sa.select(
        sa.func.coalesce(sa.func.sum(ledger.c.quantity), 0),
        sa.func.coalesce(sa.func.sum(ledger.c.value_minor), 0),
    ).where(
        ledger.c.workspace_id == workspace_id,
        ledger.c.sku == sku,
        ledger.c.location_id == location_id,
        ledger.c.bin == stored_bin(bin_),
    )
    quantity, value = (await connection.execute(query)).one()
    return int(quantity), int(value)


async def list_movements(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[Movement]:
    rows = await _page(connection, s.stock_ledger, workspace_id, "id", filters, after, limit)
    return [_movement_of(row) for row in rows]


async def stock_levels(
    connection: AsyncConnection,
    workspace_id: str,
    filters: Filters,
    after: tuple[str, str, str] | None,
    limit: int,
) -> list[StockLevel]:
    """On hand, reserved and value per (sku, location, bin) with any movement, in key order."""
    ledger, held = s.stock_ledger, s.reservations
    keys = (ledger.c.sku, ledger.c.location_id, ledger.c.bin)
    conditions = _where(ledger, workspace_id, filters)
    if after is not None:
        conditions.append(sa.tuple_(*keys) > sa.tuple_(*after))
    on_hand = (
        sa.select(
            *keys,
            sa.func.sum(ledger.c.quantity).label("on_hand"),
            sa.func.sum(ledger.c.value_minor).label("value_minor"),
            sa.func.min(ledger.c.currency).label("currency"),
        )
        .where(*conditions)
        .group_by(*keys)
        .order_by(*keys)
        .limit(limit)
        .subquery()
    )
    reserved = (
        sa.select(
            held.c.sku,
            held.c.location_id,
            held.c.bin,
            sa.func.sum(held.c.quantity).label("reserved"),
        )
        .where(held.c.workspace_id == workspace_id, held.c.state == str(ReservationState.ACTIVE))
        .group_by(held.c.sku, held.c.location_id, held.c.bin)
        .subquery()
    )
    query = (
        sa.select(on_hand, sa.func.coalesce(reserved.c.reserved, 0).label("reserved"))
        .select_from(
            on_hand.outerjoin(
                reserved,
                sa.and_(
                    reserved.c.sku == on_hand.c.sku,
                    reserved.c.location_id == on_hand.c.location_id,
                    reserved.c.bin == on_hand.c.bin,
                ),
            )
        )
        .order_by(on_hand.c.sku, on_hand.c.location_id, on_hand.c.bin)
    )
    return [
        StockLevel(
            sku=row.sku,
            location_id=row.location_id,
            bin=shown_bin(row.bin),
            on_hand=int(row.on_hand),
            reserved=int(row.reserved),
            available=int(row.on_hand) - int(row.reserved),
            value=SignedMoney(minor_units=int(row.value_minor), currency=row.currency),
        )
        for row in await connection.execute(query)
    ]


async def on_hand_by_location(
    connection: AsyncConnection, workspace_id: str
) -> dict[tuple[str, str], int]:
    """Units on hand per (sku, location), over every bin, for each pair the ledger names."""
    ledger = s.stock_ledger
    query = (
        sa.select(ledger.c.sku, ledger.c.location_id, sa.func.sum(ledger.c.quantity))
        .where(ledger.c.workspace_id == workspace_id)
        .group_by(ledger.c.sku, ledger.c.location_id)
    )
    return {(sku, location): int(total) for sku, location, total in await connection.execute(query)}


async def bins_holding(
    connection: AsyncConnection, workspace_id: str, sku: str, location_id: str
) -> list[str | None]:
    """The bins of a location where the ledger puts some of ``sku``, in order."""
    ledger = s.stock_ledger
    query = (
        sa.select(ledger.c.bin)
        .where(
            ledger.c.workspace_id == workspace_id,
            ledger.c.sku == sku,
            ledger.c.location_id == location_id,
        )
        .group_by(ledger.c.bin)
        .having(sa.func.sum(ledger.c.quantity) != 0)
        .order_by(ledger.c.bin)
    )
    return [shown_bin(row.bin) for row in await connection.execute(query)]


# ---- exceptions -----------------------------------------------------------------------------


def exception_of(row: AnyRow) -> ExceptionRecord:
    return ExceptionRecord(
        id=row.id,
        kind=ExceptionKind(row.kind),
        state=ExceptionState(row.state),
        condition=row.condition,
        sku=row.sku,
        location_id=row.location_id,
        supplier_id=row.supplier_id,
        reason=row.reason,
        evidence=row.evidence,
        owner={"id": row.owner_id, "type": row.owner_type},
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        dismissal=row.dismissal,
        draft_id=row.draft_id,
        resolved_at=row.resolved_at,
    )


_HOLDING = (ExceptionState.OPEN, ExceptionState.DRAFTED, ExceptionState.DISMISSED)


def _exception_values(record: ExceptionRecord) -> dict[str, Any]:
    holds = record.state in _HOLDING and record.resolved_at is None
    return {
        "kind": str(record.kind),
        "state": str(record.state),
        "condition": record.condition,
        "active_condition": record.condition if holds else None,
        "sku": record.sku,
        "location_id": record.location_id,
        "supplier_id": record.supplier_id,
        "reason": record.reason,
        "evidence": record.evidence,
        "dismissal": record.dismissal,
        "draft_id": record.draft_id,
        "resolved_at": record.resolved_at,
        "owner_id": record.owner["id"],
        "owner_type": record.owner["type"],
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


async def insert_exception(
    connection: AsyncConnection, workspace_id: str, record: ExceptionRecord
) -> bool:
    """Insert unless an exception for the same condition is still active; say whether it was.

    The unique constraint decides, so two detections running at once open one exception.
    """
    values = {"workspace_id": workspace_id, "id": record.id, **_exception_values(record)}
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(s.inventory_exceptions)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(s.inventory_exceptions.c.id)
    )
    return (await connection.execute(statement)).first() is not None


async def update_exception(
    connection: AsyncConnection, workspace_id: str, record: ExceptionRecord, *, seen_version: int
) -> None:
    key = {"workspace_id": workspace_id, "id": record.id}
    await _update(connection, s.inventory_exceptions, key, seen_version, _exception_values(record))


async def load_exception(
    connection: AsyncConnection, workspace_id: str, exception_id: str
) -> ExceptionRecord | None:
    table = s.inventory_exceptions
    query = sa.select(table).where(table.c.workspace_id == workspace_id, table.c.id == exception_id)
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else exception_of(row)


async def active_exception(
    connection: AsyncConnection, workspace_id: str, condition: str
) -> ExceptionRecord | None:
    table = s.inventory_exceptions
    query = sa.select(table).where(
        table.c.workspace_id == workspace_id, table.c.active_condition == condition
    )
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else exception_of(row)


async def active_exceptions(
    connection: AsyncConnection, workspace_id: str
) -> list[ExceptionRecord]:
    table = s.inventory_exceptions
    query = sa.select(table).where(
        table.c.workspace_id == workspace_id, table.c.active_condition.is_not(None)
    )
    return [exception_of(row) for row in await connection.execute(query.order_by(table.c.id))]


async def list_exceptions(
    connection: AsyncConnection, workspace_id: str, filters: Filters, after: str | None, limit: int
) -> list[ExceptionRecord]:
    rows = await _page(
        connection, s.inventory_exceptions, workspace_id, "id", filters, after, limit
    )
    return [exception_of(row) for row in rows]


# ---- workspaces -----------------------------------------------------------------------------


# ---- what a draft names, in one round trip --------------------------------------------------


def _named(
    type_: str,
    table: sa.Table,
    key: str,
    param: str,
    detail: Any = None,
    created_by: Any = None,
    currency: Any = None,
) -> sa.Select[Any]:
    return sa.select(
        sa.literal(type_, sa.String).label("type"),
        table.c[key].label("id"),
        table.c.version.label("version"),
        sa.cast(detail if detail is not None else sa.null(), sa.String).label("detail"),
        sa.cast(created_by if created_by is not None else sa.null(), sa.String).label("created_by"),
        sa.cast(currency if currency is not None else sa.null(), sa.String).label("currency"),
    ).where(
        table.c.workspace_id == sa.bindparam("workspace_id"),
        table.c[key].in_(sa.bindparam(param, expanding=True)),
    )


# Built once: the statement is compiled once and then only executed with new parameters.
_NAMED_RECORDS = sa.union_all(
    _named("item", s.items, "sku", "skus", detail=s.items.c.category, currency=s.items.c.currency),
    _named(
        "supplier",
        s.suppliers,
        "id",
        "suppliers",
        detail=s.suppliers.c.status,
        created_by=s.suppliers.c.owner_id,
    ),
    _named("location", s.locations, "id", "locations"),
    sa.select(
        sa.literal("bin", sa.String).label("type"),
        s.bins.c.code.label("id"),
        sa.literal(0, sa.Integer).label("version"),
        sa.cast(s.bins.c.location_id, sa.String).label("detail"),
        sa.cast(sa.null(), sa.String).label("created_by"),
        sa.cast(sa.null(), sa.String).label("currency"),
    ).where(
        s.bins.c.workspace_id == sa.bindparam("workspace_id"),
        s.bins.c.location_id.in_(sa.bindparam("bin_locations", expanding=True)),
    ),
)


class NamedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An item, supplier, location or bin a draft names, as stored now."""

    type: str
    id: str
    version: int
    """0 for a bin, which has no version."""
    detail: str | None
    """An item's category, a supplier's status, a bin's location."""
    created_by: str | None
    """Who created a supplier."""
    currency: str | None
    """The currency an item is valued in."""


async def named_records(
    connection: AsyncConnection,
    workspace_id: str,
    *,
    skus: Iterable[str] = (),
    suppliers: Iterable[str] = (),
    locations: Iterable[str] = (),
    bin_locations: Iterable[str] = (),
) -> list[NamedRecord]:
    """The items, suppliers and locations among those named that exist, and every bin of the
    locations in ``bin_locations``, in one statement."""
    rows = await connection.execute(
        _NAMED_RECORDS,
        {
            "workspace_id": workspace_id,
            "skus": sorted(set(skus)),
            "suppliers": sorted(set(suppliers)),
            "locations": sorted(set(locations)),
            "bin_locations": sorted(set(bin_locations)),
        },
    )
    return [NamedRecord(**row._mapping) for row in rows]


# ---- versions of any record ----------------------------------------------------------------

_VERSIONED: dict[str, tuple[sa.Table, str]] = {
    "item": (s.items, "sku"),
    "location": (s.locations, "id"),
    "supplier": (s.suppliers, "id"),
    "supplier_note": (s.supplier_notes, "id"),
    "purchase_order": (s.purchase_orders, "id"),
    "receipt": (s.receipts, "id"),
    "count": (s.stock_counts, "id"),
    "reservation": (s.reservations, "id"),
    "exception": (s.inventory_exceptions, "id"),
}


async def record_versions(
    connection: AsyncConnection,
    workspace_id: str,
    records: Iterable[tuple[str, str]],
    *,
    lock: bool = False,
) -> dict[tuple[str, str], int]:
    """The version of each ``(type, id)`` among ``records`` that exists (any record type a
    draft may name); ``lock`` holds the rows until the transaction ends (PostgreSQL).

    Raises:
        KeyError: a type that is not a versioned record.
    """
    wanted: dict[str, set[str]] = {}
    for type_, id_ in records:
        wanted.setdefault(type_, set()).add(id_)
    found: dict[tuple[str, str], int] = {}
    for type_, ids in sorted(wanted.items()):
        table, key = _VERSIONED[type_]
        query = sa.select(table.c[key].label("id"), table.c.version).where(
            table.c.workspace_id == workspace_id, table.c[key].in_(sorted(ids))
        )
        found.update(
            ((type_, row.id), row.version) for row in await connection.execute(_lock(query, lock))
        )
    return found


async def workspace_ids(connection: AsyncConnection) -> list[str]:
    rows = await connection.execute(sa.select(s.workspaces.c.id).order_by(s.workspaces.c.id))
    return [row.id for row in rows]


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
