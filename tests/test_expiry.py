"""Pending drafts expire: they refuse action at once, and the sweep records the expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.http.app import create_app
from support.api import Api


def test_an_expired_draft_refuses_action_and_the_sweep_records_it(
    tmp_path: Path, opa_url: str
) -> None:
    """Past its expiry a draft cannot be approved, and expiring it is an audit record."""
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'o3.db'}",
        opa_url=opa_url,
        draft_ttl_days=0,
        expiry_sweep_seconds=3600,
    )
    workspace = asyncio.run(create_workspace(settings))

    with TestClient(create_app(settings)) as client:
        api = Api.with_cast(client, workspace)
        draft_id = api.submitted()
        refused = api.approve("mia", draft_id, "manager")
        expired = client.blocking_portal.call(client.app.state.services.drafts.expire_due)
        after = api.get("mia", f"/v1/drafts/{draft_id}").json()
        [record] = api.audit(draft=draft_id, action="draft.expired")

    assert refused.status_code == 409
    assert refused.json()["state"] == "expired"
    assert expired == 1
    assert after["state"] == "expired"
    assert after["required"] == []
    assert record["record"]["actor"] == {"id": "system", "type": "system"}
