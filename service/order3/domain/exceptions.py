"""Exceptions: conditions in the inventory that someone should look at, with the evidence.

Detection is a pure function of a `Snapshot` of the workspace. Each `Finding` names its
condition by a key (``low_stock:SKU-1:loc_main``); while an exception with that key is open,
drafted, or dismissed and still true, the same condition opens no second one.

    kind              condition                                            clears by itself
    low_stock         on hand + on order < reorder point at a location     yes
    supplier_delay    an open purchase order past its expected date        yes
    count_drift       a count differs from the book beyond the tolerance   no (an event)
    short_receipt     an order closed with less received than ordered      no (an event)
    sync_conflict     a sync based on an older version than ours           no (an event)
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from order3.domain.inventory import (
    OUTSTANDING,
    CountState,
    Item,
    PurchaseOrder,
    Receipt,
    StockCount,
    Supplier,
)


class ExceptionKind(enum.StrEnum):
    LOW_STOCK = "low_stock"
    COUNT_DRIFT = "count_drift"
    SHORT_RECEIPT = "short_receipt"
    SUPPLIER_DELAY = "supplier_delay"
    SYNC_CONFLICT = "sync_conflict"


CLEARING_KINDS = frozenset({ExceptionKind.LOW_STOCK, ExceptionKind.SUPPLIER_DELAY})
"""Kinds that describe a state which can stop being true; the others describe events."""


class ExceptionState(enum.StrEnum):
    OPEN = "open"
    DRAFTED = "drafted"
    """A draft to resolve it was submitted; it stays until the condition clears."""
    DISMISSED = "dismissed"
    RESOLVED = "resolved"


class ExceptionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An exception as stored and served."""

    id: str
    kind: ExceptionKind
    state: ExceptionState
    condition: str
    """The key of the condition; one exception per condition is active at a time."""
    sku: str | None
    location_id: str | None
    supplier_id: str | None
    reason: str
    evidence: dict[str, Any]
    owner: dict[str, str]
    """Who detected it: a principal, or ``system`` for the background sweep."""
    version: int
    created_at: str
    updated_at: str
    dismissal: dict[str, Any] | None = None
    """``{"reason", "by", "at"}`` once dismissed."""
    draft_id: str | None = None
    resolved_at: str | None = None


@dataclass(frozen=True)
class Finding:
    """A condition detection found true, before it is stored as an exception."""

    kind: ExceptionKind
    key: str
    reason: str
    evidence: dict[str, Any]
    sku: str | None = None
    location_id: str | None = None
    supplier_id: str | None = None


@dataclass
class Snapshot:
    """What detection looks at, read in one transaction."""

    today: str
    """The UTC date, ``YYYY-MM-DD``."""
    items: dict[str, Item]
    suppliers: dict[str, Supplier]
    on_hand: dict[tuple[str, str], int]
    """Units on hand per (sku, location), summed over bins."""
    orders: list[PurchaseOrder]
    """Outstanding purchase orders, and those closed by a short receipt."""
    counts: list[StockCount]
    """Recorded and posted counts, oldest first."""
    short_receipts: list[Receipt]
    drift_percent: float
    drift_units: int
    stocked: set[tuple[str, str]] = field(default_factory=set)
    """(sku, location) pairs with any ledger movement."""


def detect(snapshot: Snapshot) -> Iterator[Finding]:
    """Every condition true in ``snapshot`` (sync conflicts are found by sync, not here)."""
    yield from low_stock(snapshot)
    yield from supplier_delays(snapshot)
    yield from count_drift(snapshot)
    yield from short_receipts(snapshot)


def low_stock(snapshot: Snapshot) -> Iterator[Finding]:
    on_order: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for order in snapshot.orders:
        if order.state not in OUTSTANDING:
            continue
        for line in order.lines:
            if line.outstanding > 0:
                on_order[(line.sku, order.location_id)].append(_order_evidence(order, line.sku))
    for sku, location_id in sorted(snapshot.stocked | set(on_order)):
        item = snapshot.items.get(sku)
        if item is None or item.reorder_point <= 0:
            continue
        on_hand = snapshot.on_hand.get((sku, location_id), 0)
        orders = on_order.get((sku, location_id), [])
        ordered = sum(order["outstanding"] for order in orders)
        if on_hand + ordered >= item.reorder_point:
            continue
        supplier = snapshot.suppliers.get(item.supplier_id or "")
        yield Finding(
            kind=ExceptionKind.LOW_STOCK,
            key=f"low_stock:{sku}:{location_id}",
            reason=(
                f"{sku} at {location_id}: {on_hand} on hand and {ordered} on order, "
                f"below the reorder point of {item.reorder_point}"
            ),
            evidence={
                "sku": sku,
                "description": item.description,
                "location_id": location_id,
                "on_hand": on_hand,
                "on_order": ordered,
                "reorder_point": item.reorder_point,
                "reorder_quantity": item.reorder_quantity,
                "unit_cost": msgspec.to_builtins(item.unit_cost),
                "supplier": None if supplier is None else _supplier_evidence(supplier),
                "open_purchase_orders": orders,
                "owner": msgspec.to_builtins(item.owner),
            },
            sku=sku,
            location_id=location_id,
            supplier_id=item.supplier_id,
        )


