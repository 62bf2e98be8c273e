"""The inventory read API over every record type, with the ledger balancing after each
operation, on both databases."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.domain.errors import Conflict, InvalidInput
from order3.domain.inventory import (
    Adjustment,
    CountedLine,
    NewPurchaseOrder,
    NewSupplierNote,
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
from order3.domain.money import Money
from order3.workflow import inventory as ops
from order3.workflow.inventory_demo import load_demo
from support.api import Api
from support.inventory import Floor, assert_balanced, every, usd


@pytest.fixture
def floor(api: Api) -> Floor:
    """The API's workspace, which starts with the standard floor (`stock_floor`)."""
    return Floor(api)


def _order(floor: Floor, quantity: int = 20, supplier: str = "sup_acme") -> str:
    order = NewPurchaseOrder(
        supplier_id=supplier,
        location_id="loc_main",
        currency="USD",
        lines=[
            OrderLine(sku="SKU-1", quantity=quantity, unit_cost=usd(1250)),
            OrderLine(sku="SKU-2", quantity=5, unit_cost=usd(400)),
        ],
        expected_date=date(2030, 1, 1),
    )
    order_id: str = floor.run(ops.create_purchase_order, order).id
    return order_id


def _receive(
    floor: Floor, order_id: str, *lines: tuple[int, int, str | None], close: bool = False
) -> str:
    ask = Receive(
        purchase_order_id=order_id,
        lines=[
            ReceiveLine(line=line, quantity=quantity, bin=bin_) for line, quantity, bin_ in lines
        ],
        close=close,
    )
    receipt_id: str = floor.run(ops.receive, ask).id
    return receipt_id


def test_reference_records_read_back_filtered_and_paginated(api: Api, floor: Floor) -> None:
    """Items, locations and suppliers read back with owner and version, page by page."""
    first = api.get("viewer", "/v1/items", limit=2).json()
    rest = api.get("viewer", "/v1/items", limit=2, cursor=first["next_cursor"]).json()
    item = api.get("viewer", "/v1/items/SKU-1").json()
    locations = every(api, "/v1/locations")
    on_hold = every(api, "/v1/suppliers", status="on_hold")

    assert [i["sku"] for i in first["items"]] == ["SKU-1", "SKU-2"]
    assert [i["sku"] for i in rest["items"]] == ["SKU-3"]
    assert rest["next_cursor"] is None
    assert item["unit_cost"] == {"minor_units": 1250, "currency": "USD"}
    assert item["owner"] == {"id": api.id("admin"), "type": "user"}
    assert item["version"] == 1
    assert {loc["id"]: [b["code"] for b in loc["bins"]] for loc in locations} == {
        "loc_east": ["E1"],
        "loc_main": ["A1", "A2"],
    }
    assert [s["id"] for s in on_hold] == ["sup_slow"]
    assert api.get("viewer", "/v1/items/NOPE").status_code == 404


def test_bad_filters_and_cursors_name_the_parameter(api: Api, floor: Floor) -> None:
    """A state outside the list, or a cursor of another list, is a 422 naming the field."""
    bad_state = api.get("viewer", "/v1/purchase-orders", state="lost")
    cursor = api.get("viewer", "/v1/items", limit=1).json()["next_cursor"]
    foreign_cursor = api.get("viewer", "/v1/suppliers", cursor=cursor)

    assert bad_state.status_code == 422
    assert bad_state.json()["errors"][0]["field"] == "state"
    assert foreign_cursor.status_code == 422
    assert foreign_cursor.json()["errors"][0]["field"] == "cursor"


def test_partial_then_short_receipt_moves_the_order_and_the_ledger(api: Api, floor: Floor) -> None:
    """A partial receipt leaves the order partially received; a closing short one receives
    it; stock and its value follow the ledger, and each receipt's audit record names every
    record it touched with its versions."""
    order_id = _order(floor)

    first = _receive(floor, order_id, (1, 8, "A1"))
    after_first = api.get("viewer", f"/v1/purchase-orders/{order_id}").json()
    assert_balanced(api)
    second = _receive(floor, order_id, (1, 10, "A2"), (2, 5, None), close=True)
    after_second = api.get("viewer", f"/v1/purchase-orders/{order_id}").json()
    places = assert_balanced(api)

    assert after_first["state"] == "partially_received"
    assert after_first["version"] == 2
    assert after_second["state"] == "received"
    assert [line["received"] for line in after_second["lines"]] == [18, 5]
    receipts = every(api, "/v1/receipts", purchase_order=order_id)
    assert [(r["id"], r["short"], r["closes"]) for r in receipts] == [
        (first, False, False),
        (second, True, True),
    ]
    assert places == {
        ("SKU-1", "loc_main", "A1"): 8,
        ("SKU-1", "loc_main", "A2"): 10,
        ("SKU-2", "loc_main", None): 5,
    }
    [level] = every(api, "/v1/stock", sku="SKU-1", location="loc_main", bin="A1")
    assert level["value"] == {"minor_units": 8 * 1250, "currency": "USD"}
    [record] = [
        r for r in api.audit(action="inventory.received") if r["record"]["subject"]["id"] == second
    ]
    changed = [
        (c["type"], c["version_before"], c["version_after"])
        for c in record["record"]["details"]["records"]
    ]
    assert changed == [
        ("purchase_order", 2, 3),
        ("receipt", None, 1),
        ("movement", None, 1),
        ("movement", None, 1),
    ]


