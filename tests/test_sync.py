"""Sync without hidden overwrite: applied, conflicting and replayed batches, each one audit
record owned by the integration's token, on both databases."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from support.api import Api, Member
from support.inventory import Floor, every

_keys = itertools.count()


def _item(cost: int = 1250, description: str = "Hex bolt M8") -> dict[str, Any]:
    return {
        "description": description,
        "unit": "each",
        "unit_cost": {"minor_units": cost, "currency": "USD"},
        "category": "fasteners",
        "reorder_point": 10,
        "reorder_quantity": 100,
    }


def _sync(
    api: Api, who: str, records: str, upserts: list[dict[str, Any]], key: str | None = None
) -> Any:
    return api.post(
        who, f"/v1/sync/{records}", {"records": upserts}, key=key or f"sync-{next(_keys)}"
    )


@pytest.fixture
def api(client: TestClient, settings: Settings) -> Api:
    """A workspace with no inventory yet: the integrations' syncs create it."""
    return Api.with_cast(client, asyncio.run(create_workspace(settings, floor=False)))


@pytest.fixture
def erp(api: Api) -> Member:
    api.members["erp"] = api.add_member("erp", "integration", ["integration"])
    api.members["wms"] = api.add_member("wms", "integration", ["integration"])
    return api.members["erp"]


def test_new_and_current_records_apply_and_bump_their_version(api: Api, erp: Member) -> None:
    """A new record is created at version 1, owned by the integration; an update based on
    the current version applies and bumps it; equal data writes nothing."""
    created = _sync(api, "erp", "items", [{"id": "SKU-9", "base_version": None, "data": _item()}])
    updated = _sync(api, "erp", "items", [{"id": "SKU-9", "base_version": 1, "data": _item(1300)}])
    same = _sync(api, "erp", "items", [{"id": "SKU-9", "base_version": 2, "data": _item(1300)}])

    assert created.status_code == 200, created.text
    assert created.json()["applied"] == [
        {"id": "SKU-9", "version_before": None, "version_after": 1}
    ]
    assert updated.json()["applied"] == [{"id": "SKU-9", "version_before": 1, "version_after": 2}]
    assert same.json()["unchanged"] == [{"id": "SKU-9", "version": 2}]
    item = api.get("viewer", "/v1/items/SKU-9").json()
    assert (item["version"], item["unit_cost"]["minor_units"]) == (2, 1300)
    assert item["owner"] == {"id": erp.id, "type": "integration"}


def test_a_stale_update_becomes_a_conflict_and_neither_side_wins(api: Api, erp: Member) -> None:
    """When someone else changed the record since the integration read it, the record keeps
    our data and a sync-conflict exception holds both sides."""
    _sync(api, "erp", "items", [{"id": "SKU-9", "base_version": None, "data": _item()}])
    _sync(api, "wms", "items", [{"id": "SKU-9", "base_version": 1, "data": _item(1400)}])

    response = _sync(api, "erp", "items", [{"id": "SKU-9", "base_version": 1, "data": _item(1100)}])

    [conflict] = response.json()["conflicts"]
    assert response.json()["applied"] == []
    assert (conflict["base_version"], conflict["current_version"], conflict["opened"]) == (
        1,
        2,
        True,
    )
    item = api.get("viewer", "/v1/items/SKU-9").json()
    assert (item["version"], item["unit_cost"]["minor_units"]) == (2, 1400)
    exception = api.get("viewer", f"/v1/exceptions/{conflict['exception_id']}").json()
    assert exception["kind"] == "sync_conflict"
    assert exception["state"] == "open"
    assert exception["evidence"]["theirs"]["unit_cost"]["minor_units"] == 1100
    assert exception["evidence"]["ours"]["unit_cost"]["minor_units"] == 1400
    assert exception["evidence"]["ours_owner"]["id"] == erp.id
    assert exception["evidence"]["integration"]["id"] == erp.id
    assert "someone else changed it" in exception["reason"]


def test_each_batch_is_one_audit_record_owned_by_the_token(api: Api, erp: Member) -> None:
    """A batch with applied and conflicting records is one audit record naming both."""
    _sync(api, "erp", "suppliers", [{"id": "sup_b", "base_version": None, "data": {"name": "B"}}])
    before = len(api.audit(action="sync.batch"))
    upserts = [
        {"id": "sup_a", "base_version": None, "data": {"name": "A", "lead_time_days": 3}},
        {"id": "sup_b", "base_version": None, "data": {"name": "B2", "status": "on_hold"}},
    ]

    response = _sync(api, "erp", "suppliers", upserts)

    records = api.audit(action="sync.batch")
    assert len(records) == before + 1
    body = records[-1]["record"]
    me = api.get("erp", "/v1/me").json()
    assert body["actor"] == {"id": erp.id, "type": "integration", "token_id": me["token_id"]}
    assert [a["id"] for a in body["details"]["applied"]] == ["sup_a"]
    assert [c["id"] for c in body["details"]["conflicts"]] == ["sup_b"]
    assert records[-1]["seq"] == response.json()["audit_seq"]
    changed = {(c["type"], c["version_after"]) for c in body["details"]["records"]}
    assert changed == {("supplier", 1), ("exception", 1)}


