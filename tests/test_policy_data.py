"""The policy data over the API: versions, schema validation, who may change it, its audit
record, and decisions that follow a change once OPA has loaded the new bundle."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.http.app import create_app
from order3.policy.binary import ensure_opa
from order3.policy.reevaluation import Reevaluator, recorded_decision
from order3.runtime import open_storage
from order3.storage.revisions import load_revisions, records_between
from order3.storage.schema import audit_records
from support.api import Api, Member, Workspace, purchase_order
from support.bundles import write_policy_set
from support.servers import ORDER3


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """A supervised OPA that polls the service for its bundle every second."""
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        policy_dir=write_policy_set(tmp_path / "policies", limit=200_000),
        bundle_poll_seconds=1,
        policy_refresh_seconds=3600,
        expiry_sweep_seconds=3600,
    )


def cli_policy_admin(settings: Settings, workspace: Workspace) -> Member:
    """`order3 policy-admin create`, the only way to a token with the `policy` scope."""
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
    }
    done = subprocess.run(
        [str(ORDER3), "policy-admin", "create", workspace.id, "--name", "Pat"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    return Member(lines["policy admin"].split()[0], lines["token"].strip())


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    workspace = asyncio.run(create_workspace(settings))
    policy_admin = cli_policy_admin(settings, workspace)
    with TestClient(create_app(settings)) as client:
        api = Api(client, workspace, {"admin": Member(workspace.admin_id, workspace.admin_token)})
        api.members["pat"] = policy_admin
        api.members["viewer"] = api.add_member("vera", "user", ["viewer"])
        yield api


def put(api: Api, who: str, document: Any, key: str | None = None) -> httpx.Response:
    response: httpx.Response = api.client.put(
        "/v1/policy-data", headers=api.headers(who, key), json={"document": document}
    )
    return response


def records(settings: Settings, action: str) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with open_storage(settings) as (db, _, _appender), db.connect() as connection:
            rows = await connection.execute(
                sa.select(audit_records.c.body)
                .where(audit_records.c.action == action)
                .order_by(audit_records.c.seq)
            )
            return [json.loads(row.body) for row in rows]

    return asyncio.run(run())


def test_the_policy_data_starts_as_the_file_shipped_with_the_policies(api: Api) -> None:
    current = api.get("viewer", "/v1/policy-data")
    versions = api.get("viewer", "/v1/policy-data/versions")

    assert current.status_code == 200, current.text
    assert current.json()["version"] == 1
    assert current.json()["document"] == {"limit": 200_000}
    assert current.json()["created_by"] == "system"
    assert [v["version"] for v in versions.json()] == [1]
    assert "document" not in versions.json()[0]


def test_no_workspace_admin_can_change_the_global_policy_data_or_grant_that_right(
    api: Api,
) -> None:
    """The data decides for every workspace, so only the operator's CLI grants `policy`."""
    by_admin = put(api, "admin", {"limit": 1})
    granted_role = api.post(
        "admin", "/v1/principals", {"type": "user", "name": "Eve", "roles": ["policy_admin"]}
    )
    granted_scope = api.post(
        "admin",
        "/v1/tokens",
        {"principal_id": api.id("pat"), "label": "copy", "scopes": ["read", "policy"]},
    )
    default_scopes = api.post("admin", "/v1/tokens", {"principal_id": api.id("pat"), "label": "x"})
    me = api.get("admin", "/v1/me")

    assert by_admin.status_code == 403
    assert by_admin.json()["required_scope"] == "policy"
    assert granted_role.status_code == 422
    assert granted_role.json()["errors"][0]["field"] == "$.roles[0]"
    assert granted_scope.status_code == 422
    assert default_scopes.status_code == 201
    assert default_scopes.json()["scopes"] == ["read"]
    assert "policy" not in me.json()["scopes"]
    assert api.get("viewer", "/v1/policy-data").json()["version"] == 1


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"limit": -1}, "/document/limit"),
        ({"limit": "many"}, "/document/limit"),
        ({}, "/document/limit"),
        ({"limit": 5, "limt": 6}, "/document/limt"),
    ],
)
def test_a_document_the_schema_refuses_is_422_naming_the_field_and_writes_nothing(
    api: Api, settings: Settings, document: Any, field: str
) -> None:
    answer = put(api, "pat", document, key="bad")

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == field
    assert [v["version"] for v in api.get("pat", "/v1/policy-data/versions").json()] == [1]
    assert len(records(settings, "policy_data.changed")) == 1  # the seed


def test_a_change_is_a_new_version_whose_audit_record_holds_before_and_after(
    api: Api, settings: Settings
) -> None:
    changed = put(api, "pat", {"limit": 100_000}, key="lower")
    replayed = put(api, "pat", {"limit": 100_000}, key="lower")
    versions = api.get("viewer", "/v1/policy-data/versions").json()

    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == changed.json()
    assert [v["version"] for v in versions] == [2, 1]
    assert api.get("viewer", "/v1/policy-data/versions/1").json()["document"] == {"limit": 200_000}
    seeded, record = records(settings, "policy_data.changed")
    assert seeded["details"]["before"] is None
    assert record["seq"] == changed.json()["audit_seq"]
    assert record["actor"]["id"] == api.id("pat")
    assert record["subject"] == {"type": "policy_data", "id": "v2"}
    assert record["details"]["version"] == 2
    assert record["details"]["before"] == {"limit": 200_000}
    assert record["details"]["after"] == {"limit": 100_000}


def wait_for_data_version(api: Api, version: int, within: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        active: dict[str, Any] = api.get("viewer", "/v1/policies").json()
        if active.get("policy_data_version") == version:
            return active
        assert time.monotonic() < deadline, f"OPA did not load policy data version {version}"
        time.sleep(0.2)


def test_decisions_after_a_change_decide_under_the_new_data_and_name_its_revision(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    """1,250.00 is within the first limit and over the second. The decision made once OPA
    reports the new bundle is denied, and its record names the new revision, which re-runs."""
    order = purchase_order(api.id("admin"))
    before = api.submit("admin", order)
    old = wait_for_data_version(api, 1)["policy_revision"]

    changed = put(api, "pat", {"limit": 100_000})
    new = wait_for_data_version(api, 2)["policy_revision"]
    after = api.submit("admin", order)

    assert before.status_code == 201, before.text
    assert changed.status_code == 200, changed.text
    assert after.status_code == 403, after.text
    assert new != old
    decided = [r for r in records_of_decisions(settings)]
    assert [(d.policy_revision, d.result.rules) for d in decided] == [
        (old, ["limit.within"]),
        (new, ["limit.over"]),
    ]
    assert all(report.status == "confirmed" for report in rerun(settings, decided, tmp_path))


def records_of_decisions(settings: Settings) -> list[Any]:
    async def run() -> list[Any]:
        async with open_storage(settings) as (db, _, _appender):
            found = [record async for record in records_between(db, 1, None)]
        return [recorded_decision(r) for r in found if json.loads(r.body).get("decision")]

    return asyncio.run(run())


def rerun(settings: Settings, decided: list[Any], workdir: Path) -> list[Any]:
    async def stored() -> dict[str, Any]:
        async with open_storage(settings) as (db, _, _appender):
            return await load_revisions(db, {d.policy_revision for d in decided})

    revisions = asyncio.run(stored())
    return Reevaluator(ensure_opa(build=False), workdir).reevaluate(decided, revisions)
