"""Random sequences of receipts, transfers, adjustments, reservations and counts keep on hand
equal to the sum of the ledger, never below zero, and never move reserved units."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from order3.config import Settings
from order3.domain.errors import Conflict
from order3.domain.inventory import (
    Adjustment,
    BinData,
    CountedLine,
    ItemData,
    LocationData,
    NewPurchaseOrder,
    OpenCount,
    OrderLine,
    Receive,
    ReceiveLine,
    RecordCount,
    Reserve,
    SupplierData,
    Transfer,
)
from order3.domain.money import Money
from order3.domain.principals import Actor, PrincipalType
from order3.runtime import open_storage
from order3.storage import inventory as store
from order3.workflow import inventory as ops
from order3.workflow.access import AccessWorkflow

SKUS = ["SKU-A", "SKU-B"]
PLACES: list[tuple[str, str | None]] = [("loc_a", None), ("loc_a", "A1"), ("loc_b", "B1")]
COST = {"SKU-A": 700, "SKU-B": 45}
_workspaces = itertools.count()

Place = tuple[str, str, str | None]


class Storage:
    """A migrated database and a running appender, on one event loop, for every example."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.stack = contextlib.AsyncExitStack()
        self.db, _, self.appender = self.run(self.stack.enter_async_context(open_storage(settings)))

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        self.run(self.stack.aclose())
        self.loop.close()


