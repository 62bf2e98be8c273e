"""Executing an approved draft changes the inventory through the same operations a person's
action uses, in one transaction with its audit records, on both databases; work the
inventory refuses leaves the draft ``execution_failed`` and the inventory as it was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from order3.domain.inventory import Adjustment, Reserve
from order3.workflow import inventory as ops
from support.api import Api, purchase_order
from support.inventory import Floor, assert_balanced, every, usd


@pytest.fixture
def floor(api: Api) -> Floor:
    """The API's workspace, which starts with the standard floor (`stock_floor`)."""
    return Floor(api)


def _stock(floor: Floor, sku: str, quantity: int, location: str = "loc_main") -> None:
    opening = Adjustment(
        sku=sku,
        location_id=location,
        quantity_delta=quantity,
        reason_code="opening",
        unit_cost=usd(400),
    )
    floor.run(ops.post_adjustment, opening)


def _draft(kind: str, payload: dict[str, Any], owner: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "payload": payload,
        "rationale": f"A {kind} the floor asked for.",
        "affected_records": [{"type": "item", "id": "SKU-1"}],
        "approval_owner": owner,
    }


def _executed(api: Api, body: dict[str, Any]) -> httpx.Response:
    """Submit ``body`` as sam, approve it as it requires, and execute it as mia."""
    submitted = api.submit("sam", body)
    assert submitted.status_code == 201, submitted.text
    draft_id = submitted.json()["draft"]["id"]
    for need in submitted.json()["decision"]["required"]:
        approver = {"manager": "mia", "finance": "fay"}[need["role"]]
        approved = api.approve(approver, draft_id, need["role"])
        assert approved.status_code == 200, approved.text
    return api.post("mia", f"/v1/drafts/{draft_id}/execute")


def _on_hand(api: Api, sku: str, location: str) -> int:
    return sum(
        s["on_hand"] for s in every(api, "/v1/stock", sku=sku) if s["location_id"] == location
    )


def _trail(api: Api, draft_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The draft's last audit record, and the inventory records that name it as cause."""
    last = api.audit(draft=draft_id)[-1]["record"]
    caused = [
        item["record"]
        for item in api.audit(limit=200)
        if (item["record"]["details"] or {}).get("cause") == {"draft_id": draft_id}
    ]
    return last, caused


def test_a_purchase_order_draft_places_the_order(api: Api) -> None:
    """The order appears with the draft's lines, and the draft's record lists it as created."""
    response = _executed(api, purchase_order(api.id("mia")))

    assert response.status_code == 200, response.text
    draft = response.json()["draft"]
    assert draft["state"] == "executed"
    [order] = every(api, "/v1/purchase-orders")
    assert (order["supplier_id"], order["location_id"]) == ("sup_northwind", "loc_main")
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("SKU-1", 10)]
    assert draft["execution"]["effects"] == [
        {"type": "purchase_order", "id": order["id"], "version_before": None, "version_after": 1}
    ]
    executed, caused = _trail(api, draft["id"])
    assert executed["action"] == "draft.executed"
    assert [record["action"] for record in caused] == ["inventory.purchase_order_created"]


def test_a_transfer_draft_moves_stock_and_the_ledger_balances(api: Api, floor: Floor) -> None:
    _stock(floor, "SKU-1", 10)
    payload = {
        "sku": "SKU-1",
        "quantity": 4,
        "from_location_id": "loc_main",
        "to_location_id": "loc_east",
    }

    response = _executed(api, _draft("transfer", payload, api.id("mia")))

    assert response.status_code == 200, response.text
    assert (_on_hand(api, "SKU-1", "loc_main"), _on_hand(api, "SKU-1", "loc_east")) == (6, 4)
    assert_balanced(api)
    effects = response.json()["draft"]["execution"]["effects"]
    assert {effect["type"] for effect in effects} >= {"movement"}
    assert all(effect["version_after"] is not None for effect in effects)


def test_an_adjustment_draft_posts_its_movement(api: Api, floor: Floor) -> None:
    _stock(floor, "SKU-2", 5)
    payload = {
        "sku": "SKU-2",
        "location_id": "loc_main",
        "quantity_delta": -2,
        "reason_code": "damaged",
        "unit_cost": {"minor_units": 400, "currency": "USD"},
    }

    response = _executed(api, _draft("adjustment", payload, api.id("mia")))

    assert response.status_code == 200, response.text
    assert _on_hand(api, "SKU-2", "loc_main") == 3
    assert_balanced(api)


