"""Inventory operations: receiving, transfers, adjustments, counts, reservations.

An operation is an async function ``op(connection, actor, ask, *, cause=None)`` returning
``(value, audit_entries)``: exactly the shape of a change the audit appender commits, so
one or several operations run in one transaction with their signed records::

    value, records = await appender.commit(lambda c: transfer(c, actor, ask))

Each audit entry lists every record the operation touched, with its version before and after
(``None`` before for a new record, such as a ledger movement). ``cause`` is copied into the
entry; executing a draft passes ``{"draft_id": ...}``.

Operations that change an item's stock first lock that item's row (PostgreSQL; SQLite has a
single writer), then read on-hand from the ledger, so two of them never both spend the same
units. On hand never goes below zero, and a transfer never moves reserved units.

How an approved draft's payload maps to an operation (`order3.workflow.execution` converts
the payload to the input and runs the operation when the draft is executed):

    draft kind        input               operation
    purchase_order    NewPurchaseOrder    inventory_records.create_purchase_order
    transfer          Transfer            transfer
    adjustment        Adjustment          post_adjustment
    count_task        OpenCount           open_count (then record_count, post_count)
    supplier_note     NewSupplierNote     inventory_records.attach_supplier_note
    reconciliation    Reconciliation      reconcile

``receive``, ``reserve`` and ``release`` record what happened on the floor and have no draft
kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.audit.records import AuditEntry, utc_timestamp
from order3.domain.errors import Conflict, InvalidInput, NotFound
from order3.domain.identifiers import new_id
from order3.domain.inventory import (
    OUTSTANDING,
    Adjustment,
    CountLine,
    CountState,
    Item,
    Movement,
    MovementKind,
    OpenCount,
    PurchaseOrderLine,
    Receipt,
    ReceiptLine,
    Receive,
    Reconciliation,
    RecordCount,
    Reservation,
    ReservationState,
    Reserve,
    SignedMoney,
    StockCount,
    Transfer,
    ensure_can_take,
    ensure_same_currency,
    record_change,
    state_after_receipt,
    value_leaving,
)
from order3.domain.principals import Actor
from order3.storage import inventory as store
from order3.workflow.inventory_records import (
    Change,
    attach_supplier_note,
    create_item,
    create_location,
    create_purchase_order,
    create_supplier,
    entry,
    owner_of,
)

__all__ = [
    "attach_supplier_note",
    "create_item",
    "create_location",
    "create_purchase_order",
    "create_supplier",
    "open_count",
    "post_adjustment",
    "post_count",
    "receive",
    "reconcile",
    "record_count",
    "release",
    "reserve",
    "transfer",
]


async def _lock_items(
    connection: AsyncConnection, actor: Actor, skus: Iterable[tuple[str, str]]
) -> dict[str, Item]:
    """Lock items in SKU order (so two operations never wait on each other in a circle)."""
    wanted = dict(skus)
    locked = {}
    for sku in sorted(wanted):
        item = await store.load_item(connection, actor.workspace_id, sku, lock=True)
        if item is None:
            raise InvalidInput(wanted[sku], f"no item {sku}")
        locked[sku] = item
    return locked


async def _check_place(
    connection: AsyncConnection, actor: Actor, location_id: str, bin_: str | None, path: str
) -> None:
    if not await store.location_exists(connection, actor.workspace_id, location_id):
        raise InvalidInput(f"{path}location_id", f"no location {location_id}")
    if bin_ is not None and not await store.bin_exists(
        connection, actor.workspace_id, location_id, bin_
    ):
        raise InvalidInput(f"{path}bin", f"no bin {bin_} at location {location_id}")


def _movement(
    actor: Actor,
    kind: MovementKind,
    item: Item,
    place: tuple[str, str | None],
    quantity: int,
    value: int,
    reference: tuple[str, str],
    now: str,
    note: str | None = None,
) -> Movement:
    return Movement(
        id=new_id("mov"),
        kind=kind,
        sku=item.sku,
        location_id=place[0],
        bin=place[1],
        quantity=quantity,
        value=SignedMoney(minor_units=value, currency=str(item.unit_cost.currency)),
        reference={"type": reference[0], "id": reference[1]},
        owner=owner_of(actor),
        created_at=now,
        note=note,
    )


def _created(movements: list[Movement]) -> list[Change]:
    return [record_change("movement", m.id, None, 1) for m in movements]


def _movements_detail(movements: list[Movement]) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "kind": str(m.kind),
            "sku": m.sku,
            "location_id": m.location_id,
            "bin": m.bin,
            "quantity": m.quantity,
            "value_minor": m.value.minor_units,
            "currency": m.value.currency,
        }
        for m in movements
    ]


# ---- receiving ------------------------------------------------------------------------------


async def receive(
    connection: AsyncConnection, actor: Actor, ask: Receive, *, cause: Any = None
) -> tuple[Receipt, list[AuditEntry]]:
    """Receive goods against an open purchase order; ``close`` ends it even if short.

    Raises:
        NotFound: no such purchase order.
        Conflict: the order is received or cancelled already.
        InvalidInput: an unknown line or bin, more than is outstanding, or nothing at all.
    """
    ws = actor.workspace_id
    order = await store.load_purchase_order(connection, ws, ask.purchase_order_id, lock=True)
    if order is None:
        raise NotFound(f"no purchase order {ask.purchase_order_id}")
    if order.state not in OUTSTANDING:
        raise Conflict(f"purchase order {order.id} is {order.state}", state=str(order.state))
    lines = {line.line: line for line in order.lines}
    for index, got in enumerate(ask.lines):
        line = lines.get(got.line)
        if line is None:
            raise InvalidInput(f"$.lines[{index}].line", f"order {order.id} has no line {got.line}")
        if got.quantity > line.outstanding:
            raise InvalidInput(
                f"$.lines[{index}].quantity",
                f"{got.quantity} is more than the {line.outstanding} outstanding "
                f"on line {got.line}",
            )
        await _check_place(connection, actor, order.location_id, got.bin, f"$.lines[{index}].")
    if not ask.close and all(got.quantity == 0 for got in ask.lines):
        raise InvalidInput("$.lines", "nothing received; give a quantity or close the order")
    items = await _lock_items(
        connection,
        actor,
        ((lines[got.line].sku, f"$.lines[{i}]") for i, got in enumerate(ask.lines)),
    )

    now, receipt_id = utc_timestamp(), new_id("rcp")
    received = dict.fromkeys(lines, 0)
    movements, receipt_lines = [], []
    for got in ask.lines:
        line = lines[got.line]
        received[got.line] += got.quantity
        receipt_lines.append(
            ReceiptLine(
                line=got.line,
                sku=line.sku,
                bin=got.bin,
                quantity=got.quantity,
                unit_cost=line.unit_cost,
            )
        )
        if got.quantity:
            value = got.quantity * line.unit_cost.minor_units
            place = (order.location_id, got.bin)
            movements.append(
                _movement(
                    actor,
                    MovementKind.RECEIPT,
                    items[line.sku],
                    place,
                    got.quantity,
                    value,
                    ("receipt", receipt_id),
                    now,
                )
            )
    new_lines = [
        PurchaseOrderLine(
            line=line.line,
            sku=line.sku,
            quantity=line.quantity,
            unit_cost=line.unit_cost,
            received=line.received + received[line.line],
        )
        for line in order.lines
    ]
    state = state_after_receipt(new_lines, close=ask.close)
    short = ask.close and any(line.outstanding > 0 for line in new_lines)
    updated = msgspec.structs.replace(
        order, lines=new_lines, state=state, version=order.version + 1, updated_at=now
    )
    receipt = Receipt(
        id=receipt_id,
        purchase_order_id=order.id,
        location_id=order.location_id,
        closes=ask.close,
        short=short,
        lines=receipt_lines,
        owner=owner_of(actor),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await store.update_purchase_order(connection, ws, updated, seen_version=order.version)
    await store.insert_receipt(connection, ws, receipt)
    await store.append_movements(connection, ws, movements)

    changes = [
        record_change("purchase_order", order.id, order.version, updated.version),
        record_change("receipt", receipt_id, None, 1),
        *_created(movements),
    ]
    details = {
        "purchase_order_id": order.id,
        "state": str(state),
        "closes": ask.close,
        "short": short,
        "movements": _movements_detail(movements),
    }
    subject = ("receipt", receipt_id)
    return receipt, [entry(actor, "inventory.received", subject, changes, details, cause)]


# ---- transfers and adjustments --------------------------------------------------------------


async def transfer(
    connection: AsyncConnection, actor: Actor, ask: Transfer, *, cause: Any = None
) -> tuple[list[Movement], list[AuditEntry]]:
    """Move unreserved stock between bins or locations, at its average cost.

    Raises:
        InvalidInput: an unknown item, location or bin, or the same place on both ends.
        Conflict: fewer unreserved units at the source than asked for.
    """
    ws = actor.workspace_id
    source, target = (ask.from_location_id, ask.from_bin), (ask.to_location_id, ask.to_bin)
    if source == target:
        raise InvalidInput("$.to_location_id", "the transfer starts and ends in the same place")
    await _check_place(connection, actor, source[0], source[1], "$.from_")
    await _check_place(connection, actor, target[0], target[1], "$.to_")
    item = (await _lock_items(connection, actor, [(ask.sku, "$.sku")]))[ask.sku]

    on_hand, value = await store.stock_at(connection, ws, ask.sku, *source)
    reserved = await store.reserved_at(connection, ws, ask.sku, *source)
    ensure_can_take(on_hand, reserved, ask.quantity, what="transfer")
    moved = value_leaving(on_hand, value, ask.quantity)
    now, transfer_id = utc_timestamp(), new_id("trf")
    reference = ("transfer", transfer_id)
    movements = [
        _movement(
            actor, MovementKind.TRANSFER_OUT, item, source, -ask.quantity, -moved, reference, now
        ),
        _movement(
            actor, MovementKind.TRANSFER_IN, item, target, ask.quantity, moved, reference, now
        ),
    ]
    await store.append_movements(connection, ws, movements)

    details = {"transfer_id": transfer_id, "movements": _movements_detail(movements)}
    changes = _created(movements)
    subject = ("transfer", transfer_id)
    return movements, [entry(actor, "inventory.transferred", subject, changes, details, cause)]


async def _adjust(
    connection: AsyncConnection,
    actor: Actor,
    item: Item,
    place: tuple[str, str | None],
    delta: int,
    unit_cost: int,
    kind: MovementKind,
    reference: tuple[str, str],
    note: str | None,
) -> Movement:
    on_hand, value = await store.stock_at(connection, actor.workspace_id, item.sku, *place)
    if on_hand + delta < 0:
        raise Conflict(
            f"cannot take {-delta} of {item.sku}: only {on_hand} on hand",
            on_hand=on_hand,
            wanted=-delta,
        )
    change = delta * unit_cost if delta > 0 else -value_leaving(on_hand, value, -delta)
    return _movement(actor, kind, item, place, delta, change, reference, utc_timestamp(), note)


async def post_adjustment(
    connection: AsyncConnection, actor: Actor, ask: Adjustment, *, cause: Any = None
) -> tuple[Movement, list[AuditEntry]]:
    """Add or write off stock, changing its value.

    Raises:
        InvalidInput: an unknown item, location or bin, a zero delta, or another currency.
        Conflict: a write-off of more than is on hand.
    """
    if ask.quantity_delta == 0:
        raise InvalidInput("$.quantity_delta", "must not be 0")
    await _check_place(connection, actor, ask.location_id, ask.bin, "$.")
    item = (await _lock_items(connection, actor, [(ask.sku, "$.sku")]))[ask.sku]
    ensure_same_currency("$.unit_cost", ask.unit_cost, str(item.unit_cost.currency))

    adjustment_id = new_id("adj")
    movement = await _adjust(
        connection,
        actor,
        item,
        (ask.location_id, ask.bin),
        ask.quantity_delta,
        ask.unit_cost.minor_units,
        MovementKind.ADJUSTMENT,
        ("adjustment", adjustment_id),
        ask.reason_code,
    )
    await store.append_movements(connection, actor.workspace_id, [movement])

    details = {
        "adjustment_id": adjustment_id,
        "reason_code": ask.reason_code,
        "value_change": {
            "minor_units": movement.value.minor_units,
            "currency": movement.value.currency,
        },
        "movements": _movements_detail([movement]),
    }
    subject = ("adjustment", adjustment_id)
    return movement, [
        entry(actor, "inventory.adjusted", subject, _created([movement]), details, cause)
    ]


async def reconcile(
    connection: AsyncConnection, actor: Actor, ask: Reconciliation, *, cause: Any = None
) -> tuple[list[Movement], list[AuditEntry]]:
    """Post a set of corrections together; corrections of zero units change nothing."""
    for index, correction in enumerate(ask.corrections):
        path = f"$.corrections[{index}]"
        ensure_same_currency(f"{path}.unit_cost", correction.unit_cost, str(ask.currency))
        await _check_place(connection, actor, correction.location_id, None, f"{path}.")
    items = await _lock_items(
        connection,
        actor,
        ((c.sku, f"$.corrections[{i}].sku") for i, c in enumerate(ask.corrections)),
    )
    reconciliation_id = new_id("rec")
    movements = []
    for index, correction in enumerate(ask.corrections):
        item = items[correction.sku]
        path = f"$.corrections[{index}].unit_cost"
        ensure_same_currency(path, correction.unit_cost, str(item.unit_cost.currency))
        if correction.quantity_delta == 0:
            continue
        movement = await _adjust(
            connection,
            actor,
            item,
            (correction.location_id, None),
            correction.quantity_delta,
            correction.unit_cost.minor_units,
            MovementKind.ADJUSTMENT,
            ("reconciliation", reconciliation_id),
            correction.note,
        )
        # Appended one by one: a later correction of the same place sees the earlier one.
        await store.append_movements(connection, actor.workspace_id, [movement])
        movements.append(movement)

    details = {"reconciliation_id": reconciliation_id, "movements": _movements_detail(movements)}
    subject = ("reconciliation", reconciliation_id)
    changes = _created(movements)
    return movements, [entry(actor, "inventory.reconciled", subject, changes, details, cause)]


# ---- counts ---------------------------------------------------------------------------------


async def open_count(
    connection: AsyncConnection, actor: Actor, ask: OpenCount, *, cause: Any = None
) -> tuple[StockCount, list[AuditEntry]]:
    """Open a count of some SKUs at a location: one line per bin holding each SKU."""
    ws = actor.workspace_id
    await _check_place(connection, actor, ask.location_id, None, "$.")
    if len(set(ask.skus)) != len(ask.skus):
        raise InvalidInput("$.skus", "each SKU once")
    lines = []
    for index, sku in enumerate(ask.skus):
        if await store.load_item(connection, ws, sku) is None:
            raise InvalidInput(f"$.skus[{index}]", f"no item {sku}")
        bins = await store.bins_holding(connection, ws, sku, ask.location_id) or [None]
        lines += [CountLine(sku=sku, bin=b, book=None, counted=None) for b in bins]
    now = utc_timestamp()
    count = StockCount(
        id=new_id("cnt"),
        location_id=ask.location_id,
        state=CountState.OPEN,
        due_date=None if ask.due_date is None else ask.due_date.isoformat(),
        lines=lines,
        owner=owner_of(actor),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await store.insert_count(connection, ws, count)
    changes = [record_change("count", count.id, None, 1)]
    details = {"location_id": ask.location_id, "skus": list(ask.skus)}
    subject = ("count", count.id)
    return count, [entry(actor, "inventory.count_opened", subject, changes, details, cause)]


async def _count_in_state(
    connection: AsyncConnection, actor: Actor, count_id: str, states: set[CountState]
) -> StockCount:
    count = await store.load_count(connection, actor.workspace_id, count_id, lock=True)
    if count is None:
        raise NotFound(f"no count {count_id}", count_id=count_id)
    if count.state not in states:
        raise Conflict(f"count {count_id} is {count.state}", state=str(count.state))
    return count


async def record_count(
    connection: AsyncConnection, actor: Actor, ask: RecordCount, *, cause: Any = None
) -> tuple[StockCount, list[AuditEntry]]:
    """Record what was counted; each line's book is on hand by the ledger at this moment. A
    bin found holding a SKU of the count adds a line."""
    ws = actor.workspace_id
    count = await _count_in_state(
        connection, actor, ask.count_id, {CountState.OPEN, CountState.RECORDED}
    )
    skus = {line.sku for line in count.lines}
    lines = {(line.sku, line.bin): line for line in count.lines}
    for index, got in enumerate(ask.lines):
        if got.sku not in skus:
            raise InvalidInput(f"$.lines[{index}].sku", f"{got.sku} is not part of this count")
        await _check_place(connection, actor, count.location_id, got.bin, f"$.lines[{index}].")
        book, _ = await store.stock_at(connection, ws, got.sku, count.location_id, got.bin)
        lines[(got.sku, got.bin)] = CountLine(
            sku=got.sku, bin=got.bin, book=book, counted=got.counted
        )
    recorded = _revised(count, CountState.RECORDED, list(lines.values()))
    await store.update_count(connection, ws, recorded, seen_version=count.version)

    changes = [record_change("count", count.id, count.version, recorded.version)]
    details = {"lines": [_line_detail(line) for line in recorded.lines if line.counted is not None]}
    subject = ("count", count.id)
    return recorded, [entry(actor, "inventory.count_recorded", subject, changes, details, cause)]


async def post_count(
    connection: AsyncConnection, actor: Actor, count_id: str, *, cause: Any = None
) -> tuple[StockCount, list[AuditEntry]]:
    """Post the corrections that bring the book to what was counted.

    Raises:
        Conflict: the count is not recorded, or stock moved since it was recorded (record it
            again: a correction computed from an old book would hide that movement).
    """
    ws = actor.workspace_id
    count = await _count_in_state(connection, actor, count_id, {CountState.RECORDED})
    counted = [
        (line, line.book, line.counted)
        for line in count.lines
        if line.counted is not None and line.book is not None
    ]
    items = await _lock_items(
        connection, actor, ((line.sku, "$.count_id") for line, _, _ in counted)
    )
    movements = []
    for line, book, tally in counted:
        on_hand, value = await store.stock_at(connection, ws, line.sku, count.location_id, line.bin)
        if on_hand != book:
            raise Conflict(
                f"{line.sku} moved since the count was recorded ({book} then, {on_hand} "
                "now); record the count again",
                sku=line.sku,
                bin=line.bin,
            )
        delta = tally - book
        if delta == 0:
            continue
        item = items[line.sku]
        unit_cost = value // on_hand if on_hand > 0 else item.unit_cost.minor_units
        movements.append(
            await _adjust(
                connection,
                actor,
                item,
                (count.location_id, line.bin),
                delta,
                unit_cost,
                MovementKind.COUNT_CORRECTION,
                ("count", count.id),
                None,
            )
        )
    posted = _revised(count, CountState.POSTED, count.lines)
    await store.update_count(connection, ws, posted, seen_version=count.version)
    await store.append_movements(connection, ws, movements)

    changes = [
        record_change("count", count.id, count.version, posted.version),
        *_created(movements),
    ]
    details = {"movements": _movements_detail(movements)}
    subject = ("count", count.id)
    return posted, [entry(actor, "inventory.count_posted", subject, changes, details, cause)]


def _revised(count: StockCount, state: CountState, lines: list[CountLine]) -> StockCount:
    return StockCount(
        id=count.id,
        location_id=count.location_id,
        state=state,
        due_date=count.due_date,
        lines=sorted(lines, key=lambda line: (line.sku, line.bin or "")),
        owner=count.owner,
        version=count.version + 1,
        created_at=count.created_at,
        updated_at=utc_timestamp(),
    )


def _line_detail(line: CountLine) -> dict[str, Any]:
    return {"sku": line.sku, "bin": line.bin, "book": line.book, "counted": line.counted}


# ---- reservations ---------------------------------------------------------------------------


async def reserve(
    connection: AsyncConnection, actor: Actor, ask: Reserve, *, cause: Any = None
) -> tuple[Reservation, list[AuditEntry]]:
    """Hold units for someone; only unreserved units on hand can be held.

    Raises:
        Conflict: fewer unreserved units on hand than asked for.
    """
    ws = actor.workspace_id
    await _check_place(connection, actor, ask.location_id, ask.bin, "$.")
    await _lock_items(connection, actor, [(ask.sku, "$.sku")])
    on_hand, _ = await store.stock_at(connection, ws, ask.sku, ask.location_id, ask.bin)
    reserved = await store.reserved_at(connection, ws, ask.sku, ask.location_id, ask.bin)
    ensure_can_take(on_hand, reserved, ask.quantity, what="reserve")
    now = utc_timestamp()
    reservation = Reservation(
        id=new_id("rsv"),
        sku=ask.sku,
        location_id=ask.location_id,
        bin=ask.bin,
        quantity=ask.quantity,
        state=ReservationState.ACTIVE,
        reference=ask.reference,
        owner=owner_of(actor),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await store.insert_reservation(connection, ws, reservation)
    changes = [record_change("reservation", reservation.id, None, 1)]
    details = {
        "sku": ask.sku,
        "location_id": ask.location_id,
        "bin": ask.bin,
        "quantity": ask.quantity,
    }
    subject = ("reservation", reservation.id)
    return reservation, [entry(actor, "inventory.reserved", subject, changes, details, cause)]


async def release(
    connection: AsyncConnection, actor: Actor, reservation_id: str, *, cause: Any = None
) -> tuple[Reservation, list[AuditEntry]]:
    """Let go of a reservation's units."""
    ws = actor.workspace_id
    held = await store.load_reservation(connection, ws, reservation_id)
    if held is None:
        raise NotFound(f"no reservation {reservation_id}", reservation_id=reservation_id)
    if held.state is not ReservationState.ACTIVE:
        raise Conflict(f"reservation {reservation_id} is {held.state}", state=str(held.state))
    released = msgspec.structs.replace(
        held,
        state=ReservationState.RELEASED,
        version=held.version + 1,
        updated_at=utc_timestamp(),
    )
    await store.update_reservation(connection, ws, released, seen_version=held.version)
    changes = [record_change("reservation", held.id, held.version, released.version)]
    subject = ("reservation", held.id)
    return released, [entry(actor, "inventory.released", subject, changes, cause=cause)]
