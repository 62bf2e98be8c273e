"""Reading the inventory: items, locations, suppliers, purchase orders, receipts, counts,
reservations, stock on hand and the ledger. Lists are filtered and cursor-paginated like
``GET /v1/drafts``; nothing here writes."""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.domain.errors import InvalidInput, NotFound
from order3.domain.inventory import (
    CountState,
    MovementKind,
    PurchaseOrderState,
    ReservationState,
    SupplierStatus,
)
from order3.domain.principals import Actor, Scope
from order3.http.auth import requires
from order3.http.requests import json_response, services_of
from order3.storage import inventory as store

AuthedRequest = Request[Actor, Any, Any]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]
E = TypeVar("E", bound=enum.Enum)


def cursor_of(resource: str, key: list[str]) -> str:
    document = msgspec.json.encode([resource, *key])
    return base64.urlsafe_b64encode(document).decode().rstrip("=")


def after_of(resource: str, cursor: str | None, size: int = 1) -> list[str] | None:
    """The key a cursor points after; `InvalidInput` for one this list did not give out."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = msgspec.json.decode(raw, type=list[str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        document = []
    if len(document) != size + 1 or document[0] != resource:
        raise InvalidInput("cursor", "not a cursor this API gave out")
    return document[1:]


def enum_of(type_: type[E], value: str | None, field: str) -> str | None:
    """A query value that must be one of an enum's, checked here so the error names it."""
    if value is None:
        return None
    allowed = [str(member.value) for member in type_]
    if value not in allowed:
        raise InvalidInput(field, f"expected one of {', '.join(allowed)}, got `{value}`")
    return value


Lister = Callable[[AsyncConnection, str, dict[str, Any], str | None, int], Awaitable[list[Any]]]


async def page(
    request: AuthedRequest,
    resource: str,
    lister: Lister,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
    key: Callable[[Any], str],
) -> Response[bytes]:
    """One page of a list: ``items`` and the ``next_cursor`` to follow, null at the end."""
    after = after_of(resource, cursor)
    async with services_of(request).reads.connect() as connection:
        found = await lister(
            connection,
            request.user.workspace_id,
            filters,
            None if after is None else after[0],
            limit + 1,
        )
    items = found[:limit]
    next_cursor = cursor_of(resource, [key(items[-1])]) if len(found) > limit else None
    body = {"items": items, "next_cursor": next_cursor}
    return json_response(200, msgspec.json.encode(body))


def _one(found: Any, what: str, record_id: str) -> Response[bytes]:
    if found is None:
        raise NotFound(f"no {what} {record_id} in this workspace", id=record_id)
    return json_response(200, msgspec.json.encode(found))


async def _locations(
    connection: AsyncConnection, workspace_id: str, _: dict[str, Any], after: str | None, limit: int
) -> list[Any]:
    return await store.list_locations(connection, workspace_id, after, limit)


