"""Exceptions: detection with evidence, at most one per condition, dismissal with its owner,
and the draft that resolves each kind, decided by the real OPA, on both databases."""

from __future__ import annotations

import time
from datetime import date

import msgspec
import pytest
from litestar.testing import TestClient

from order3.config import Settings
from order3.domain.inventory import (
    Adjustment,
    CountedLine,
    NewPurchaseOrder,
    OpenCount,
    OrderLine,
    Receive,
    ReceiveLine,
    RecordCount,
)
from order3.http.app import create_app
from order3.workflow import inventory as ops
from support.api import Api, Workspace
from support.inventory import Floor, usd


@pytest.fixture
def floor(api: Api) -> Floor:
    """The API's workspace, which starts with the standard floor (`stock_floor`)."""
    return Floor(api)


def _stock(floor: Floor, sku: str, quantity: int, bin_: str | None = None) -> None:
    adjustment = Adjustment(
        sku=sku,
        location_id="loc_main",
        bin=bin_,
        quantity_delta=quantity,
        reason_code="opening",
        unit_cost=usd(100),
    )
    floor.run(ops.post_adjustment, adjustment)


def _detect(api: Api, who: str = "bot") -> dict[str, list[dict[str, object]]]:
    response = api.post(who, "/v1/exceptions/detect")
    assert response.status_code == 200, response.text
    body: dict[str, list[dict[str, object]]] = response.json()
    return body


def _low_stock(api: Api, floor: Floor) -> dict[str, object]:
    for sku, quantity in [("SKU-1", 3), ("SKU-2", 40), ("SKU-3", 40)]:
        _stock(floor, sku, quantity)
    [opened] = _detect(api)["opened"]
    return opened


def test_low_stock_is_detected_once_with_its_evidence(api: Api, floor: Floor) -> None:
    """On hand plus on order below the reorder point opens one exception naming the SKU,
    location, supplier, orders, owner, time and the reason; detecting again opens nothing."""
    opened = _low_stock(api, floor)
    again = _detect(api, "sam")

    assert opened["kind"] == "low_stock"
    assert opened["state"] == "open"
    assert (opened["sku"], opened["location_id"], opened["supplier_id"]) == (
        "SKU-1",
        "loc_main",
        "sup_acme",
    )
    owner = opened["owner"]
    assert isinstance(owner, dict)
    assert (owner["id"], owner["type"]) == (api.id("bot"), "agent")
    assert owner["token_id"].startswith("tok_")
    evidence = opened["evidence"]
    assert isinstance(evidence, dict)
    assert (evidence["on_hand"], evidence["on_order"], evidence["reorder_point"]) == (3, 0, 10)
    assert evidence["supplier"]["status"] == "active"
    assert evidence["open_purchase_orders"] == []
    assert evidence["owner"] == {"id": api.id("admin"), "type": "user"}
    assert evidence["observed_at"].endswith("Z")
    assert "below the reorder point of 10" in str(opened["reason"])
    assert again == {"opened": [], "resolved": [], "audit_seqs": []}
    listed = api.get("viewer", "/v1/exceptions", kind="low_stock", sku="SKU-1").json()["items"]
    assert [e["id"] for e in listed] == [opened["id"]]
    [record] = api.audit(action="exception.opened")
    assert record["record"]["actor"]["id"] == api.id("bot")
    assert record["record"]["details"]["records"] == [
        {"type": "exception", "id": opened["id"], "version_before": None, "version_after": 1}
    ]


def test_stock_on_order_counts_and_a_cleared_condition_resolves(api: Api, floor: Floor) -> None:
    """An order on the way lifts the item over its reorder point, which resolves the open
    exception; the next shortage opens a new one."""
    opened = _low_stock(api, floor)
    order = NewPurchaseOrder(
        supplier_id="sup_acme",
        location_id="loc_main",
        currency="USD",
        lines=[OrderLine(sku="SKU-1", quantity=20, unit_cost=usd(1250))],
    )
    floor.run(ops.create_purchase_order, order)

    detection = _detect(api)

    assert [e["id"] for e in detection["resolved"]] == [opened["id"]]
    assert detection["opened"] == []
    resolved = api.get("viewer", f"/v1/exceptions/{opened['id']}").json()
    assert resolved["state"] == "resolved"
    assert resolved["resolved_at"] is not None


