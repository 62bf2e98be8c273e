"""Drafts: proposed inventory work, and the life cycle that approval moves them through.

A draft is submitted as one of six kinds, each with its own typed payload. Its *content*
(kind, payload, rationale, affected records and approval owner) is hashed; an approval binds
to that hash, so changing the content drops every approval given before.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

import msgspec

from order3.domain.errors import Conflict, InvalidInput
from order3.domain.money import MAX_MINOR_UNITS, Currency, Money

# `\Z`, not `$`: msgspec matches with re.search, and `$` also matches before a final newline.
Identifier = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+\Z")
]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
QuantityDelta = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class DraftKind(enum.StrEnum):
    PURCHASE_ORDER = "purchase_order"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    COUNT_TASK = "count_task"
    SUPPLIER_NOTE = "supplier_note"
    RECONCILIATION = "reconciliation"


class DraftState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISMISSED = "dismissed"
    EXPIRED = "expired"
    EXECUTED = "executed"
    EXECUTION_FAILED = "execution_failed"


_TRANSITIONS: dict[DraftState, frozenset[DraftState]] = {
    DraftState.PENDING: frozenset(
        {DraftState.APPROVED, DraftState.REJECTED, DraftState.DISMISSED, DraftState.EXPIRED}
    ),
    DraftState.APPROVED: frozenset({DraftState.EXECUTED, DraftState.EXECUTION_FAILED}),
}


def ensure_transition(current: DraftState, target: DraftState) -> None:
    """Raise `Conflict` unless a draft in ``current`` may move to ``target``."""
    if target not in _TRANSITIONS.get(current, frozenset()):
        raise Conflict(
            f"a {current.value} draft cannot become {target.value}",
            state=current.value,
            target=target.value,
        )


def ensure_state(current: DraftState, expected: DraftState, action: str) -> None:
    """Raise `Conflict` unless the draft is in the state ``action`` needs."""
    if current is not expected:
        raise Conflict(
            f"cannot {action}: the draft is {current.value}, not {expected.value}",
            state=current.value,
        )


class RecordType(enum.StrEnum):
    """The inventory records a draft's affected records may name; each has a version."""

    ITEM = "item"
    LOCATION = "location"
    SUPPLIER = "supplier"
    SUPPLIER_NOTE = "supplier_note"
    PURCHASE_ORDER = "purchase_order"
    RECEIPT = "receipt"
    COUNT = "count"
    RESERVATION = "reservation"
    EXCEPTION = "exception"


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """A record a payload names, which must exist for the work to be done."""

    path: str
    """Where the payload names it, such as ``$.payload.lines[0].sku``."""
    type: str
    """A `RecordType`, or ``bin``."""
    id: str
    location_id: str | None = None
    """The location a bin is in."""
    priced_in: tuple[str, str] | None = None
    """For an item the payload prices: where the price's currency is, and that currency,
    which must be the item's own (stock is valued in it)."""