def test_receiving_refuses_more_than_outstanding_and_closed_orders(api: Api, floor: Floor) -> None:
    """Over-receipt is bad input; a received order takes nothing more; nothing is written."""
    order_id = _order(floor, quantity=3)

    with pytest.raises(InvalidInput) as over:
        _receive(floor, order_id, (1, 4, None))
    _receive(floor, order_id, (1, 3, None), (2, 5, None))
    with pytest.raises(Conflict):
        _receive(floor, order_id, (1, 0, None), close=True)

    assert over.value.field == "$.lines[0].quantity"
    assert assert_balanced(api) == {("SKU-1", "loc_main", None): 3, ("SKU-2", "loc_main", None): 5}


def test_orders_never_go_to_a_blocked_supplier(api: Api, floor: Floor) -> None:
    """An order to a blocked supplier is refused and leaves no order behind; one to a
    supplier on hold goes ahead (the policy decides what approvals it needs)."""
    blocked = SupplierData(name="Shady", status=SupplierStatus.BLOCKED)
    floor.run(ops.create_supplier, "sup_shady", blocked)

    with pytest.raises(Conflict):
        _order(floor, supplier="sup_shady")
    on_hold = _order(floor, supplier="sup_slow")

    assert [order["id"] for order in every(api, "/v1/purchase-orders")] == [on_hold]


def test_transfer_moves_value_and_refuses_reserved_stock(api: Api, floor: Floor) -> None:
    """A transfer carries its share of the value; reserved units and units not there stay."""
    order_id = _order(floor, quantity=10)
    _receive(floor, order_id, (1, 10, "A1"))
    reservation = floor.run(
        ops.reserve,
        Reserve(sku="SKU-1", location_id="loc_main", bin="A1", quantity=6, reference="order 77"),
    )

    with pytest.raises(Conflict, match="reserved"):
        floor.run(
            ops.transfer,
            Transfer(
                sku="SKU-1",
                quantity=5,
                from_location_id="loc_main",
                from_bin="A1",
                to_location_id="loc_east",
                to_bin="E1",
            ),
        )
    floor.run(
        ops.transfer,
        Transfer(
            sku="SKU-1",
            quantity=4,
            from_location_id="loc_main",
            from_bin="A1",
            to_location_id="loc_east",
            to_bin="E1",
        ),
    )
    with pytest.raises(Conflict, match="only 4 on hand"):
        floor.run(
            ops.transfer,
            Transfer(
                sku="SKU-1",
                quantity=5,
                from_location_id="loc_east",
                from_bin="E1",
                to_location_id="loc_main",
            ),
        )
    released = floor.run(ops.release, reservation.id)
    places = assert_balanced(api)

    assert places[("SKU-1", "loc_main", "A1")] == 6
    assert places[("SKU-1", "loc_east", "E1")] == 4
    [east] = every(api, "/v1/stock", location="loc_east")
    assert east["value"]["minor_units"] == 4 * 1250
    assert released.state == "released"
    listed = every(api, "/v1/reservations", sku="SKU-1")
    assert [(r["id"], r["state"], r["version"]) for r in listed] == [
        (reservation.id, "released", 2)
    ]
    movements = every(api, "/v1/ledger", kind="transfer_out")
    assert [m["quantity"] for m in movements] == [-4]


def test_adjustment_changes_value_and_never_goes_below_zero(api: Api, floor: Floor) -> None:
    """Stock added is valued at the given cost; a write-off takes its share of the value and
    cannot take more than is there; another currency is refused."""
    floor.run(
        ops.post_adjustment,
        Adjustment(
            sku="SKU-2",
            location_id="loc_main",
            quantity_delta=10,
            reason_code="found",
            unit_cost=usd(300),
        ),
    )
    floor.run(
        ops.post_adjustment,
        Adjustment(
            sku="SKU-2",
            location_id="loc_main",
            quantity_delta=-4,
            reason_code="damaged",
            unit_cost=usd(300),
        ),
    )

    with pytest.raises(Conflict):
        floor.run(
            ops.post_adjustment,
            Adjustment(
                sku="SKU-2",
                location_id="loc_main",
                quantity_delta=-7,
                reason_code="lost",
                unit_cost=usd(300),
            ),
        )
    with pytest.raises(InvalidInput) as currency:
        floor.run(
            ops.post_adjustment,
            Adjustment(
                sku="SKU-2",
                location_id="loc_main",
                quantity_delta=1,
                reason_code="found",
                unit_cost=Money(minor_units=1, currency="EUR"),
            ),
        )

    assert currency.value.field == "$.unit_cost.currency"
    assert assert_balanced(api) == {("SKU-2", "loc_main", None): 6}
    [level] = every(api, "/v1/stock", sku="SKU-2")
    assert level["value"]["minor_units"] == 6 * 300
    [record] = api.audit(action="inventory.adjusted")[-1:]
    assert record["record"]["details"]["value_change"] == {"minor_units": -1200, "currency": "USD"}