def test_dismissal_needs_a_reason_names_its_owner_and_replays(api: Api, floor: Floor) -> None:
    """Dismissing takes a reason, records who dismissed, replays under the same key, and the
    condition opens nothing new while it lasts."""
    exception_id = _low_stock(api, floor)["id"]
    path = f"/v1/exceptions/{exception_id}/dismiss"

    missing = api.post("sam", path, {})
    blank = api.post("sam", path, {"reason": "  "})
    dismissed = api.post("sam", path, {"reason": "Seasonal item."}, key="dismiss-1")
    replayed = api.post("sam", path, {"reason": "Seasonal item."}, key="dismiss-1")
    twice = api.post("sam", path, {"reason": "Again."})

    assert missing.status_code == 422
    assert "`reason`" in missing.json()["detail"]
    assert blank.status_code == 422
    assert dismissed.status_code == 200
    body = dismissed.json()["exception"]
    assert body["state"] == "dismissed"
    assert body["dismissal"]["reason"] == "Seasonal item."
    assert body["dismissal"]["by"]["id"] == api.id("sam")
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == dismissed.json()
    assert twice.status_code == 409
    assert _detect(api)["opened"] == []
    [record] = api.audit(action="exception.dismissed")
    assert record["record"]["actor"]["id"] == api.id("sam")
    assert record["record"]["details"]["reason"] == "Seasonal item."
    assert api.post("viewer", path, {"reason": "x"}).status_code == 403


def test_low_stock_starts_a_purchase_order_the_policy_decides(api: Api, floor: Floor) -> None:
    """The draft is a purchase order for the reorder quantity from the preferred supplier,
    with the evidence as rationale, pending what the policy requires; the exception links
    to it."""
    exception_id = _low_stock(api, floor)["id"]
    path = f"/v1/exceptions/{exception_id}/draft"

    without_key = api.post("bot", path, {"approval_owner": api.id("mia")})
    response = api.post("bot", path, {"approval_owner": api.id("mia")}, key="draft-1")
    again = api.post("bot", path, {"approval_owner": api.id("mia")}, key="draft-2")

    assert without_key.status_code == 400
    assert response.status_code == 201, response.text
    draft = response.json()["draft"]
    assert draft["kind"] == "purchase_order"
    assert draft["state"] == "pending"
    assert draft["requester"] == {"id": api.id("bot"), "type": "agent"}
    assert draft["payload"]["supplier_id"] == "sup_acme"
    assert draft["payload"]["lines"] == [
        {"sku": "SKU-1", "quantity": 50, "unit_cost": {"minor_units": 1250, "currency": "USD"}}
    ]
    assert exception_id in draft["rationale"]
    assert {"type": "exception", "id": exception_id, "version": 1} in draft["affected_records"]
    [required] = response.json()["decision"]["required"]
    assert (required["role"], required["count"]) == ("manager", 1)
    assert response.json()["exception"]["state"] == "drafted"
    assert response.json()["exception"]["draft_id"] == draft["id"]
    assert again.status_code == 409
    assert api.get("viewer", f"/v1/drafts/{draft['id']}").json()["state"] == "pending"


