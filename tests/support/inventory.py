"""Running inventory operations inside the service under test, and checking the ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from order3.audit.appender import AuditAppender
from order3.domain.inventory import BinData, ItemData, LocationData, SupplierData, SupplierStatus
from order3.domain.money import Money
from order3.domain.principals import Actor, PrincipalType, Scope
from order3.workflow import inventory as ops
from support.api import Api


def usd(minor_units: int) -> Money:
    return Money(minor_units=minor_units, currency="USD")


@dataclass
class Floor:
    """The warehouse floor: runs operations through the service's own audit appender, in its
    event loop, as one of the API's members."""

    api: Api

    def actor(self, who: str = "admin") -> Actor:
        me = self.api.get(who, "/v1/me").json()
        return Actor(
            id=me["id"],
            type=PrincipalType(me["type"]),
            roles=tuple(me["roles"]),
            scopes=tuple(Scope(s) for s in me["scopes"]),
            workspace_id=me["workspace_id"],
            token_id=me["token_id"],
        )

    def run(self, operation: Callable[..., Any], *args: Any, who: str = "admin") -> Any:
        actor = self.actor(who)
        services = self.api.client.app.state.services

        async def work(connection: Any) -> Any:
            return await operation(connection, actor, *args)

        value, _ = self.api.client.blocking_portal.call(services.appender.commit, work)
        return value

    def stock(self) -> None:
        """Stock a workspace created bare with the standard floor (`stock_floor`)."""
        services = self.api.client.app.state.services
        self.api.client.blocking_portal.call(stock_floor, services.appender, self.actor())


async def stock_floor(appender: AuditAppender, actor: Actor) -> None:
    """The floor every test workspace starts with, written through the audited operations:
    locations ``loc_main`` (bins A1, A2) and ``loc_east`` (E1); suppliers ``sup_acme`` and
    ``sup_northwind`` (active) and ``sup_slow`` (on hold); items SKU-1, SKU-2 and SKU-3 in
    category ``parts``, priced in USD, all preferring ``sup_acme``, none in stock."""

    async def run(operation: Callable[..., Any], *args: Any) -> None:
        async def work(connection: Any) -> Any:
            return await operation(connection, actor, *args)

        await appender.commit(work)

    for location_id, bins in [("loc_main", ["A1", "A2"]), ("loc_east", ["E1"])]:
        data = LocationData(
            name=location_id, bins=[BinData(code=b, description=f"bin {b}") for b in bins]
        )
        await run(ops.create_location, location_id, data)
    await run(ops.create_supplier, "sup_acme", SupplierData(name="Acme", lead_time_days=5))
    await run(ops.create_supplier, "sup_northwind", SupplierData(name="Northwind"))
    held = SupplierData(name="Slowco", status=SupplierStatus.ON_HOLD)
    await run(ops.create_supplier, "sup_slow", held)
    for sku, cost in [("SKU-1", 1250), ("SKU-2", 400), ("SKU-3", 99)]:
        await run(ops.create_item, sku, item_data(cost))


def item_data(cost: int, *, currency: str = "USD", category: str = "parts") -> ItemData:
    return ItemData(
        description=f"part at {cost} {currency} minor units",
        unit="each",
        unit_cost=Money(minor_units=cost, currency=currency),
        category=category,
        reorder_point=10,
        reorder_quantity=50,
        supplier_id="sup_acme",
    )


def every(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list, following the cursors."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        response = api.get("viewer", path, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def assert_balanced(api: Api) -> dict[tuple[str, str, str | None], int]:
    """Stock equals the sum of the ledger per item, location and bin, in units and value,
    and nothing is below zero; returns on hand per place."""
    units: dict[tuple[str, str, str | None], int] = defaultdict(int)
    value: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for movement in every(api, "/v1/ledger"):
        place = (movement["sku"], movement["location_id"], movement["bin"])
        units[place] += movement["quantity"]
        value[place] += movement["value"]["minor_units"]
    stock = {(s["sku"], s["location_id"], s["bin"]): s for s in every(api, "/v1/stock")}
    assert set(stock) == set(units)
    for place, level in stock.items():
        assert level["on_hand"] == units[place] >= 0, place
        assert level["value"]["minor_units"] == value[place] >= 0, place
        assert level["available"] == level["on_hand"] - level["reserved"]
        if level["on_hand"] == 0:
            assert level["value"]["minor_units"] == 0, place
    return dict(units)