def test_replaying_a_batch_replays_its_answer(api: Api, erp: Member) -> None:
    """The same batch under the same key answers the same and writes nothing again; resent
    under a new key, the same stale data finds the conflict already open."""
    _sync(api, "erp", "items", [{"id": "SKU-9", "base_version": None, "data": _item()}])
    _sync(api, "wms", "items", [{"id": "SKU-9", "base_version": 1, "data": _item(1400)}])
    stale = [{"id": "SKU-9", "base_version": 1, "data": _item(1100)}]

    first = _sync(api, "erp", "items", stale, key="batch-7")
    replay = _sync(api, "erp", "items", stale, key="batch-7")
    other_body = _sync(
        api, "erp", "items", [{"id": "SKU-9", "base_version": 2, "data": _item(1)}], key="batch-7"
    )
    resent = _sync(api, "erp", "items", stale)

    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert other_body.status_code == 422
    assert (
        resent.json()["conflicts"][0]["exception_id"]
        == first.json()["conflicts"][0]["exception_id"]
    )
    assert resent.json()["conflicts"][0]["opened"] is False
    assert len(every(api, "/v1/exceptions", kind="sync_conflict")) == 1
    assert len(api.audit(action="sync.batch")) == 4


def test_bad_batches_are_refused_whole(api: Api, erp: Member) -> None:
    """A malformed record, a repeated id or a version never given out is a 422 naming the
    field, and nothing of the batch is written."""
    good = {"id": "SKU-1", "base_version": None, "data": _item()}
    cases = {
        "$.records[1].data.unit_cost.currency": {
            "id": "SKU-2",
            "base_version": None,
            "data": {**_item(), "unit_cost": {"minor_units": 1, "currency": "XAU"}},
        },
        "$.records[1].id": {**good},
        "$.records[1].data": {
            "id": "SKU-2",
            "base_version": None,
            "data": {**_item(), "colour": "red"},
        },
    }
    for field, bad in cases.items():
        response = _sync(api, "erp", "items", [good, bad])
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"].startswith(field)
    _sync(api, "erp", "items", [good])
    too_new = _sync(
        api,
        "erp",
        "items",
        [{"id": "SKU-3", "base_version": None, "data": _item()}, {**good, "base_version": 5}],
    )

    assert too_new.status_code == 422
    assert too_new.json()["errors"][0]["field"] == "$.records[1].base_version"
    assert [i["sku"] for i in every(api, "/v1/items")] == ["SKU-1"]


def test_only_integrations_sync_and_only_with_a_key(api: Api, erp: Member) -> None:
    """Sync needs the sync scope, an integration principal and an Idempotency-Key."""
    body = {"records": [{"id": "SKU-9", "base_version": None, "data": _item()}]}

    assert api.post("bot", "/v1/sync/items", body, key="k1").status_code == 403
    assert api.post("admin", "/v1/sync/items", body, key="k2").status_code == 403
    assert api.post("erp", "/v1/sync/items", body).status_code == 400
    assert api.post("erp", "/v1/sync/widgets", body, key="k3").status_code == 404


def test_purchase_orders_sync_and_a_conflict_drafts_a_reconciliation(api: Api, erp: Member) -> None:
    """Orders sync like other records; a stale order change becomes an exception whose
    draft is a reconciliation that puts both sides before the approvers."""
    Floor(api).stock()
    order = {
        "supplier_id": "sup_acme",
        "location_id": "loc_main",
        "currency": "USD",
        "lines": [
            {"sku": "SKU-1", "quantity": 10, "unit_cost": {"minor_units": 1250, "currency": "USD"}}
        ],
        "expected_date": "2031-05-01",
    }
    created = _sync(
        api, "erp", "purchase-orders", [{"id": "PO-100", "base_version": None, "data": order}]
    )
    later = {**order, "expected_date": "2031-06-01"}
    _sync(api, "wms", "purchase-orders", [{"id": "PO-100", "base_version": 1, "data": later}])
    stale = {**order, "lines": [{**order["lines"][0], "quantity": 12}]}

    conflict = _sync(
        api, "erp", "purchase-orders", [{"id": "PO-100", "base_version": 1, "data": stale}]
    )
    exception_id = conflict.json()["conflicts"][0]["exception_id"]
    drafted = api.post(
        "bot",
        f"/v1/exceptions/{exception_id}/draft",
        {"approval_owner": api.id("mia")},
        key="po-conflict",
    )

    assert created.json()["applied"][0]["version_after"] == 1
    stored = api.get("viewer", "/v1/purchase-orders/PO-100").json()
    assert (stored["version"], stored["expected_date"], stored["lines"][0]["quantity"]) == (
        2,
        "2031-06-01",
        10,
    )
    assert drafted.status_code == 201, drafted.text
    draft = drafted.json()["draft"]
    assert draft["kind"] == "reconciliation"
    assert [
        (c["sku"], c["location_id"], c["quantity_delta"]) for c in draft["payload"]["corrections"]
    ] == [("SKU-1", "loc_main", 0)]
    assert "Theirs:" in draft["payload"]["corrections"][0]["note"]