class InventoryController(Controller):
    path = "/v1"
    tags = ["inventory"]
    guards = [requires(Scope.READ)]

    @get("/items")
    async def list_items(
        self,
        request: AuthedRequest,
        category: FromQuery[str | None] = None,
        supplier: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """Items in SKU order."""
        filters = {"category": category, "supplier_id": supplier}
        return await page(
            request, "items", store.list_items, filters, cursor, limit, lambda i: i.sku
        )

    @get("/items/{sku:str}")
    async def read_item(self, request: AuthedRequest, sku: FromPath[str]) -> Response[bytes]:
        async with services_of(request).reads.connect() as connection:
            found = await store.load_item(connection, request.user.workspace_id, sku)
        return _one(found, "item", sku)

    @get("/locations")
    async def list_locations(
        self, request: AuthedRequest, cursor: FromQuery[str | None] = None, limit: Limit = 50
    ) -> Response[bytes]:
        """Locations with their bins."""
        return await page(request, "locations", _locations, {}, cursor, limit, lambda x: x.id)

    @get("/suppliers")
    async def list_suppliers(
        self,
        request: AuthedRequest,
        status: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        filters = {"status": enum_of(SupplierStatus, status, "status")}
        return await page(
            request, "suppliers", store.list_suppliers, filters, cursor, limit, lambda x: x.id
        )

    @get("/suppliers/{supplier_id:str}")
    async def read_supplier(
        self, request: AuthedRequest, supplier_id: FromPath[str]
    ) -> Response[bytes]:
        async with services_of(request).reads.connect() as connection:
            found = await store.load_supplier(connection, request.user.workspace_id, supplier_id)
        return _one(found, "supplier", supplier_id)

    @get("/purchase-orders")
    async def list_purchase_orders(
        self,
        request: AuthedRequest,
        record_state: Annotated[str | None, QueryParameter(name="state")] = None,
        supplier: FromQuery[str | None] = None,
        location: FromQuery[str | None] = None,
        sku: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """Purchase orders with their lines; ``sku`` keeps those with a line of it."""
        filters = {
            "state": enum_of(PurchaseOrderState, record_state, "state"),
            "supplier_id": supplier,
            "location_id": location,
        }

        async def lister(
            connection: AsyncConnection, ws: str, where: dict[str, Any], after: Any, n: int
        ) -> list[Any]:
            return await store.list_purchase_orders(connection, ws, where, after, n, sku=sku)

        return await page(request, "purchase-orders", lister, filters, cursor, limit, _id)

    @get("/purchase-orders/{order_id:str}")
    async def read_purchase_order(
        self, request: AuthedRequest, order_id: FromPath[str]
    ) -> Response[bytes]:
        async with services_of(request).reads.connect() as connection:
            ws = request.user.workspace_id
            found = await store.load_purchase_order(connection, ws, order_id)
        return _one(found, "purchase order", order_id)

    @get("/receipts")
    async def list_receipts(
        self,
        request: AuthedRequest,
        purchase_order: FromQuery[str | None] = None,
        location: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """Receipts with their lines, oldest first."""
        filters = {"purchase_order_id": purchase_order, "location_id": location}
        return await page(request, "receipts", store.list_receipts, filters, cursor, limit, _id)

    @get("/counts")
    async def list_counts(
        self,
        request: AuthedRequest,
        record_state: Annotated[str | None, QueryParameter(name="state")] = None,
        location: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """Stock counts with their lines: counted against book."""
        filters = {"state": enum_of(CountState, record_state, "state"), "location_id": location}
        return await page(request, "counts", store.list_counts, filters, cursor, limit, _id)

    @get("/counts/{count_id:str}")
    async def read_count(self, request: AuthedRequest, count_id: FromPath[str]) -> Response[bytes]:
        async with services_of(request).reads.connect() as connection:
            found = await store.load_count(connection, request.user.workspace_id, count_id)
        return _one(found, "count", count_id)

    @get("/reservations")
    async def list_reservations(
        self,
        request: AuthedRequest,
        record_state: Annotated[str | None, QueryParameter(name="state")] = None,
        sku: FromQuery[str | None] = None,
        location: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        filters = {
            "state": enum_of(ReservationState, record_state, "state"),
            "sku": sku,
            "location_id": location,
        }
        return await page(
            request, "reservations", store.list_reservations, filters, cursor, limit, _id
        )

    @get("/stock")
    async def stock(
        self,
        request: AuthedRequest,
        sku: FromQuery[str | None] = None,
        location: FromQuery[str | None] = None,
        bin_code: Annotated[str | None, QueryParameter(name="bin")] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """On hand, reserved, available and value per item, location and bin, summed from the
        ledger. ``bin=`` (empty) selects stock held in no bin."""
        filters = {
            "sku": sku,
            "location_id": location,
            "bin": None if bin_code is None else store.stored_bin(bin_code),
        }
        after = after_of("stock", cursor, size=3)
        async with services_of(request).reads.connect() as connection:
            levels = await store.stock_levels(
                connection,
                request.user.workspace_id,
                filters,
                None if after is None else (after[0], after[1], after[2]),
                limit + 1,
            )
        items = levels[:limit]
        next_cursor = None
        if len(levels) > limit:
            last = items[-1]
            key = [last.sku, last.location_id, store.stored_bin(last.bin)]
            next_cursor = cursor_of("stock", key)
        return json_response(200, msgspec.json.encode({"items": items, "next_cursor": next_cursor}))

    @get("/ledger")
    async def ledger(
        self,
        request: AuthedRequest,
        sku: FromQuery[str | None] = None,
        location: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        reference: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> Response[bytes]:
        """Stock movements, oldest first; ``reference`` is the id of the receipt, transfer,
        adjustment, reconciliation or count that caused them."""
        filters = {
            "sku": sku,
            "location_id": location,
            "kind": enum_of(MovementKind, kind, "kind"),
            "reference_id": reference,
        }
        return await page(request, "ledger", store.list_movements, filters, cursor, limit, _id)


def _id(record: Any) -> str:
    identifier: str = record.id
    return identifier
