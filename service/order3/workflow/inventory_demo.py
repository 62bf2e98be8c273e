"""A small, realistic workspace to look at: a few hundred items over three locations with
bins, suppliers in every status, open and late orders, receipts (one short), a count that
drifted and some reservations.

Everything is written through the inventory operations by a ``demo-loader`` integration
principal, so the ledger balances and every change has its audit record. The data comes from
a seeded generator: two loads of empty workspaces look alike.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from order3.audit.appender import AuditAppender
from order3.audit.records import AuditEntry, utc_timestamp
from order3.domain.errors import Conflict, NotFound
from order3.domain.identifiers import new_id
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
    SupplierStatus,
    Transfer,
)
from order3.domain.money import Currency, Money
from order3.domain.principals import Actor, PrincipalType
from order3.storage import inventory as store
from order3.storage import repositories as repo
from order3.storage import schema
from order3.workflow import inventory as ops

ITEM_COUNT = 300
USD = Currency("USD")
LOCATIONS = {
    "loc_main": ("Main warehouse", ["A1", "A2", "A3", "B1", "B2", "B3"]),
    "loc_east": ("East depot", ["E1", "E2", "E3"]),
    "loc_west": ("West depot", ["W1", "W2", "W3"]),
}
SUPPLIERS = {
    "sup_northwind": ("Northwind Traders", SupplierStatus.ACTIVE, 5),
    "sup_acme": ("Acme Industrial", SupplierStatus.ACTIVE, 10),
    "sup_globex": ("Globex Supply", SupplierStatus.ACTIVE, 14),
    "sup_initech": ("Initech Components", SupplierStatus.ON_HOLD, 21),
    "sup_umbrella": ("Umbrella Logistics", SupplierStatus.BLOCKED, 30),
}
ACTIVE = ["sup_northwind", "sup_acme", "sup_globex"]
CATEGORIES = {
    "fasteners": ["Hex bolt", "Wood screw", "Washer", "Rivet", "Anchor"],
    "electrical": ["Cable tie", "Fuse", "Junction box", "Wire spool", "Switch"],
    "plumbing": ["Elbow fitting", "Ball valve", "Pipe clamp", "Gasket", "Tee joint"],
    "safety": ["Glove pair", "Ear plug box", "Safety glasses", "Hi-vis vest", "Hard hat"],
    "packaging": ["Carton", "Tape roll", "Pallet wrap", "Label roll", "Void fill bag"],
}


class DemoSummary(msgspec.Struct, frozen=True, kw_only=True):
    principal_id: str
    items: int
    locations: int
    suppliers: int
    purchase_orders: int
    receipts: int
    counts: int
    reservations: int
    movements: int


class _Loader:
    """Loads the demo through one connection, inside one transaction: all of it or nothing."""

    def __init__(self, connection: AsyncConnection, actor: Actor) -> None:
        self.connection = connection
        self.actor = actor
        self.rng = random.Random(3)
        self.today = datetime.now(UTC).date()
        self.entries: list[AuditEntry] = []
        self.placed: dict[str, tuple[str, str]] = {}
        self.costs: dict[str, int] = {}
        self.counts = {"purchase_orders": 0, "receipts": 0, "reservations": 0}

    async def op(
        self, operation: Callable[..., Awaitable[tuple[Any, list[AuditEntry]]]], *args: Any
    ) -> Any:
        value, entries = await operation(self.connection, self.actor, *args)
        self.entries += entries
        return value

    async def free(self, sku: str, location_id: str, bin_: str | None) -> int:
        ws = self.actor.workspace_id
        on_hand, _ = await store.stock_at(self.connection, ws, sku, location_id, bin_)
        return on_hand - await store.reserved_at(self.connection, ws, sku, location_id, bin_)

    async def reference_data(self) -> list[str]:
        for location_id, (name, bins) in LOCATIONS.items():
            data = LocationData(
                name=name, bins=[BinData(code=b, description=f"Bin {b}") for b in bins]
            )
            await self.op(ops.create_location, location_id, data)
        for supplier_id, (name, status, lead) in SUPPLIERS.items():
            supplier = SupplierData(name=name, status=status, lead_time_days=lead)
            await self.op(ops.create_supplier, supplier_id, supplier)
        skus = []
        for number in range(1, ITEM_COUNT + 1):
            category = self.rng.choice(sorted(CATEGORIES))
            sku = f"SKU-{number:04d}"
            self.costs[sku] = self.rng.randrange(50, 20_000, 5)
            item = ItemData(
                description=f"{self.rng.choice(CATEGORIES[category])} #{number}",
                unit="each",
                unit_cost=_usd(self.costs[sku]),
                category=category,
                reorder_point=self.rng.randrange(5, 40),
                reorder_quantity=self.rng.randrange(20, 200, 10),
                supplier_id=self.rng.choice(ACTIVE),
            )
            await self.op(ops.create_item, sku, item)
            skus.append(sku)
        return skus

    async def opening_stock(self, skus: list[str]) -> None:
        for sku in skus:
            location_id = self.rng.choice(sorted(LOCATIONS))
            bin_ = self.rng.choice(LOCATIONS[location_id][1])
            # About one item in ten starts near or below its reorder point.
            low = self.rng.random() < 0.1
            quantity = self.rng.randrange(1, 12) if low else self.rng.randrange(40, 160)
            self.placed[sku] = (location_id, bin_)
            ask = Adjustment(
                sku=sku,
                location_id=location_id,
                bin=bin_,
                quantity_delta=quantity,
                reason_code="opening_balance",
                unit_cost=_usd(self.costs[sku]),
            )
            await self.op(ops.post_adjustment, ask)

    async def orders(self, skus: list[str]) -> None:
        """Open orders, late ones, partly received ones, a received one and a short one."""
        plans = [("open", 10), ("open", 25), ("open", 40), ("late", -6), ("late", -12)]
        plans += [("partial", 5), ("partial", -3), ("received", -8), ("short", -4)]
        for index, (plan, days) in enumerate(plans):
            location_id = sorted(LOCATIONS)[index % len(LOCATIONS)]
            lines = [
                OrderLine(
                    sku=sku,
                    quantity=self.rng.randrange(20, 100, 10),
                    unit_cost=_usd(self.costs[sku]),
                )
                for sku in self.rng.sample(skus, 3)
            ]
            order = NewPurchaseOrder(
                supplier_id=ACTIVE[index % len(ACTIVE)],
                location_id=location_id,
                currency=USD,
                lines=lines,
                expected_date=self.today + timedelta(days=days),
            )
            created = await self.op(ops.create_purchase_order, order)
            self.counts["purchase_orders"] += 1
            bin_ = LOCATIONS[location_id][1][0]
            if plan == "partial":
                got = [ReceiveLine(line=1, quantity=created.lines[0].quantity // 2, bin=bin_)]
            elif plan in ("received", "short"):
                missing = 5 if plan == "short" else 0
                got = [
                    ReceiveLine(line=ln.line, quantity=ln.quantity - missing, bin=bin_)
                    for ln in created.lines
                ]
            else:
                continue
            receive = Receive(purchase_order_id=created.id, lines=got, close=plan == "short")
            await self.op(ops.receive, receive)
            self.counts["receipts"] += 1

    async def floor_work(self, skus: list[str]) -> None:
        """A few transfers to the east depot and a dozen reservations for sales orders."""
        for sku in [sku for sku in skus if self.placed[sku][0] == "loc_main"][:5]:
            location_id, bin_ = self.placed[sku]
            quantity = min(5, await self.free(sku, location_id, bin_))
            if quantity:
                move = Transfer(
                    sku=sku,
                    quantity=quantity,
                    from_location_id=location_id,
                    from_bin=bin_,
                    to_location_id="loc_east",
                    to_bin="E1",
                )
                await self.op(ops.transfer, move)
        for number, sku in enumerate(skus[20:32]):
            location_id, bin_ = self.placed[sku]
            quantity = min(3, await self.free(sku, location_id, bin_))
            if quantity:
                ask = Reserve(
                    sku=sku,
                    location_id=location_id,
                    bin=bin_,
                    quantity=quantity,
                    reference=f"sales order SO-{1000 + number}",
                )
                await self.op(ops.reserve, ask)
                self.counts["reservations"] += 1

    async def drifted_count(self, skus: list[str]) -> None:
        """A count at the west depot whose first line is well off the book."""
        counted = [sku for sku in skus if self.placed[sku][0] == "loc_west"][:4]
        ask = OpenCount(location_id="loc_west", skus=counted, due_date=self.today)
        count = await self.op(ops.open_count, ask)
        lines = []
        for index, line in enumerate(count.lines):
            book, _ = await store.stock_at(
                self.connection, self.actor.workspace_id, line.sku, "loc_west", line.bin
            )
            off = book // 4 + 3 if index == 0 else 0
            lines.append(CountedLine(sku=line.sku, bin=line.bin, counted=max(book - off, 0)))
        await self.op(ops.record_count, RecordCount(count_id=count.id, lines=lines))


def _usd(minor_units: int) -> Money:
    return Money(minor_units=minor_units, currency=USD)


async def _ensure_empty(connection: AsyncConnection, workspace_id: str) -> None:
    workspaces = schema.workspaces
    query = sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id)
    if (await connection.execute(query)).first() is None:
        raise NotFound(f"no workspace {workspace_id}")
    items = await store.list_items(connection, workspace_id, {}, None, 1)
    if items or await store.list_locations(connection, workspace_id, None, 1):
        raise Conflict(
            f"workspace {workspace_id} already has inventory; the demo loads only into an "
            "empty workspace"
        )


async def _loader_principal(
    connection: AsyncConnection, workspace_id: str
) -> tuple[Actor, AuditEntry]:
    principal_id = new_id("prn")
    details = {"type": "integration", "name": "demo-loader", "roles": []}
    await repo.insert_principal(
        connection,
        id=principal_id,
        workspace_id=workspace_id,
        created_at=utc_timestamp(),
        **details,
    )
    actor = Actor(
        id=principal_id,
        type=PrincipalType.INTEGRATION,
        roles=(),
        scopes=(),
        workspace_id=workspace_id,
        name="demo-loader",
    )
    entry = AuditEntry(
        workspace_id=workspace_id,
        actor={"id": "cli", "type": "system"},
        action="principal.created",
        subject={"type": "principal", "id": principal_id},
        details=details,
    )
    return actor, entry


async def load_demo(appender: AuditAppender, workspace_id: str) -> DemoSummary:
    """Fill an empty workspace with the demo inventory, in one transaction.

    Raises:
        NotFound: no such workspace.
        Conflict: the workspace has items or locations already (a second load).
    """

    async def work(connection: AsyncConnection) -> tuple[DemoSummary, list[AuditEntry]]:
        await _ensure_empty(connection, workspace_id)
        actor, created = await _loader_principal(connection, workspace_id)
        loader = _Loader(connection, actor)
        skus = await loader.reference_data()
        await loader.opening_stock(skus)
        await loader.orders(skus)
        await loader.floor_work(skus)
        await loader.drifted_count(skus)
        movements = await store.list_movements(connection, workspace_id, {}, None, 1_000_000)
        summary = DemoSummary(
            principal_id=actor.id,
            items=len(skus),
            locations=len(LOCATIONS),
            suppliers=len(SUPPLIERS),
            purchase_orders=loader.counts["purchase_orders"],
            receipts=loader.counts["receipts"],
            counts=1,
            reservations=loader.counts["reservations"],
            movements=len(movements),
        )
        return summary, [created, *loader.entries]

    summary, _ = await appender.commit(work)
    return summary