def test_count_drift_starts_a_count_task(api: Api, floor: Floor) -> None:
    """A count off the book beyond the tolerance opens a drift exception with the count
    history; its draft is a count task of that SKU at that location."""
    for sku in ("SKU-1", "SKU-2", "SKU-3"):
        _stock(floor, sku, 100, "A1")
    count = floor.run(ops.open_count, OpenCount(location_id="loc_main", skus=["SKU-2", "SKU-3"]))
    counted = [
        CountedLine(sku="SKU-2", bin="A1", counted=90),
        CountedLine(sku="SKU-3", bin="A1", counted=97),
    ]
    floor.run(ops.record_count, RecordCount(count_id=count.id, lines=counted))

    [drift] = _detect(api)["opened"]
    response = api.post(
        "bot", f"/v1/exceptions/{drift['id']}/draft", {"approval_owner": api.id("mia")}, key="d"
    )

    assert drift["kind"] == "count_drift"
    assert drift["evidence"]["difference"] == -10
    assert drift["evidence"]["count_history"][-1]["count_id"] == count.id
    assert response.status_code == 201, response.text
    assert response.json()["draft"]["kind"] == "count_task"
    assert response.json()["draft"]["payload"] == {"location_id": "loc_main", "skus": ["SKU-2"]}


def test_late_order_and_short_receipt_start_a_note_and_a_reconciliation(
    api: Api, floor: Floor
) -> None:
    """An open order past its date starts a supplier note; an order closed short starts a
    reconciliation of the missing units."""
    for sku in ("SKU-1", "SKU-2", "SKU-3"):
        _stock(floor, sku, 100)
    late = NewPurchaseOrder(
        supplier_id="sup_acme",
        location_id="loc_main",
        currency="USD",
        lines=[OrderLine(sku="SKU-1", quantity=5, unit_cost=usd(1250))],
        expected_date=date(2020, 1, 1),
    )
    floor.run(ops.create_purchase_order, late)
    short = NewPurchaseOrder(
        supplier_id="sup_acme",
        location_id="loc_main",
        currency="USD",
        lines=[OrderLine(sku="SKU-2", quantity=10, unit_cost=usd(400))],
    )
    short_id = floor.run(ops.create_purchase_order, short).id
    floor.run(
        ops.receive,
        Receive(purchase_order_id=short_id, lines=[ReceiveLine(line=1, quantity=7)], close=True),
    )

    opened = {e["kind"]: e for e in _detect(api)["opened"]}
    note = api.post(
        "bot",
        f"/v1/exceptions/{opened['supplier_delay']['id']}/draft",
        {"approval_owner": api.id("mia")},
        key="n",
    )
    reconciliation = api.post(
        "bot",
        f"/v1/exceptions/{opened['short_receipt']['id']}/draft",
        {"approval_owner": api.id("mia")},
        key="r",
    )

    assert set(opened) == {"supplier_delay", "short_receipt"}
    assert opened["supplier_delay"]["evidence"]["purchase_order"]["expected_date"] == "2020-01-01"
    assert opened["short_receipt"]["evidence"]["short_lines"][0]["missing"] == 3
    assert note.status_code == 201, note.text
    assert note.json()["draft"]["kind"] == "supplier_note"
    assert note.json()["draft"]["payload"]["supplier_id"] == "sup_acme"
    assert reconciliation.status_code == 201, reconciliation.text
    corrections = reconciliation.json()["draft"]["payload"]["corrections"]
    assert [(c["sku"], c["quantity_delta"]) for c in corrections] == [("SKU-2", 3)]
    assert reconciliation.json()["draft"]["amount"] == {"minor_units": 1200, "currency": "USD"}


def test_background_sweep_opens_exceptions_as_the_system(
    settings: Settings, workspace: Workspace
) -> None:
    """With a short sweep interval the service finds low stock on its own, owned by
    ``system``."""
    fast = msgspec.structs.replace(settings, exception_sweep_seconds=0.2)
    with TestClient(create_app(fast)) as client:
        api = Api.with_cast(client, workspace)
        floor = Floor(api)
        _stock(floor, "SKU-1", 2)
        found: list[dict[str, object]] = []
        deadline = time.monotonic() + 20
        while not found and time.monotonic() < deadline:
            time.sleep(0.2)
            found = api.get("viewer", "/v1/exceptions", kind="low_stock").json()["items"]

    assert [e["sku"] for e in found] == ["SKU-1"]
    assert found[0]["owner"] == {"id": "system", "type": "system"}
