"""What the service knows beyond a draft when the policy decides it: the decision context
(``input.context`` in docs/policy-contract.md), read just before the decision.

The context names the supplier and the items the payload refers to as the inventory holds
them, the versions now stored of the records the draft is based on, and the spend the budget
and agent rules weigh. When a draft is submitted or patched, every record it names must also
exist; a draft about records nobody has is bad input, not something to decide.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.domain.decisions import Action, DecisionContext
from order3.domain.drafts import Draft, DraftKind, RecordType, Reference, parse_payload
from order3.domain.errors import InvalidInput
from order3.storage import inventory as store
from order3.storage import repositories as repo

_BUDGETED = (Action.SUBMIT, Action.PATCH, Action.EXECUTE)
_CAPPED = (Action.SUBMIT, Action.PATCH)


# Looked up together in one statement (`order3.storage.inventory.named_records`); any other
# record type a draft names is rare and looked up by `record_versions`.
_NAMED_TOGETHER = {RecordType.ITEM, RecordType.SUPPLIER, RecordType.LOCATION}


class _Found(msgspec.Struct, frozen=True, kw_only=True):
    """The records a draft names, as stored now."""

    categories: dict[str, str]
    """SKU -> category of every named item that exists."""
    currencies: dict[str, str]
    """SKU -> the currency every named item that exists is valued in."""
    supplier: dict[str, Any] | None
    """``{id, status, created_by}`` of the supplier the payload names, when it exists."""
    versions: dict[tuple[str, str], int]
    bins: set[tuple[str, str]]

    def has(self, reference: Reference) -> bool:
        if reference.type == "bin":
            return (str(reference.location_id), reference.id) in self.bins
        return (reference.type, reference.id) in self.versions


async def decision_context(
    connection: AsyncConnection,
    action: Action,
    draft: Draft,
    now: str,
    *,
    replacing: Draft | None = None,
) -> DecisionContext:
    """The context of deciding ``action`` on ``draft`` at ``now``; for a patch,
    ``replacing`` is the stored version the patched ``draft`` would replace.

    Raises:
        InvalidInput: on submit and patch, the draft names a record that does not exist;
            the field is where the draft names it.
    """
    references = parse_payload(draft.kind, draft.payload).references()
    found = await _look_up(connection, draft, references)
    if action in (Action.SUBMIT, Action.PATCH):
        _ensure_found(draft, references, found)

    return DecisionContext(
        supplier=found.supplier,
        items={sku: {"category": category} for sku, category in sorted(found.categories.items())},
        records=_based_on(draft, found),
        **await _spend(connection, action, draft, now, replacing),
    )


async def _look_up(
    connection: AsyncConnection, draft: Draft, references: list[Reference]
) -> _Found:
    named = [(ref.type, ref.id) for ref in references if ref.type != "bin"]
    named += [(str(record["type"]), str(record["id"])) for record in draft.affected_records]
    wanted: dict[str, set[str]] = {}
    for type_, id_ in named:
        wanted.setdefault(type_, set()).add(id_)
    payload_supplier = next((r.id for r in references if r.type == RecordType.SUPPLIER), None)
    rows = await store.named_records(
        connection,
        draft.workspace_id,
        skus=wanted.get(RecordType.ITEM, ()),
        suppliers=wanted.get(RecordType.SUPPLIER, ()),
        locations=wanted.get(RecordType.LOCATION, ()),
        bin_locations={str(r.location_id) for r in references if r.type == "bin"},
    )
    others = [(t, i) for t, i in named if t not in _NAMED_TOGETHER]
    versions = await store.record_versions(connection, draft.workspace_id, others)
    categories, currencies, supplier, bins = {}, {}, None, set()
    for row in rows:
        if row.type == "bin":
            bins.add((str(row.detail), row.id))
            continue
        versions[(row.type, row.id)] = row.version
        if row.type == RecordType.ITEM:
            categories[row.id] = str(row.detail)
            currencies[row.id] = str(row.currency)
        elif row.type == RecordType.SUPPLIER and row.id == payload_supplier:
            supplier = {"id": row.id, "status": row.detail, "created_by": row.created_by}

    return _Found(
        categories=categories,
        currencies=currencies,
        supplier=supplier,
        versions=versions,
        bins=bins,
    )


def _ensure_found(draft: Draft, references: list[Reference], found: _Found) -> None:
    for reference in references:
        if not found.has(reference):
            where = f" at location {reference.location_id}" if reference.type == "bin" else ""
            raise InvalidInput(reference.path, f"no {reference.type} {reference.id}{where}")
        if reference.priced_in is not None:
            path, currency = reference.priced_in
            valued_in = found.currencies[reference.id]
            if currency != valued_in:
                detail = f"expected `{valued_in}`, the currency item {reference.id} is valued in"
                raise InvalidInput(path, f"{detail}, got `{currency}`")
    for index, record in enumerate(draft.affected_records):
        if (record["type"], record["id"]) not in found.versions:
            raise InvalidInput(
                f"$.affected_records[{index}]", f"no {record['type']} {record['id']}"
            )


def _based_on(draft: Draft, found: _Found) -> list[dict[str, Any]]:
    """The affected records with the version the draft names and the one stored now. An
    exception the draft resolves is left out: its state moves with the draft itself."""
    return [
        {
            "type": record["type"],
            "id": record["id"],
            "based_on_version": record.get("version"),
            "current_version": found.versions.get((record["type"], record["id"])),
        }
        for record in draft.affected_records
        if record["type"] != RecordType.EXCEPTION
    ]


async def _spend(
    connection: AsyncConnection, action: Action, draft: Draft, now: str, replacing: Draft | None
) -> dict[str, dict[str, Any] | None]:
    """The spend the budget and agent rules weigh the draft against: the location's
    purchase orders executed this month (submit, patch and execute of a purchase order) and
    what the requester submitted today (submit and patch), both in the draft's currency.
    Months and days are UTC, those of ``now``; both are running totals the draft changes
    keep, read in one statement (`order3.storage.repositories.spend_totals_of`)."""
    amount = draft.amount
    budgeted = draft.kind is DraftKind.PURCHASE_ORDER and action in _BUDGETED
    capped = action in _CAPPED
    spend: dict[str, dict[str, Any] | None] = {
        "location_spend": None,
        "requester_daily_spend": None,
    }
    if amount is None:
        return spend
    currency = str(amount.currency)
    location = (repo.EXECUTED_AT_LOCATION, str(draft.payload.get("location_id")), now[:7])
    requester = (repo.SUBMITTED_BY_REQUESTER, draft.requester_id, now[:10])
    keys = [location] if budgeted else []
    keys += [requester] if capped else []
    totals = await repo.spend_totals_of(connection, draft.workspace_id, currency, keys)
    if budgeted:
        spend["location_spend"] = {
            "location_id": location[1],
            "month": now[:7],
            "currency": currency,
            "executed_minor_units": totals[location],
        }
    if capped:
        submitted = totals[requester]
        if replacing is not None:
            submitted -= _counted_on(now[:10], replacing, currency)
        spend["requester_daily_spend"] = {
            "day": now[:10],
            "currency": currency,
            "submitted_minor_units": submitted,
        }
    return spend


def _counted_on(day: str, stored: Draft, currency: str) -> int:
    """What ``stored`` adds to its requester's total for ``day`` in ``currency``: a patch is
    weighed against the rest of the day, not against the version it replaces."""
    amount = stored.amount
    if amount is None or stored.created_at[:10] != day or amount.currency != currency:
        return 0
    return amount.minor_units