def supplier_delays(snapshot: Snapshot) -> Iterator[Finding]:
    for order in snapshot.orders:
        late = order.expected_date is not None and order.expected_date < snapshot.today
        if order.state not in OUTSTANDING or not late:
            continue
        supplier = snapshot.suppliers.get(order.supplier_id)
        outstanding = sum(line.outstanding for line in order.lines)
        yield Finding(
            kind=ExceptionKind.SUPPLIER_DELAY,
            key=f"supplier_delay:{order.id}",
            reason=(
                f"purchase order {order.id} from {order.supplier_id} was expected on "
                f"{order.expected_date}; {outstanding} units are still outstanding"
            ),
            evidence={
                "supplier": None if supplier is None else _supplier_evidence(supplier),
                "location_id": order.location_id,
                "purchase_order": _order_evidence(order),
                "open_purchase_orders": [
                    _order_evidence(other)
                    for other in snapshot.orders
                    if other.supplier_id == order.supplier_id and other.state in OUTSTANDING
                ],
                "today": snapshot.today,
                "owner": msgspec.to_builtins(order.owner),
            },
            location_id=order.location_id,
            supplier_id=order.supplier_id,
        )


def count_drift(snapshot: Snapshot) -> Iterator[Finding]:
    history: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for count in snapshot.counts:
        if count.state not in (CountState.RECORDED, CountState.POSTED):
            continue
        for line in count.lines:
            if line.book is None or line.counted is None:
                continue
            place = (line.sku, count.location_id)
            entry = {
                "count_id": count.id,
                "bin": line.bin,
                "book": line.book,
                "counted": line.counted,
                "recorded_at": count.updated_at,
            }
            history[place].append(entry)
            if not drifts(line.book, line.counted, snapshot.drift_percent, snapshot.drift_units):
                continue
            yield Finding(
                kind=ExceptionKind.COUNT_DRIFT,
                key=f"count_drift:{count.id}:{line.sku}:{line.bin or ''}",
                reason=(
                    f"{line.sku} at {count.location_id}{_in_bin(line.bin)}: counted "
                    f"{line.counted}, the book says {line.book} "
                    f"({line.counted - line.book:+d}), beyond the tolerance of "
                    f"{snapshot.drift_percent:g}% or {snapshot.drift_units} units"
                ),
                evidence={
                    "sku": line.sku,
                    "location_id": count.location_id,
                    "bin": line.bin,
                    "count_id": count.id,
                    "book": line.book,
                    "counted": line.counted,
                    "difference": line.counted - line.book,
                    "tolerance": {
                        "percent": snapshot.drift_percent,
                        "units": snapshot.drift_units,
                    },
                    "count_history": list(history[place]),
                    "owner": msgspec.to_builtins(count.owner),
                },
                sku=line.sku,
                location_id=count.location_id,
            )


def drifts(book: int, counted: int, percent: float, units: int) -> bool:
    """Whether a count is off the book by more than ``units`` and more than ``percent``."""
    difference = abs(counted - book)
    return difference > units and difference * 100 > percent * book


def short_receipts(snapshot: Snapshot) -> Iterator[Finding]:
    orders = {order.id: order for order in snapshot.orders}
    for receipt in snapshot.short_receipts:
        order = orders.get(receipt.purchase_order_id)
        if order is None:
            continue
        short = [
            {
                "line": line.line,
                "sku": line.sku,
                "ordered": line.quantity,
                "received": line.received,
                "missing": line.outstanding,
                "unit_cost": msgspec.to_builtins(line.unit_cost),
            }
            for line in order.lines
            if line.outstanding > 0
        ]
        missing = sum(line["missing"] for line in short)
        supplier = snapshot.suppliers.get(order.supplier_id)
        yield Finding(
            kind=ExceptionKind.SHORT_RECEIPT,
            key=f"short_receipt:{receipt.id}",
            reason=(
                f"receipt {receipt.id} closed purchase order {order.id} with {missing} "
                f"units fewer than ordered"
            ),
            evidence={
                "receipt_id": receipt.id,
                "purchase_order": _order_evidence(order),
                "location_id": order.location_id,
                "short_lines": short,
                "supplier": None if supplier is None else _supplier_evidence(supplier),
                "received_at": receipt.created_at,
                "owner": msgspec.to_builtins(receipt.owner),
            },
            sku=short[0]["sku"] if len(short) == 1 else None,
            location_id=order.location_id,
            supplier_id=order.supplier_id,
        )


def _order_evidence(order: PurchaseOrder, sku: str | None = None) -> dict[str, Any]:
    lines = [line for line in order.lines if sku is None or line.sku == sku]
    return {
        "id": order.id,
        "state": str(order.state),
        "supplier_id": order.supplier_id,
        "expected_date": order.expected_date,
        "outstanding": sum(line.outstanding for line in lines),
        "version": order.version,
    }


def _supplier_evidence(supplier: Supplier) -> dict[str, Any]:
    return {
        "id": supplier.id,
        "name": supplier.name,
        "status": str(supplier.status),
        "lead_time_days": supplier.lead_time_days,
    }


def _in_bin(bin_: str | None) -> str:
    return "" if bin_ is None else f" bin {bin_}"
