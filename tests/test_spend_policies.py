"""The spend policies through the real OPA and the HTTP API, on both databases: every
threshold is read from policies/settings/data.json, and drafts one minor unit below, at and
above it decide as that data says."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from conftest import POLICY_DIR, create_workspace
from order3.config import Settings
from order3.domain.inventory import LocationData, SupplierData
from order3.http.app import create_app
from order3.workflow import inventory as ops
from support.api import Api, purchase_order
from support.inventory import Floor, item_data
from support.servers import OpaServer

DATA: dict[str, Any] = json.loads((POLICY_DIR / "settings" / "data.json").read_text())
CURRENCIES = sorted(DATA["approval_tiers"])
AROUND = (-1, 0, 1)
"""One minor unit below a threshold, at it, and above it."""

_names = itertools.count()
examples = settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def valued_in(api: Api, currency: str) -> str:
    """An item valued in ``currency``: SKU-1 for USD, else one made for it once."""
    if currency == "USD":
        return "SKU-1"
    sku = f"SKU-{currency}"
    if api.get("viewer", f"/v1/items/{sku}").status_code == 404:
        Floor(api).run(ops.create_item, sku, item_data(100, currency=currency))
    return sku


def order(
    api: Api,
    amount: int,
    *,
    currency: str = "USD",
    sku: str | None = None,
    supplier: str = "sup_northwind",
    location: str = "loc_main",
) -> dict[str, Any]:
    """A purchase order of exactly ``amount`` minor units, as one line of one unit of an
    item valued in ``currency``."""
    body = purchase_order(api.id("mia"), unit_cost=amount, quantity=1, currency=currency)
    body["payload"].update(supplier_id=supplier, location_id=location)
    body["payload"]["lines"][0]["sku"] = sku or valued_in(api, currency)
    return body


def adjustment(api: Api, amount: int, currency: str) -> dict[str, Any]:
    """An adjustment writing off one unit worth ``amount`` minor units."""
    return {
        "kind": "adjustment",
        "payload": {
            "sku": valued_in(api, currency),
            "location_id": "loc_main",
            "quantity_delta": -1,
            "reason_code": "damaged",
            "unit_cost": {"minor_units": amount, "currency": currency},
        },
        "rationale": "One unit was found damaged on the shelf.",
        "affected_records": [{"type": "item", "id": "SKU-1"}],
        "approval_owner": api.id("mia"),
    }


def rules(response: httpx.Response) -> set[str]:
    return {reason["rule"] for reason in response.json()["decision"]["reasons"]}


def needs(response: httpx.Response) -> dict[str, int]:
    return {item["role"]: item["count"] for item in response.json()["decision"]["required"]}


def context_of(api: Api, response: httpx.Response) -> dict[str, Any]:
    """The context the service sent with the decision behind ``response``."""
    decision_id = response.json()["decision"]["id"]
    shown = api.get("admin", f"/v1/decisions/{decision_id}")
    assert shown.status_code == 200, shown.text
    context: dict[str, Any] = shown.json()["input"]["context"]
    return context


def tier(amount: int, currency: str) -> dict[str, int]:
    """The spend tier data.json gives for ``amount``: the highest start at or below it."""
    tiers = [t for t in DATA["approval_tiers"][currency] if t["from_minor_units"] <= amount]
    required: dict[str, int] = max(tiers, key=lambda t: t["from_minor_units"])["required"]
    return required


def new_location(api: Api, location_id: str | None = None) -> str:
    """A new location record, ``location_id`` or a fresh id."""
    location_id = location_id or f"loc_{next(_names)}"
    Floor(api).run(ops.create_location, location_id, LocationData(name=location_id))
    return location_id


def new_supplier(api: Api, supplier_id: str) -> str:
    """An active supplier record with ``supplier_id``, created by the admin."""
    Floor(api).run(ops.create_supplier, supplier_id, SupplierData(name=supplier_id))
    return supplier_id


def new_member(api: Api, kind: str, roles: list[str]) -> str:
    name = f"{kind}-{next(_names)}"
    api.members[name] = api.add_member(name, kind, roles)
    return name


def executed(api: Api, body: dict[str, Any]) -> None:
    """Submit ``body`` as sam, have it approved as it requires, and execute it."""
    submitted = api.submit("sam", body)
    assert submitted.status_code == 201, submitted.text
    draft_id = submitted.json()["draft"]["id"]
    for item in submitted.json()["decision"]["required"]:
        for _ in range(item["count"]):
            approver = new_member(api, "user", [item["role"]])
            answer = api.approve(approver, draft_id, item["role"])
            assert answer.status_code == 200, answer.text
    run = api.post("mia", f"/v1/drafts/{draft_id}/execute")
    assert run.status_code == 200, run.text


# ---- spend limits per role, currency and item category ---------------------------------


@examples
@given(currency=st.sampled_from(CURRENCIES))
def test_a_manager_approves_up_to_the_limit_for_the_currency(api: Api, currency: str) -> None:
    """A manager's approval is refused one minor unit above the manager limit."""
    limit = DATA["approval_limits"]["manager"][currency]

    for offset in AROUND:
        draft_id = api.submit("sam", order(api, limit + offset, currency=currency)).json()
        response = api.approve("mia", draft_id["draft"]["id"], "manager")

        over = "spend.over_approver_limit" in rules(response)
        assert over == (offset > 0), (offset, response.text)


