"""Workspaces keep their records to themselves; tokens are shown once and never logged."""

from __future__ import annotations

import asyncio

import pytest
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from support.api import Api, Workspace, purchase_order


def test_another_workspace_sees_404(api: Api, settings: Settings) -> None:
    """A draft of one workspace is not found from another, and cannot be acted on."""
    draft_id = api.submitted()
    other = Api.with_cast(api.client, asyncio.run(create_workspace(settings)))

    assert other.get("mia", f"/v1/drafts/{draft_id}").status_code == 404
    assert other.approve("mia", draft_id, "manager").status_code == 404
    assert other.get("mia", "/v1/drafts").json()["items"] == []
    assert other.audit(draft=draft_id) == []


def test_approval_owner_must_be_in_the_workspace(api: Api, settings: Settings) -> None:
    """A draft cannot name an owner from another workspace."""
    other = Api.with_cast(api.client, asyncio.run(create_workspace(settings)))

    response = api.submit("bot", purchase_order(other.id("mia")))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "$.approval_owner"


def test_token_scopes_cannot_exceed_the_roles(api: Api) -> None:
    """A token asking for scopes its principal's roles do not grant is refused."""
    response = api.post(
        "admin", "/v1/tokens", {"principal_id": api.id("bot"), "label": "x", "scopes": ["approve"]}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "$.scopes"


def test_token_values_never_reach_logs_or_the_audit_log(
    client: TestClient, workspace: Workspace, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every token value stays out of what the service logs and of every audit record."""
    api = Api.with_cast(client, workspace)
    draft_id = api.submitted()
    api.approve("mia", draft_id, "manager")
    api.post("mia", f"/v1/drafts/{draft_id}/execute")
    api.post("mia", "/v1/drafts", raw=b"{broken", key="k")
    records = api.audit()

    logged = capfd.readouterr().err
    audited = repr(records)
    secrets = [member.token for member in api.members.values()]
    assert "http.request" in logged
    assert "policy.decided" in logged
    assert not [s for s in secrets if s in logged or s in audited]
    assert any(r["record"]["action"] == "token.created" for r in records)


def test_a_token_is_shown_once_even_to_a_replay(api: Api) -> None:
    """Replaying a token issuance returns the same token id but never the secret again."""
    body = {"principal_id": api.id("bot"), "label": "second bot token"}

    first = api.post("admin", "/v1/tokens", body, key="issue-1")
    again = api.post("admin", "/v1/tokens", body, key="issue-1")

    assert first.status_code == again.status_code == 201
    assert first.json()["token"].startswith("o3_")
    assert again.json()["token"] == ""
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
