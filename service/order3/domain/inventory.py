"""The inventory agents observe: items, locations and bins, suppliers, purchase orders,
receipts, stock counts, reservations, and the stock ledger that on-hand is derived from.

Every record belongs to a workspace, names its owner (the principal that created it) and
carries a version that goes up by one with each change. Stock is never stored as a number to
overwrite: it is the sum of the ledger's movements for an item, location and bin, and the
ledger is only ever appended to.

The operations that change these records live in ``order3.workflow.inventory``; the inputs
they take are defined here, with the same field names as the draft payloads they carry out.
"""

from __future__ import annotations

import enum
import re
from datetime import date
from typing import Annotated, Any, TypeVar

import msgspec

from order3.domain.drafts import Identifier, Quantity, QuantityDelta, Text
from order3.domain.errors import Conflict, InvalidInput
from order3.domain.money import Currency, Money

Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Unit = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
LeadTimeDays = Annotated[int, msgspec.Meta(ge=0, le=365)]


class SupplierStatus(enum.StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    BLOCKED = "blocked"


class PurchaseOrderState(enum.StrEnum):
    OPEN = "open"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CANCELLED = "cancelled"


OUTSTANDING = frozenset({PurchaseOrderState.OPEN, PurchaseOrderState.PARTIALLY_RECEIVED})
"""Purchase order states whose unreceived quantities are still on order."""


class CountState(enum.StrEnum):
    OPEN = "open"
    RECORDED = "recorded"
    POSTED = "posted"


class ReservationState(enum.StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


class MovementKind(enum.StrEnum):
    RECEIPT = "receipt"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    ADJUSTMENT = "adjustment"
    COUNT_CORRECTION = "count_correction"


class Owner(msgspec.Struct, frozen=True, kw_only=True):
    """The principal (user, agent, integration) or system that created a record."""

    id: str
    type: str


class SignedMoney(msgspec.Struct, frozen=True, kw_only=True):
    """A change of value: integer minor units that may be negative, and the currency."""

    minor_units: int
    currency: str


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    owner: Owner
    version: int
    created_at: str
    updated_at: str


class Item(_Record, frozen=True, kw_only=True):
    sku: str
    description: str
    unit: str
    unit_cost: Money
    category: str
    reorder_point: int
    reorder_quantity: int
    supplier_id: str | None = None
    """The preferred supplier, whom a low-stock purchase order is drafted for."""


class Bin(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    description: str


class Location(_Record, frozen=True, kw_only=True):
    id: str
    name: str
    bins: list[Bin]


class Supplier(_Record, frozen=True, kw_only=True):
    id: str
    name: str
    status: SupplierStatus
    lead_time_days: int


class PurchaseOrderLine(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    sku: str
    quantity: int
    unit_cost: Money
    received: int

    @property
    def outstanding(self) -> int:
        return max(self.quantity - self.received, 0)


class PurchaseOrder(_Record, frozen=True, kw_only=True):
    id: str
    supplier_id: str
    location_id: str
    currency: str
    state: PurchaseOrderState
    expected_date: str | None
    lines: list[PurchaseOrderLine]


class ReceiptLine(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    """The purchase order line received against."""
    sku: str
    bin: str | None
    quantity: int
    unit_cost: Money


class Receipt(_Record, frozen=True, kw_only=True):
    id: str
    purchase_order_id: str
    location_id: str
    closes: bool
    """Whether this receipt closed the order: nothing more is expected."""
    short: bool
    """Whether the order closed with less received than ordered."""
    lines: list[ReceiptLine]


class CountLine(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    bin: str | None
    book: int | None
    """On hand by the ledger when the count was recorded."""
    counted: int | None


class StockCount(_Record, frozen=True, kw_only=True):
    id: str
    location_id: str
    state: CountState
    due_date: str | None
    lines: list[CountLine]


class Reservation(_Record, frozen=True, kw_only=True):
    id: str
    sku: str
    location_id: str
    bin: str | None
    quantity: int
    state: ReservationState
    reference: str | None


class Movement(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the stock ledger; never changed once written."""

    id: str
    kind: MovementKind
    sku: str
    location_id: str
    bin: str | None
    quantity: int
    value: SignedMoney
    reference: dict[str, str]
    """The record that caused it: a receipt, transfer, adjustment or count."""
    owner: Owner
    created_at: str
    note: str | None = None


class StockLevel(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    location_id: str
    bin: str | None
    on_hand: int
    reserved: int
    available: int
    value: SignedMoney


class SupplierNote(_Record, frozen=True, kw_only=True):
    id: str
    supplier_id: str
    note: str


# ---- operation inputs -----------------------------------------------------------------------


class _Input(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ItemData(_Input, frozen=True, kw_only=True):
    """An item's fields, as created or synced."""

    description: Description
    unit: Unit
    unit_cost: Money
    category: Name
    reorder_point: Count = 0
    reorder_quantity: Count = 0
    supplier_id: Identifier | None = None


class BinData(_Input, frozen=True, kw_only=True):
    code: Identifier
    description: Name


class LocationData(_Input, frozen=True, kw_only=True):
    name: Name
    bins: Annotated[list[BinData], msgspec.Meta(max_length=1000)] = []


class SupplierData(_Input, frozen=True, kw_only=True):
    name: Name
    status: SupplierStatus = SupplierStatus.ACTIVE
    lead_time_days: LeadTimeDays = 7


class OrderLine(_Input, frozen=True, kw_only=True):
    sku: Identifier
    quantity: Quantity
    unit_cost: Money


class NewPurchaseOrder(_Input, frozen=True, kw_only=True):
    """The ``purchase_order`` draft payload."""

    supplier_id: Identifier
    location_id: Identifier
    currency: Currency
    lines: Annotated[list[OrderLine], msgspec.Meta(min_length=1, max_length=500)]
    expected_date: date | None = None
    id: Identifier | None = None


class PurchaseOrderData(_Input, frozen=True, kw_only=True):
    """A purchase order as an integration syncs it. ``cancelled`` cancels an order that has
    received nothing."""

    supplier_id: Identifier
    location_id: Identifier
    currency: Currency
    lines: Annotated[list[OrderLine], msgspec.Meta(min_length=1, max_length=500)]
    expected_date: date | None = None
    cancelled: bool = False


class ReceiveLine(_Input, frozen=True, kw_only=True):
    line: Annotated[int, msgspec.Meta(ge=1)]
    quantity: Count
    bin: Identifier | None = None


class Receive(_Input, frozen=True, kw_only=True):
    """Goods arriving against a purchase order; ``close`` says nothing more will come."""

    purchase_order_id: Identifier
    lines: Annotated[list[ReceiveLine], msgspec.Meta(min_length=1, max_length=500)]
    close: bool = False


class Transfer(_Input, frozen=True, kw_only=True):
    """The ``transfer`` draft payload. Stock moves at its average cost; ``unit_cost`` only
    states the draft's amount for approval."""

    sku: Identifier
    quantity: Quantity
    from_location_id: Identifier
    to_location_id: Identifier
    from_bin: Identifier | None = None
    to_bin: Identifier | None = None
    unit_cost: Money | None = None


class Adjustment(_Input, frozen=True, kw_only=True):
    """The ``adjustment`` draft payload. Stock added is valued at ``unit_cost``; stock taken
    away leaves at its average cost, so the value of an emptied bin is zero."""

    sku: Identifier
    location_id: Identifier
    quantity_delta: QuantityDelta
    reason_code: Identifier
    unit_cost: Money
    bin: Identifier | None = None


class OpenCount(_Input, frozen=True, kw_only=True):
    """The ``count_task`` draft payload."""

    location_id: Identifier
    skus: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=1000)]
    due_date: date | None = None


class CountedLine(_Input, frozen=True, kw_only=True):
    sku: Identifier
    counted: Count
    bin: Identifier | None = None


class RecordCount(_Input, frozen=True, kw_only=True):
    count_id: Identifier
    lines: Annotated[list[CountedLine], msgspec.Meta(min_length=1, max_length=1000)]


class Reserve(_Input, frozen=True, kw_only=True):
    sku: Identifier
    location_id: Identifier
    quantity: Quantity
    bin: Identifier | None = None
    reference: Text | None = None


class NewSupplierNote(_Input, frozen=True, kw_only=True):
    """The ``supplier_note`` draft payload."""

    supplier_id: Identifier
    note: Text


class Correction(_Input, frozen=True, kw_only=True):
    sku: Identifier
    location_id: Identifier
    quantity_delta: QuantityDelta
    unit_cost: Money
    note: Text | None = None


class Reconciliation(_Input, frozen=True, kw_only=True):
    """The ``reconciliation`` draft payload: adjustments posted together."""

    currency: Currency
    corrections: Annotated[list[Correction], msgspec.Meta(min_length=1, max_length=500)]


T = TypeVar("T")
_WHERE = re.compile(r" - at `\$([^`]*)`\Z")


def convert_input(raw: Any, type_: type[T], path: str) -> T:
    """Validate ``raw`` as ``type_``; `InvalidInput` names the field under ``path``."""
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = _WHERE.search(message)
        if where is None:
            raise InvalidInput(path, message) from None
        raise InvalidInput(path + where.group(1), message[: where.start()]) from None


# ---- rules ----------------------------------------------------------------------------------


def value_leaving(on_hand: int, value: int, quantity: int) -> int:
    """The value (minor units) of ``quantity`` units leaving a place holding ``on_hand`` units
    worth ``value``: their share of it, so the last unit out takes what is left."""
    if quantity >= on_hand:
        return value
    return value * quantity // on_hand


def ensure_can_take(on_hand: int, reserved: int, quantity: int, *, what: str) -> None:
    """Raise `Conflict` unless ``quantity`` unreserved units are there to take."""
    if quantity > on_hand:
        raise Conflict(
            f"cannot {what} {quantity}: only {on_hand} on hand", on_hand=on_hand, wanted=quantity
        )
    if quantity > on_hand - reserved:
        raise Conflict(
            f"cannot {what} {quantity}: {reserved} of the {on_hand} on hand are reserved",
            on_hand=on_hand,
            reserved=reserved,
            wanted=quantity,
        )


def state_after_receipt(lines: list[PurchaseOrderLine], *, close: bool) -> PurchaseOrderState:
    if close or all(line.received >= line.quantity for line in lines):
        return PurchaseOrderState.RECEIVED
    if any(line.received > 0 for line in lines):
        return PurchaseOrderState.PARTIALLY_RECEIVED
    return PurchaseOrderState.OPEN


def ensure_same_currency(path: str, money: Money, currency: str) -> None:
    if str(money.currency) != currency:
        raise InvalidInput(f"{path}.currency", f"expected `{currency}`, got `{money.currency}`")


def record_change(
    type_: str, id_: str, before: int | None, after: int | None
) -> dict[str, str | int | None]:
    """How an audit record names one record a change touched, with its versions."""
    return {"type": type_, "id": id_, "version_before": before, "version_after": after}