@examples
@given(currency=st.sampled_from(CURRENCIES))
def test_a_manager_approves_items_of_a_category_up_to_its_limit(api: Api, currency: str) -> None:
    """Hazardous items have their own, lower manager limit per currency: the category is
    the item record's."""
    sku = f"HAZ-{next(_names)}"
    hazardous = item_data(100, currency=currency, category="hazardous")
    Floor(api).run(ops.create_item, sku, hazardous)
    limit = DATA["category_limits"]["hazardous"]["manager"][currency]

    for offset in AROUND:
        body = order(api, limit + offset, currency=currency, sku=sku)
        draft_id = api.submit("sam", body).json()["draft"]["id"]
        response = api.approve("mia", draft_id, "manager")

        assert (response.status_code == 403) == (offset > 0), (offset, response.text)
        if offset > 0:
            assert rules(response) == {"spend.over_category_limit"}


# ---- quorum and two-person approval ----------------------------------------------------


@examples
@given(currency=st.sampled_from(CURRENCIES))
def test_two_people_approve_from_the_two_person_threshold(api: Api, currency: str) -> None:
    """From the two-person threshold, the requirement counts at least two approvals."""
    threshold = DATA["two_person"]["from_minor_units"][currency]

    for offset in AROUND:
        amount = threshold + offset
        response = api.submit("sam", order(api, amount, currency=currency))

        assert response.status_code == 201, response.text
        if offset < 0:
            assert needs(response) == tier(amount, currency)
        else:
            assert sum(needs(response).values()) >= 2
            added = sum(tier(amount, currency).values()) < 2
            assert ("quorum.two_person" in rules(response)) == added


@examples
@given(currency=st.sampled_from(CURRENCIES))
def test_the_quorum_overlay_applies_from_its_threshold(api: Api, currency: str) -> None:
    """At and above a quorum overlay, at least its roles and counts are required."""
    overlay = DATA["quorum"][currency][0]

    for offset in AROUND:
        amount = overlay["from_minor_units"] + offset
        response = api.submit("sam", order(api, amount, currency=currency))

        applies = offset >= 0
        assert ("quorum.minimum_roles" in rules(response)) == applies
        if applies:
            for role, count in overlay["required"].items():
                assert needs(response)[role] >= count
        else:
            assert needs(response) == tier(amount, currency)


def test_an_approver_fills_one_place_only(api: Api) -> None:
    """Who approved is excluded from what is still required, and cannot approve again; so
    are the requester and whoever created the supplier (the admin)."""
    both = new_member(api, "user", ["manager", "finance"])
    draft_id = api.submitted("sam", unit_cost=60000)

    first = api.approve(both, draft_id, "manager")
    second = api.approve(both, draft_id, "finance")

    excluded = sorted([api.id("sam"), api.id(both), api.id("admin")])
    assert first.json()["draft"]["required"] == [
        {"role": "finance", "count": 1, "excluded": excluded}
    ]
    assert second.status_code == 403
    assert rules(second) == {"duties.duplicate_approver"}