def test_a_count_task_draft_opens_a_count(api: Api, floor: Floor) -> None:
    _stock(floor, "SKU-1", 7)
    payload = {"location_id": "loc_main", "skus": ["SKU-1"]}

    response = _executed(api, _draft("count_task", payload, api.id("mia")))

    assert response.status_code == 200, response.text
    [count] = every(api, "/v1/counts")
    assert (count["location_id"], count["state"]) == ("loc_main", "open")
    assert [line["sku"] for line in count["lines"]] == ["SKU-1"]


def test_a_supplier_note_draft_attaches_its_note(api: Api) -> None:
    payload = {"supplier_id": "sup_acme", "note": "Ships late every second Friday."}

    response = _executed(api, _draft("supplier_note", payload, api.id("mia")))

    assert response.status_code == 200, response.text
    _, caused = _trail(api, response.json()["draft"]["id"])
    [attached] = caused
    assert attached["action"] == "inventory.supplier_note_attached"
    assert attached["details"]["note"] == payload["note"]
    assert attached["actor"]["id"] == api.id("mia")


def test_a_reconciliation_draft_posts_every_correction(api: Api, floor: Floor) -> None:
    _stock(floor, "SKU-1", 10)
    _stock(floor, "SKU-3", 10, location="loc_east")
    corrections = [
        {"sku": "SKU-1", "location_id": "loc_main", "quantity_delta": -3},
        {"sku": "SKU-3", "location_id": "loc_east", "quantity_delta": 2},
    ]
    payload = {
        "currency": "USD",
        "corrections": [
            {**c, "unit_cost": {"minor_units": 400, "currency": "USD"}} for c in corrections
        ],
    }

    response = _executed(api, _draft("reconciliation", payload, api.id("mia")))

    assert response.status_code == 200, response.text
    assert (_on_hand(api, "SKU-1", "loc_main"), _on_hand(api, "SKU-3", "loc_east")) == (7, 12)
    assert_balanced(api)


def test_reserved_stock_fails_the_transfer_and_changes_nothing(api: Api, floor: Floor) -> None:
    """Approved work the inventory refuses answers 409 execution-failed; the draft keeps
    the reason, its record says so, and the ledger has not moved."""
    _stock(floor, "SKU-1", 5)
    floor.run(ops.reserve, Reserve(sku="SKU-1", location_id="loc_main", quantity=4))
    ledger_before = every(api, "/v1/ledger")
    payload = {
        "sku": "SKU-1",
        "quantity": 3,
        "from_location_id": "loc_main",
        "to_location_id": "loc_east",
    }

    response = _executed(api, _draft("transfer", payload, api.id("mia")))

    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"].endswith("/execution-failed")
    assert problem["draft"]["state"] == "execution_failed"
    assert problem["draft"]["execution"]["failure"]["problem"] == "conflict"
    assert problem["decision"]["outcome"] == "allowed"
    assert every(api, "/v1/ledger") == ledger_before
    failed, caused = _trail(api, problem["draft"]["id"])
    assert failed["action"] == "draft.execution_failed"
    assert caused == []
    again = api.post("mia", f"/v1/drafts/{problem['draft']['id']}/execute")
    assert again.status_code == 409
    assert again.json()["type"].endswith("/conflict")


def test_an_item_changed_after_approval_is_not_executed(api: Api) -> None:
    """The draft names the item version it was based on; once an integration changes the
    item, execution is refused by the policy and no order is placed."""
    api.members["erp"] = api.add_member("erp", "integration", ["integration"])
    draft_id = api.submitted("sam")
    assert api.approve("mia", draft_id, "manager").json()["draft"]["state"] == "approved"
    item = api.get("viewer", "/v1/items/SKU-1").json()
    changed = {k: item[k] for k in ("description", "unit", "unit_cost", "category")}
    changed |= {"reorder_point": 99, "reorder_quantity": item["reorder_quantity"]}
    synced = api.post(
        "erp",
        "/v1/sync/items",
        {"records": [{"id": "SKU-1", "base_version": item["version"], "data": changed}]},
        key="sync-item-after-approval",
    )
    assert synced.status_code == 200, synced.text

    response = api.post("mia", f"/v1/drafts/{draft_id}/execute")

    assert response.status_code == 403, response.text
    reasons = response.json()["decision"]["reasons"]
    assert [r["rule"] for r in reasons] == ["records.changed_since_drafted"]
    assert reasons[0]["facts"]["current_version"] == item["version"] + 1
    assert every(api, "/v1/purchase-orders") == []
