"""What an auditor asks of the log: records by principal type, rule and policy revision,
counts per outcome, rule and day, and one decision whole."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from conftest import create_workspace
from order3.config import Settings
from support.api import Api


@pytest.fixture
def history(api: Api) -> dict[str, str]:
    """An agent's draft refused to another agent, then approved by a manager; and a draft
    its requester may not approve."""
    draft = api.submitted("bot")
    assert api.approve("rogue", draft, "manager").status_code == 403
    own = api.submitted("sam")
    assert api.approve("sam", own, "manager").status_code == 403
    approved = api.approve("mia", draft, "manager")
    assert approved.status_code == 200, approved.text
    return {"draft": draft, "decision": approved.json()["decision"]["id"]}


def _actions(items: list[dict[str, object]]) -> list[object]:
    return [item["record"]["action"] for item in items]  # type: ignore[index]


def test_records_filter_by_principal_type(api: Api, history: dict[str, str]) -> None:
    agents = api.audit(principal_type="agent", draft=history["draft"])
    users = api.audit(principal_type="user", draft=history["draft"])

    assert {item["record"]["actor"]["type"] for item in agents} == {"agent"}
    assert _actions(agents) == ["draft.submitted", "decision.refused"]
    assert _actions(users) == ["approval.decided"]


def test_an_unknown_principal_type_is_named(api: Api) -> None:
    response = api.get("admin", "/v1/audit", principal_type="robot")

    assert response.status_code == 400
    assert "principal_type" in response.text


def test_records_filter_by_the_rule_that_decided(api: Api, history: dict[str, str]) -> None:
    refused = api.audit(rule="duties.agent_cannot_approve")

    assert [item["record"]["actor"]["id"] for item in refused] == [api.id("rogue")]
    assert all(
        "duties.agent_cannot_approve" in item["record"]["decision"]["rules"] for item in refused
    )
    assert api.audit(rule="no.such_rule") == []


def test_records_filter_by_policy_revision(api: Api, history: dict[str, str]) -> None:
    decided = [item for item in api.audit() if item["record"]["decision"] is not None]
    revision = decided[0]["record"]["decision"]["policy_revision"]

    assert revision.startswith("sha256:")
    assert len(api.audit(policy_revision=revision)) == len(decided)
    assert api.audit(policy_revision="sha256:" + "0" * 64) == []


def test_counts_show_which_rules_deny_most(api: Api, history: dict[str, str]) -> None:
    response = api.get("admin", "/v1/audit/counts", group_by=["rule"], outcome="denied")

    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    assert groups == [
        {"rule": "duties.agent_cannot_approve", "count": 1},
        {"rule": "duties.requester_cannot_approve", "count": 1},
    ]


def test_counts_cross_outcome_and_day(api: Api, history: dict[str, str]) -> None:
    response = api.get("admin", "/v1/audit/counts", group_by=["day", "outcome"])

    assert response.status_code == 200, response.text
    today = datetime.now(UTC).date().isoformat()
    counts = {(g["day"], g["outcome"]): g["count"] for g in response.json()["groups"]}
    assert counts[(today, "denied")] == 2
    assert counts[(today, "allowed")] == 3  # two submissions and the approval
    assert response.json()["total"] == len(api.audit())


def test_counts_need_a_known_grouping(api: Api) -> None:
    missing = api.get("admin", "/v1/audit/counts")
    unknown = api.get("admin", "/v1/audit/counts", group_by=["colour"])

    assert missing.status_code == 400
    assert "group_by" in missing.text
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "group_by"


def test_a_decision_is_served_whole(api: Api, history: dict[str, str]) -> None:
    response = api.get("viewer", f"/v1/decisions/{history['decision']}")

    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["outcome"] == "allowed"
    assert decision["input"]["actor"]["id"] == api.id("mia")
    assert decision["input"]["draft"]["id"] == history["draft"]
    assert decision["result"]["allow"] is True
    assert decision["rules"] == [reason["rule"] for reason in decision["result"]["reasons"]]
    [record] = api.audit(decision=history["decision"])
    assert decision["record"]["seq"] == record["seq"]
    assert decision["record"]["hash"] == record["hash"]


def test_another_workspaces_decision_is_not_found(
    api: Api, history: dict[str, str], settings: Settings
) -> None:
    other = Api.with_cast(api.client, asyncio.run(create_workspace(settings)))

    assert other.get("admin", f"/v1/decisions/{history['decision']}").status_code == 404
    assert api.get("admin", "/v1/decisions/dec_nothing").status_code == 404