def test_count_open_record_post_corrects_the_book(api: Api, floor: Floor) -> None:
    """A count records book against counted; posting it brings the book to the count, and
    refuses when stock moved since it was recorded."""
    floor.run(
        ops.post_adjustment,
        Adjustment(
            sku="SKU-3",
            location_id="loc_main",
            bin="A1",
            quantity_delta=20,
            reason_code="opening",
            unit_cost=usd(99),
        ),
    )
    count = floor.run(ops.open_count, OpenCount(location_id="loc_main", skus=["SKU-3"]))

    floor.run(
        ops.record_count,
        RecordCount(count_id=count.id, lines=[CountedLine(sku="SKU-3", bin="A1", counted=17)]),
    )
    recorded = api.get("viewer", f"/v1/counts/{count.id}").json()
    floor.run(
        ops.post_adjustment,
        Adjustment(
            sku="SKU-3",
            location_id="loc_main",
            bin="A1",
            quantity_delta=1,
            reason_code="found",
            unit_cost=usd(99),
        ),
    )
    with pytest.raises(Conflict, match="record the count again"):
        floor.run(ops.post_count, count.id)
    floor.run(
        ops.record_count,
        RecordCount(count_id=count.id, lines=[CountedLine(sku="SKU-3", bin="A1", counted=17)]),
    )
    floor.run(ops.post_count, count.id)
    posted = api.get("viewer", f"/v1/counts/{count.id}").json()

    assert recorded["state"] == "recorded"
    assert recorded["lines"] == [{"sku": "SKU-3", "bin": "A1", "book": 20, "counted": 17}]
    assert posted["state"] == "posted"
    assert posted["version"] == 4
    assert assert_balanced(api) == {("SKU-3", "loc_main", "A1"): 17}
    [correction] = every(api, "/v1/ledger", kind="count_correction")
    assert correction["quantity"] == -4
    assert correction["reference"] == {"type": "count", "id": count.id}
    assert [c["id"] for c in every(api, "/v1/counts", state="posted")] == [count.id]


def test_supplier_note_is_owned_and_audited(api: Api, floor: Floor) -> None:
    """A supplier note names its owner and is recorded with the supplier as its subject."""
    note = floor.run(
        ops.attach_supplier_note,
        NewSupplierNote(supplier_id="sup_acme", note="Call before noon."),
        who="sam",
    )

    [record] = api.audit(action="inventory.supplier_note_attached")
    assert note.owner.id == api.id("sam")
    assert record["record"]["actor"]["id"] == api.id("sam")
    assert record["record"]["details"]["records"] == [
        {"type": "supplier_note", "id": note.id, "version_before": None, "version_after": 1}
    ]


def test_demo_loads_once_balances_and_shows_every_exception_kind(
    client: TestClient, settings: Settings
) -> None:
    """The demo fills an empty workspace through the operations, all audited, with a ledger
    that balances; a second load is refused; detection finds each kind it was built for."""
    api = Api.with_cast(client, asyncio.run(create_workspace(settings, floor=False)))
    services = api.client.app.state.services
    load = api.client.blocking_portal.call

    summary = load(load_demo, services.appender, api.workspace.id)
    with pytest.raises(Conflict, match="already has inventory"):
        load(load_demo, services.appender, api.workspace.id)
    detection = api.post("admin", "/v1/exceptions/detect").json()

    assert summary.items == len(every(api, "/v1/items")) == 300
    assert {s["status"] for s in every(api, "/v1/suppliers")} == {"active", "on_hold", "blocked"}
    assert {o["state"] for o in every(api, "/v1/purchase-orders")} == {
        "open",
        "partially_received",
        "received",
    }
    assert any(r["short"] for r in every(api, "/v1/receipts"))
    assert len(every(api, "/v1/reservations", state="active")) == summary.reservations > 0
    assert sum(assert_balanced(api).values()) > 0
    kinds = {e["kind"] for e in detection["opened"]}
    assert kinds == {"low_stock", "supplier_delay", "short_receipt", "count_drift"}
    loader = {"id": summary.principal_id, "type": "integration"}
    assert all(i["owner"] == loader for i in every(api, "/v1/items"))
    assert len(api.audit(action="inventory.item_created", limit=200)) == 200
