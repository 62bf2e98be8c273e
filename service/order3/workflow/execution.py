"""Executing an approved draft: its payload applied through the inventory operation a person's
action would use, in the transaction that marks the draft executed.

    draft kind        operation input     operation
    purchase_order    NewPurchaseOrder    inventory_records.create_purchase_order
    transfer          Transfer            inventory.transfer
    adjustment        Adjustment          inventory.post_adjustment
    count_task        OpenCount           inventory.open_count
    supplier_note     NewSupplierNote     inventory_records.attach_supplier_note
    reconciliation    Reconciliation      inventory.reconcile

The operation's audit records name the draft as their cause and list every record they
touched with its version before and after; the draft's own record repeats that list as the
execution's effects. When the inventory refuses the work (too little unreserved stock, a
supplier put on hold since, a record gone), nothing of the operation is kept, and the draft
becomes ``execution_failed`` with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.audit.records import AuditEntry
from order3.domain.drafts import Draft, DraftKind
from order3.domain.errors import Conflict, InvalidInput, NotFound, Order3Error
from order3.domain.inventory import (
    Adjustment,
    NewPurchaseOrder,
    NewSupplierNote,
    OpenCount,
    Reconciliation,
    Transfer,
    convert_input,
)
from order3.domain.principals import Actor
from order3.workflow import inventory, inventory_records

Operation = Callable[..., Awaitable[tuple[Any, list[AuditEntry]]]]

OPERATIONS: dict[DraftKind, tuple[type[msgspec.Struct], Operation]] = {
    DraftKind.PURCHASE_ORDER: (NewPurchaseOrder, inventory_records.create_purchase_order),
    DraftKind.TRANSFER: (Transfer, inventory.transfer),
    DraftKind.ADJUSTMENT: (Adjustment, inventory.post_adjustment),
    DraftKind.COUNT_TASK: (OpenCount, inventory.open_count),
    DraftKind.SUPPLIER_NOTE: (NewSupplierNote, inventory_records.attach_supplier_note),
    DraftKind.RECONCILIATION: (Reconciliation, inventory.reconcile),
}

REFUSALS = (Conflict, InvalidInput, NotFound)
"""What the inventory answers when it will not do the work: the draft fails, not the call."""


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """What executing a draft did to the inventory."""

    effects: list[dict[str, Any]]
    """Every record touched: ``{type, id, version_before, version_after}``."""
    entries: list[AuditEntry]
    """The operation's own audit entries, which name the draft as their cause."""


async def apply_draft(connection: AsyncConnection, actor: Actor, draft: Draft) -> Applied:
    """Apply ``draft``'s payload through its operation, inside a savepoint of ``connection``'s
    transaction, so a refusal leaves nothing of it behind.

    Raises:
        Conflict, InvalidInput, NotFound: the inventory refused the work (see `REFUSALS`).
    """
    input_type, operation = OPERATIONS[draft.kind]
    ask = convert_input(draft.payload, input_type, "$.payload")
    async with connection.begin_nested():
        _, entries = await operation(connection, actor, ask, cause={"draft_id": draft.id})
    effects = [change for entry in entries for change in entry.details.get("records", [])]

    return Applied(effects=effects, entries=entries)


def failure_of(error: Order3Error) -> dict[str, Any]:
    """Why the inventory refused the work, as the draft and its audit record keep it."""
    failure: dict[str, Any] = {"problem": error.slug, "detail": error.detail}
    failure.update(error.extensions)

    return failure