class LedgerMachine(RuleBasedStateMachine):
    storage: Storage

    def __init__(self) -> None:
        super().__init__()
        self.on_hand: dict[Place, int] = defaultdict(int)
        self.reserved: dict[str, tuple[Place, int]] = {}

    @initialize()
    def workspace(self) -> None:
        access = AccessWorkflow(self.storage.db, self.storage.appender)
        workspace_id, admin, _ = self.storage.run(
            access.create_workspace(f"w{next(_workspaces)}", "Ada")
        )
        self.actor = Actor(
            id=admin.id,
            type=PrincipalType.USER,
            roles=("admin",),
            scopes=(),
            workspace_id=workspace_id,
        )
        for location_id, bins in [("loc_a", ["A1"]), ("loc_b", ["B1"])]:
            data = LocationData(
                name=location_id, bins=[BinData(code=b, description=b) for b in bins]
            )
            self.op(ops.create_location, location_id, data)
        self.op(ops.create_supplier, "sup", SupplierData(name="Supplier"))
        for sku in SKUS:
            cost = Money(minor_units=COST[sku], currency="USD")
            self.op(
                ops.create_item,
                sku,
                ItemData(description=sku, unit="each", unit_cost=cost, category="c"),
            )

    def op(self, operation: Any, *args: Any) -> Any:
        async def work(connection: Any) -> Any:
            return await operation(connection, self.actor, *args)

        value, _ = self.storage.run(self.storage.appender.commit(work))
        return value

    def held(self, place: Place) -> int:
        return sum(quantity for where, quantity in self.reserved.values() if where == place)

    def free(self, place: Place) -> int:
        return self.on_hand[place] - self.held(place)

    @rule(
        sku=st.sampled_from(SKUS),
        place=st.sampled_from(PLACES),
        ordered=st.integers(1, 30),
        got=st.integers(0, 30),
        close=st.booleans(),
    )
    def receive(
        self, sku: str, place: tuple[str, str | None], ordered: int, got: int, close: bool
    ) -> None:
        got = min(got, ordered)
        cost = Money(minor_units=COST[sku], currency="USD")
        order = self.op(
            ops.create_purchase_order,
            NewPurchaseOrder(
                supplier_id="sup",
                location_id=place[0],
                currency="USD",
                lines=[OrderLine(sku=sku, quantity=ordered, unit_cost=cost)],
            ),
        )
        if got == 0 and not close:
            return
        receipt = self.op(
            ops.receive,
            Receive(
                purchase_order_id=order.id,
                lines=[ReceiveLine(line=1, quantity=got, bin=place[1])],
                close=close,
            ),
        )
        self.on_hand[(sku, *place)] += got
        assert receipt.short == (close and got < ordered)

    @rule(
        sku=st.sampled_from(SKUS),
        source=st.sampled_from(PLACES),
        destination=st.sampled_from(PLACES),
        quantity=st.integers(1, 25),
    )
    def transfer(
        self,
        sku: str,
        source: tuple[str, str | None],
        destination: tuple[str, str | None],
        quantity: int,
    ) -> None:
        ask = Transfer(
            sku=sku,
            quantity=quantity,
            from_location_id=source[0],
            from_bin=source[1],
            to_location_id=destination[0],
            to_bin=destination[1],
        )
        if source == destination:
            return
        if quantity > self.free((sku, *source)):
            with pytest.raises(Conflict):
                self.op(ops.transfer, ask)
            return
        self.op(ops.transfer, ask)
        self.on_hand[(sku, *source)] -= quantity
        self.on_hand[(sku, *destination)] += quantity

    @rule(
        sku=st.sampled_from(SKUS),
        place=st.sampled_from(PLACES),
        delta=st.integers(-25, 25).filter(bool),
    )
    def adjust(self, sku: str, place: tuple[str, str | None], delta: int) -> None:
        cost = Money(minor_units=COST[sku] + 10, currency="USD")
        ask = Adjustment(
            sku=sku,
            location_id=place[0],
            bin=place[1],
            quantity_delta=delta,
            reason_code="test",
            unit_cost=cost,
        )
        if self.on_hand[(sku, *place)] + delta < 0:
            with pytest.raises(Conflict):
                self.op(ops.post_adjustment, ask)
            return
        self.op(ops.post_adjustment, ask)
        self.on_hand[(sku, *place)] += delta

    @rule(sku=st.sampled_from(SKUS), place=st.sampled_from(PLACES), quantity=st.integers(1, 15))
    def reserve(self, sku: str, place: tuple[str, str | None], quantity: int) -> None:
        ask = Reserve(sku=sku, location_id=place[0], bin=place[1], quantity=quantity)
        if quantity > self.free((sku, *place)):
            with pytest.raises(Conflict):
                self.op(ops.reserve, ask)
            return
        reservation = self.op(ops.reserve, ask)
        self.reserved[reservation.id] = ((sku, *place), quantity)

    @precondition(lambda self: bool(self.reserved))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        reservation_id = data.draw(st.sampled_from(sorted(self.reserved)))
        self.op(ops.release, reservation_id)
        del self.reserved[reservation_id]

    @rule(
        sku=st.sampled_from(SKUS), location_id=st.sampled_from(["loc_a", "loc_b"]), data=st.data()
    )
    def count(self, sku: str, location_id: str, data: st.DataObject) -> None:
        opened = self.op(ops.open_count, OpenCount(location_id=location_id, skus=[sku]))
        lines = [
            CountedLine(sku=sku, bin=line.bin, counted=data.draw(st.integers(0, 40)))
            for line in opened.lines
        ]
        self.op(ops.record_count, RecordCount(count_id=opened.id, lines=lines))
        self.op(ops.post_count, opened.id)
        for line in lines:
            self.on_hand[(sku, location_id, line.bin)] = line.counted

    @invariant()
    def stock_is_the_ledger(self) -> None:
        if not hasattr(self, "actor"):
            return
        levels, movements = self.storage.run(self._read())
        units: dict[Place, int] = defaultdict(int)
        value: dict[Place, int] = defaultdict(int)
        for movement in movements:
            place = (movement.sku, movement.location_id, movement.bin)
            units[place] += movement.quantity
            value[place] += movement.value.minor_units
        for level in levels:
            place = (level.sku, level.location_id, level.bin)
            assert level.on_hand == units[place] == self.on_hand[place] >= 0
            assert level.value.minor_units == value[place] >= 0
            assert level.reserved == self.held(place)
            if level.on_hand == 0:
                assert level.value.minor_units == 0
        assert {p for p, n in self.on_hand.items() if n} <= {
            (x.sku, x.location_id, x.bin) for x in levels
        }

    async def _read(self) -> tuple[list[Any], list[Any]]:
        async with self.storage.db.connect() as connection:
            ws = self.actor.workspace_id
            levels = await store.stock_levels(connection, ws, {}, None, 10_000)
            movements = await store.list_movements(connection, ws, {}, None, 100_000)
        return levels, movements


def test_on_hand_is_always_the_sum_of_the_ledger(tmp_path: Path, database_url: str) -> None:
    """The state machine runs fully on SQLite and a few short runs on PostgreSQL."""
    on_sqlite = database_url.startswith("sqlite")
    storage = Storage(Settings(data_dir=tmp_path / "var", database_url=database_url))
    LedgerMachine.storage = storage
    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=30 if on_sqlite else 5,
                stateful_step_count=25 if on_sqlite else 12,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        storage.close()