# ---- suppliers --------------------------------------------------------------------------


def test_a_purchase_order_to_a_blocked_supplier_is_refused(api: Api) -> None:
    """A supplier the policy data lists as blocked gets no purchase order, whatever its
    record says, and the refusal is audited with the supplier as the inventory holds it."""
    blocked = new_supplier(api, DATA["suppliers"]["blocked"][0])

    response = api.submit("sam", order(api, 1000, supplier=blocked))

    assert response.status_code == 403
    assert rules(response) == {"suppliers.blocked"}
    [record] = api.audit(action="decision.refused")
    supplier = record["record"]["decision"]["input"]["context"]["supplier"]
    assert supplier == {"id": blocked, "status": "active", "created_by": api.id("admin")}


def test_a_purchase_order_to_a_supplier_on_hold_needs_finance(api: Api) -> None:
    """A small order that needs one manager also needs finance when its supplier is on hold."""
    on_hold = new_supplier(api, DATA["suppliers"]["on_hold"][0])

    response = api.submit("sam", order(api, 1000, supplier=on_hold))
    draft_id = response.json()["draft"]["id"]
    after_manager = api.approve("mia", draft_id, "manager")

    assert [reason["rule"] for reason in response.json()["decision"]["reasons"]] == [
        "submit.accepted",
        "suppliers.on_hold_needs_finance",
    ]
    assert needs(response) == {"manager": 1, **DATA["suppliers"]["on_hold_required"]}
    assert after_manager.json()["draft"]["state"] == "pending"


# ---- location budgets --------------------------------------------------------------------


@examples
@given(
    currency=st.sampled_from(CURRENCIES),
    spent=st.integers(1, 200_000),
)
def test_a_location_budget_counts_what_was_executed_this_month(
    api: Api, currency: str, spent: int
) -> None:
    """After an order of ``spent`` is executed at a location, the next order there is
    refused exactly when both together pass the location's monthly budget."""
    location = new_location(api)
    budget = DATA["location_budgets"]["default"][currency]
    executed(api, order(api, spent, currency=currency, location=location))

    for offset in AROUND:
        body = order(api, budget - spent + offset, currency=currency, location=location)
        response = api.submit("sam", body)

        assert context_of(api, response)["location_spend"] == {
            "location_id": location,
            "month": context_of(api, response)["now"][:7],
            "currency": currency,
            "executed_minor_units": spent,
        }
        over = "budgets.monthly_budget_exceeded" in rules(response)
        assert over == (offset > 0), (offset, response.text)


def test_a_listed_location_has_its_own_budget(api: Api) -> None:
    """A location named in location_budgets.locations uses its own budget, not the default."""
    location, budgets = next(iter(DATA["location_budgets"]["locations"].items()))
    new_location(api, location)

    at = api.submit("sam", order(api, budgets["USD"], location=location))
    above = api.submit("sam", order(api, budgets["USD"] + 1, location=location))

    assert at.status_code == 201
    assert rules(above) == {"budgets.monthly_budget_exceeded"}


def test_execution_is_refused_when_the_budget_was_spent_meanwhile(api: Api) -> None:
    """The budget is checked again at execution, against what executed since submission."""
    location = new_location(api)
    budget = DATA["location_budgets"]["default"]["USD"]
    waiting = api.submit("sam", order(api, 1000, location=location)).json()["draft"]["id"]
    api.approve("mia", waiting, "manager")

    executed(api, order(api, budget - 999, location=location))
    response = api.post("mia", f"/v1/drafts/{waiting}/execute")

    assert response.status_code == 403
    assert rules(response) == {"budgets.monthly_budget_exceeded"}


# ---- agents -------------------------------------------------------------------------------


@examples
@given(currency=st.sampled_from(CURRENCIES), share=st.floats(0, 0.99))
def test_an_agent_drafts_up_to_its_daily_limit(api: Api, currency: str, share: float) -> None:
    """An agent's submissions today, whatever became of them, count toward its cap."""
    limit = DATA["agents"]["daily_spend_limit"][currency]
    first = max(1, int(limit * share))

    for offset in AROUND:
        agent = new_member(api, "agent", ["requester"])
        opened = api.submit(agent, order(api, first, currency=currency))
        assert opened.status_code == 201, opened.text
        response = api.submit(agent, order(api, limit - first + offset, currency=currency))

        over = "agents.daily_spend_exceeded" in rules(response)
        assert over == (offset > 0), (offset, response.text)
        assert context_of(api, response)["requester_daily_spend"]["submitted_minor_units"] == first


