"""Pending drafts expire and escalate when the policy says: they refuse action once expired,
the sweeps record both, and silence never approves a draft."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from conftest import POLICY_DIR, create_workspace
from order3.config import Settings
from order3.domain.decisions import parse_utc
from order3.http.app import create_app
from support.api import Api, Member, purchase_order
from support.servers import OpaServer

SETTINGS = json.loads((POLICY_DIR / "settings" / "data.json").read_text())

NO_EXPIRY = """package order3

decision := {
	"allow": true,
	"outcome": "allowed",
	"reasons": [{"rule": "submit.accepted", "message": "no expiry given"}],
	"required": [{"role": "manager", "count": 1, "excluded": []}],
}
"""


ALWAYS_WORKFLOW = """package order3

decision := {
	"allow": true,
	"outcome": "allowed",
	"reasons": [{"rule": "any.accepted", "message": "always, with an expiry"}],
	"required": [],
	"expires_at": "2100-01-01T00:00:00Z",
	"escalation": {"at": "2099-01-01T00:00:00Z", "to_role": "admin"},
}
"""


def _opa(
    tmp_path: Path, *, settings: dict[str, Any] | None = None, source: str | None = None
) -> Iterator[str]:
    """An OPA on a copy of policies/, with other policy data or a module in place of all."""
    policy_dir = tmp_path / "policies"
    if source is None:
        shutil.copytree(POLICY_DIR, policy_dir)
        (policy_dir / "settings" / "data.json").write_text(json.dumps(settings or SETTINGS))
    else:
        policy_dir.mkdir()
        (policy_dir / "order3.rego").write_text(source)
    with OpaServer() as server:
        server.start(policy_dir)
        yield server.url


def _client(tmp_path: Path, opa_url: str, database_url: str | None = None) -> TestClient:
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=database_url or f"sqlite:///{tmp_path / 'o3.db'}",
        opa_url=opa_url,
        policy_refresh_seconds=3600,
        expiry_sweep_seconds=3600,
    )
    client = TestClient(create_app(settings))
    client.app.state.workspace = asyncio.run(create_workspace(settings))
    return client


def _sweep(client: TestClient, name: str, now: str) -> int:
    drafts = client.app.state.services.drafts
    done: int = client.blocking_portal.call(lambda: getattr(drafts, name)(now=now))
    return done


def test_the_policy_sets_expiry_and_escalation_from_the_submission(api: Api) -> None:
    """A submitted draft expires and escalates when data.settings.workflow says."""
    workflow = SETTINGS["workflow"]

    draft = api.submit("bot", purchase_order(api.id("mia"))).json()["draft"]

    created = parse_utc(draft["created_at"], "created_at")
    expires = parse_utc(draft["expires_at"], "expires_at")
    escalation = draft["escalation"]
    assert (expires - created).total_seconds() == workflow["pending_seconds"]["default"]
    escalate = parse_utc(escalation["at"], "at")
    assert (escalate - created).total_seconds() == workflow["escalation"]["default"][
        "after_seconds"
    ]
    assert escalation["to_role"] == workflow["escalation"]["default"]["to_role"]
    assert escalation["escalated_at"] is None


def test_escalation_marks_the_draft_and_never_approves_it(api: Api) -> None:
    """When its escalation is due, a pending draft is escalated: it stays pending, needs
    what it needed, and the escalation is an audit record naming the role."""
    draft_id = api.submitted()
    before = api.get("mia", f"/v1/drafts/{draft_id}").json()
    due = before["escalation"]["at"]

    early = _sweep(api.client, "escalate_due", "2000-01-01T00:00:00.000000Z")
    escalated = _sweep(api.client, "escalate_due", due)
    again = _sweep(api.client, "escalate_due", due)
    after = api.get("mia", f"/v1/drafts/{draft_id}").json()
    [record] = api.audit(draft=draft_id, action="draft.escalated")

    assert (early, escalated, again) == (0, 1, 0)
    assert after["state"] == "pending"
    assert after["required"] == before["required"]
    assert after["escalation"]["escalated_at"] is not None
    assert record["record"]["actor"] == {"id": "system", "type": "system"}
    assert record["record"]["details"] == {"to_role": "admin", "escalate_at": due}
    assert api.approve("mia", draft_id, "manager").json()["draft"]["state"] == "approved"


def test_an_unanswered_draft_expires_and_is_never_approved(api: Api) -> None:
    """At its expiry an unanswered draft becomes expired, recorded by the system; it can
    be neither approved nor executed after, and an expired draft is not escalated."""
    draft_id = api.submitted()
    expires_at = api.get("mia", f"/v1/drafts/{draft_id}").json()["expires_at"]

    expired = _sweep(api.client, "expire_due", expires_at)
    escalated = _sweep(api.client, "escalate_due", expires_at)
    refused = api.approve("mia", draft_id, "manager")
    after = api.get("mia", f"/v1/drafts/{draft_id}").json()
    [record] = api.audit(draft=draft_id, action="draft.expired")

    assert (expired, escalated) == (1, 0)
    assert refused.status_code == 409
    assert after["state"] == "expired"
    assert after["required"] == []
    assert record["record"]["details"] == {"expires_at": expires_at}
    assert api.post("mia", f"/v1/drafts/{draft_id}/execute").status_code == 409


def test_an_expired_draft_refuses_action_before_the_sweep(tmp_path: Path) -> None:
    """Past the expiry the policy set, a draft refuses approval even before the sweep."""
    settings = json.loads(json.dumps(SETTINGS))
    settings["workflow"] = {"pending_seconds": {"default": 1}, "escalation": {}}

    for opa_url in _opa(tmp_path, settings=settings):
        with _client(tmp_path, opa_url) as client:
            api = Api.with_cast(client, client.app.state.workspace)
            draft = api.submit("bot", purchase_order(api.id("mia"))).json()["draft"]
            time.sleep(1.1)
            refused = api.approve("mia", draft["id"], "manager")

    assert draft["escalation"] is None
    assert refused.status_code == 409
    assert refused.json()["state"] == "expired"


def test_a_policy_that_sets_no_expiry_is_an_engine_failure(tmp_path: Path) -> None:
    """An allowed submit without `expires_at` stores nothing: it is audited as an engine
    failure, since a draft without an expiry could stay open for ever."""
    for opa_url in _opa(tmp_path, source=NO_EXPIRY):
        with _client(tmp_path, opa_url) as client:
            api = _admin_api(client)
            response = api.submit("admin", purchase_order(api.id("admin")))
            [record] = api.audit(action="engine.failed")
            drafts = api.get("admin", "/v1/drafts").json()["items"]

    assert response.status_code == 503
    assert "carries no `expires_at`" in record["record"]["decision"]["failure"]
    assert drafts == []


def test_a_result_setting_the_workflow_for_another_action_is_refused(tmp_path: Path) -> None:
    """Only submit and patch set the workflow: a dismissal whose result carries an expiry
    fails closed, and the draft stays as it was."""
    for opa_url in _opa(tmp_path, source=ALWAYS_WORKFLOW):
        with _client(tmp_path, opa_url) as client:
            api = _admin_api(client)
            submitted = api.submit("admin", purchase_order(api.id("admin")))
            draft_id = submitted.json()["draft"]["id"]
            dismissed = api.post("admin", f"/v1/drafts/{draft_id}/dismiss", {"reason": "no"})
            state = api.get("admin", f"/v1/drafts/{draft_id}").json()["state"]

    assert submitted.status_code == 201
    assert dismissed.status_code == 503
    assert state == "pending"


def _admin_api(client: TestClient) -> Api:
    workspace = client.app.state.workspace
    return Api(client, workspace, {"admin": Member(workspace.admin_id, workspace.admin_token)})
