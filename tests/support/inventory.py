"""Running inventory operations inside the service under test, and checking the ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

    def seed(self) -> None:
        """Two locations with bins, two suppliers (one on hold) and three items."""
        for location_id, bins in [("loc_main", ["A1", "A2"]), ("loc_east", ["E1"])]:
            data = LocationData(
                name=location_id, bins=[BinData(code=b, description=f"bin {b}") for b in bins]
            )
            self.run(ops.create_location, location_id, data)
        self.run(ops.create_supplier, "sup_acme", SupplierData(name="Acme", lead_time_days=5))
        held = SupplierData(name="Slowco", status=SupplierStatus.ON_HOLD)
        self.run(ops.create_supplier, "sup_slow", held)
        for sku, cost in [("SKU-1", 1250), ("SKU-2", 400), ("SKU-3", 99)]:
            item = ItemData(
                description=f"part {sku}",
                unit="each",
                unit_cost=usd(cost),
                category="parts",
                reorder_point=10,
                reorder_quantity=50,
                supplier_id="sup_acme",
            )
            self.run(ops.create_item, sku, item)


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