class _Payload(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Base of the per-kind payloads."""

    def amount(self) -> Money | None:
        """The money this work commits, or None when it commits none."""
        return None

    def references(self) -> list[Reference]:
        """The items, locations, bins and suppliers this work names."""
        return []


class OrderLine(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    sku: Identifier
    quantity: Quantity
    unit_cost: Money


class PurchaseOrderPayload(_Payload, frozen=True, kw_only=True):
    supplier_id: Identifier
    location_id: Identifier
    currency: Currency
    lines: Annotated[list[OrderLine], msgspec.Meta(min_length=1, max_length=500)]
    expected_date: date | None = None

    def amount(self) -> Money:
        return _sum_lines(
            self.currency,
            [
                (f"$.payload.lines[{i}]", ln.unit_cost, ln.quantity)
                for i, ln in enumerate(self.lines)
            ],
        )

    def references(self) -> list[Reference]:
        return [
            _named("supplier_id", RecordType.SUPPLIER, self.supplier_id),
            _named("location_id", RecordType.LOCATION, self.location_id),
            *(
                _priced(f"lines[{i}]", line.sku, line.unit_cost)
                for i, line in enumerate(self.lines)
            ),
        ]


class TransferPayload(_Payload, frozen=True, kw_only=True):
    sku: Identifier
    quantity: Quantity
    from_location_id: Identifier
    to_location_id: Identifier
    from_bin: Identifier | None = None
    to_bin: Identifier | None = None
    unit_cost: Money | None = None

    def amount(self) -> Money | None:
        if self.unit_cost is None:
            return None
        return _sum_lines(self.unit_cost.currency, [("$.payload", self.unit_cost, self.quantity)])

    def references(self) -> list[Reference]:
        ends = [
            ("from_", self.from_location_id, self.from_bin),
            ("to_", self.to_location_id, self.to_bin),
        ]
        found = [_named("sku", RecordType.ITEM, self.sku)]
        for end, location_id, bin_ in ends:
            found.append(_named(f"{end}location_id", RecordType.LOCATION, location_id))
            if bin_ is not None:
                found.append(_named(f"{end}bin", "bin", bin_, location_id))
        return found


class AdjustmentPayload(_Payload, frozen=True, kw_only=True):
    sku: Identifier
    location_id: Identifier
    quantity_delta: QuantityDelta
    reason_code: Identifier
    unit_cost: Money

    def amount(self) -> Money:
        return _sum_lines(
            self.unit_cost.currency, [("$.payload", self.unit_cost, self.quantity_delta)]
        )

    def references(self) -> list[Reference]:
        return [
            _priced("", self.sku, self.unit_cost),
            _named("location_id", RecordType.LOCATION, self.location_id),
        ]


class CountTaskPayload(_Payload, frozen=True, kw_only=True):
    location_id: Identifier
    skus: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=1000)]
    due_date: date | None = None

    def references(self) -> list[Reference]:
        return [
            _named("location_id", RecordType.LOCATION, self.location_id),
            *(_named(f"skus[{i}]", RecordType.ITEM, sku) for i, sku in enumerate(self.skus)),
        ]


class SupplierNotePayload(_Payload, frozen=True, kw_only=True):
    supplier_id: Identifier
    note: Text

    def references(self) -> list[Reference]:
        return [_named("supplier_id", RecordType.SUPPLIER, self.supplier_id)]


class Correction(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    sku: Identifier
    location_id: Identifier
    quantity_delta: QuantityDelta
    unit_cost: Money
    note: Text | None = None


class ReconciliationPayload(_Payload, frozen=True, kw_only=True):
    currency: Currency
    corrections: Annotated[list[Correction], msgspec.Meta(min_length=1, max_length=500)]

    def amount(self) -> Money:
        return _sum_lines(
            self.currency,
            [
                (f"$.payload.corrections[{i}]", c.unit_cost, c.quantity_delta)
                for i, c in enumerate(self.corrections)
            ],
        )

    def references(self) -> list[Reference]:
        found = []
        for i, correction in enumerate(self.corrections):
            found.append(_priced(f"corrections[{i}]", correction.sku, correction.unit_cost))
            location = correction.location_id
            found.append(_named(f"corrections[{i}].location_id", RecordType.LOCATION, location))
        return found


def _named(field: str, type_: str, id_: str, location_id: str | None = None) -> Reference:
    return Reference(path=f"$.payload.{field}", type=str(type_), id=id_, location_id=location_id)


def _priced(line: str, sku: str, unit_cost: Money) -> Reference:
    """The item of a priced line (``line`` is its path under the payload, "" for the
    payload itself)."""
    at = f"$.payload.{line}." if line else "$.payload."
    return Reference(
        path=f"{at}sku",
        type=RecordType.ITEM,
        id=sku,
        priced_in=(f"{at}unit_cost.currency", str(unit_cost.currency)),
    )


def _sum_lines(currency: Currency, lines: Sequence[tuple[str, Money, int]]) -> Money:
    total = 0
    for path, unit_cost, quantity in lines:
        if unit_cost.currency != currency:
            raise InvalidInput(
                f"{path}.unit_cost.currency",
                f"expected `{currency}` like the draft, got `{unit_cost.currency}`",
            )
        total += unit_cost.minor_units * abs(quantity)
    if total > MAX_MINOR_UNITS:
        raise InvalidInput("$.payload", f"total {total} minor units is above {MAX_MINOR_UNITS}")
    return Money(minor_units=total, currency=currency)


PAYLOAD_TYPES: dict[DraftKind, type[_Payload]] = {
    DraftKind.PURCHASE_ORDER: PurchaseOrderPayload,
    DraftKind.TRANSFER: TransferPayload,
    DraftKind.ADJUSTMENT: AdjustmentPayload,
    DraftKind.COUNT_TASK: CountTaskPayload,
    DraftKind.SUPPLIER_NOTE: SupplierNotePayload,
    DraftKind.RECONCILIATION: ReconciliationPayload,
}


class RecordRef(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A reference to an inventory record the draft is based on or will change."""

    type: RecordType
    id: Identifier
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """The version the draft is based on; None when it is not based on a particular one."""


class DraftContent(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an approval binds to."""

    kind: DraftKind
    payload: _Payload
    rationale: str
    affected_records: list[RecordRef]
    approval_owner: str

    def amount(self) -> Money | None:
        return self.payload.amount()


def parse_payload(kind: DraftKind, raw: Any, path: str = "$.payload") -> _Payload:
    """Validate a raw payload against its kind's type, naming the field that is wrong."""
    try:
        return msgspec.convert(raw, PAYLOAD_TYPES[kind], strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(*_locate(exc, raw, path)) from None


_WHERE = re.compile(r" - at `(\$[^`]*)`\Z")


def _locate(exc: msgspec.ValidationError, document: Any, root: str) -> tuple[str, str]:
    """The JSON path and message of a msgspec error, as (field, message).

    msgspec writes ``<message> - at `$.path``` (no suffix at the root). A key can contain
    that text itself, so a document with a backtick in any key is reported at that key,
    found by walking the document, before the message is trusted.
    """
    odd_key = _backtick_key(document, root)
    if odd_key is not None:
        return odd_key, "unknown field whose name contains a backtick"
    message = str(exc)
    where = _WHERE.search(message)
    if where is None:
        return root, message
    return root + where.group(1).removeprefix("$"), message[: where.start()]


def _backtick_key(document: Any, path: str) -> str | None:
    if isinstance(document, dict):
        for key, value in document.items():
            if "`" in str(key):
                return path
            found = _backtick_key(value, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found = _backtick_key(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def validation_failure(exc: msgspec.ValidationError, body: bytes) -> InvalidInput:
    """Turn a msgspec validation error on a request body into `InvalidInput`."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        document = None
    return InvalidInput(*_locate(exc, document, "$"))


class Verdict(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """One approver's verdict on one exact content of a draft."""

    id: str
    draft_id: str
    approver_id: str
    approver_type: str
    approver_roles: list[str]
    verdict: Verdict
    role: str | None
    comment: str | None
    content_hash: str
    decided_at: str


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    """A stored draft and where it stands."""

    id: str
    workspace_id: str
    kind: DraftKind
    state: DraftState
    payload: dict[str, Any]
    rationale: str
    affected_records: list[dict[str, Any]]
    approval_owner: str
    requester_id: str
    requester_type: str
    amount: Money | None
    content_hash: str
    version: int
    required: list[dict[str, Any]]
    created_at: str
    updated_at: str
    expires_at: str
    """When the draft, if still pending, expires; set by the policy at submit and patch."""
    execution: dict[str, Any] | None = None
    escalate_at: str | None = None
    """When the draft, if still pending, is escalated; set by the policy like ``expires_at``."""
    escalate_to: str | None = None
    """The role the draft is escalated to."""
    escalated_at: str | None = None
    """When the escalation sweep escalated it; None until then."""

    def content(self) -> dict[str, Any]:
        """The fields an approval binds to, as hashed."""
        return content_document(
            self.kind, self.payload, self.rationale, self.affected_records, self.approval_owner
        )

    def escalation(self) -> dict[str, Any] | None:
        """``{at, to_role, escalated_at}``, or None when the policy set no escalation."""
        if self.escalate_at is None:
            return None
        return {
            "at": self.escalate_at,
            "to_role": self.escalate_to,
            "escalated_at": self.escalated_at,
        }

    def binding(self, approvals: Sequence[Approval]) -> list[Approval]:
        """The approvals given to this exact content; those from before a patch drop out."""
        return [a for a in approvals if a.content_hash == self.content_hash]


def content_document(
    kind: DraftKind,
    payload: dict[str, Any],
    rationale: str,
    affected_records: list[dict[str, Any]],
    approval_owner: str,
) -> dict[str, Any]:
    return {
        "kind": str(kind),
        "payload": payload,
        "rationale": rationale,
        "affected_records": affected_records,
        "approval_owner": approval_owner,
    }