@examples
@given(first=st.integers(1, 50_000), patched_to=st.integers(1, 50_000))
def test_a_patch_counts_the_draft_at_its_new_amount(api: Api, first: int, patched_to: int) -> None:
    """A patch is weighed against the rest of the day, and from then on the draft counts
    toward the agent's day at its patched amount."""
    agent = new_member(api, "agent", ["requester"])
    earlier = api.submit(agent, order(api, 700))
    draft = api.submit(agent, order(api, first)).json()["draft"]
    assert earlier.status_code == 201, earlier.text

    patch = {"payload": order(api, patched_to)["payload"]}
    patched = api.patch(agent, f"/v1/drafts/{draft['id']}", patch)
    assert patched.status_code == 200, patched.text
    next_one = api.submit(agent, order(api, 1))

    assert context_of(api, patched)["requester_daily_spend"]["submitted_minor_units"] == 700
    counted = context_of(api, next_one)["requester_daily_spend"]["submitted_minor_units"]
    assert counted == 700 + patched_to


def test_a_person_has_no_daily_limit(api: Api) -> None:
    """The daily cap is for agents: a person may draft above it."""
    limit = DATA["agents"]["daily_spend_limit"]["USD"]

    response = api.submit("sam", order(api, limit + 1))

    assert response.status_code == 201


def test_an_agent_draft_needs_a_human_approval(api: Api) -> None:
    """An agent's draft always needs an approval, and no agent can give it."""
    response = api.submit("bot", order(api, 1))
    refused = api.approve("rogue", response.json()["draft"]["id"], "manager")

    assert sum(needs(response).values()) >= 1
    assert refused.status_code == 403
    assert "duties.agent_cannot_approve" in rules(refused)


# ---- adjustments --------------------------------------------------------------------------


@examples
@given(currency=st.sampled_from(CURRENCIES))
def test_an_adjustment_needs_finance_from_its_threshold(api: Api, currency: str) -> None:
    """An adjustment at or above the threshold for its currency needs finance."""
    threshold = DATA["adjustments"]["from_minor_units"][currency]

    for offset in AROUND:
        response = api.submit("sam", adjustment(api, threshold + offset, currency))

        assert response.status_code == 201, response.text
        finance = "adjustments.finance_required" in rules(response)
        assert finance == (offset >= 0)
        if finance:
            assert needs(response)["finance"] >= 1


# ---- approvals expire ---------------------------------------------------------------------


def _opa_with_settings(tmp_path: Path, changes: dict[str, Any]) -> Iterator[str]:
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policy_dir)
    (policy_dir / "settings" / "data.json").write_text(json.dumps({**DATA, **changes}))
    with OpaServer() as server:
        server.start(policy_dir)
        yield server.url


def test_an_approval_older_than_the_policy_allows_does_not_count(
    tmp_path: Path, database_url: str
) -> None:
    """With approvals lasting about a second, a lapsed manager approval is required again
    before the draft is approved, and its approver may renew it."""
    max_age_days = 1.5 / 86400
    for opa_url in _opa_with_settings(tmp_path, {"approval_max_age_days": max_age_days}):
        settings = Settings(
            data_dir=tmp_path / "var",
            database_url=database_url,
            opa_url=opa_url,
            policy_refresh_seconds=3600,
            expiry_sweep_seconds=3600,
        )
        workspace = asyncio.run(create_workspace(settings))
        with TestClient(create_app(settings)) as client:
            api = Api.with_cast(client, workspace)
            draft_id = api.submitted("sam", unit_cost=60000)
            api.approve("mia", draft_id, "manager")
            time.sleep(1.6)
            after_finance = api.approve("fay", draft_id, "finance").json()
            renewed = api.approve("mia", draft_id, "manager").json()

    assert after_finance["draft"]["state"] == "pending"
    assert [item["role"] for item in after_finance["draft"]["required"]] == ["manager"]
    assert renewed["draft"]["state"] == "approved"
