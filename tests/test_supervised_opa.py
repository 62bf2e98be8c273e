"""The single-machine default: the service runs its own OPA and restarts it if it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.http.app import create_app
from order3.policy.supervisor import OPA_GOGC
from support.api import Api, Member, purchase_order


def test_killed_opa_is_restarted_and_decisions_resume(tmp_path: Path) -> None:
    """After its OPA is killed the service refuses at most briefly, then decides again."""
    settings = Settings(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'order3.db'}"
    )
    workspace = asyncio.run(create_workspace(settings))

    with TestClient(create_app(settings)) as client:
        api = Api(client, workspace, {"admin": Member(workspace.admin_id, workspace.admin_token)})
        supervisor = client.app.state.services.supervisor
        first_pid = supervisor.pid
        before = api.post("admin", "/v1/drafts", purchase_order(workspace.admin_id), key="a")

        os.kill(first_pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        # A restart counts once the new OPA answers healthy; its pid shows before that.
        while client.get("/healthz").status_code != 200 or supervisor.restarts < 1:
            assert time.monotonic() < deadline, "the supervised OPA did not come back"
            time.sleep(0.1)
        second_pid = supervisor.pid
        after = api.post("admin", "/v1/drafts", purchase_order(workspace.admin_id), key="b")

    assert before.status_code == after.status_code == 201
    assert supervisor.restarts == 1
    assert second_pid not in (None, first_pid)
    assert client.app.state.services.policy.url.endswith(f":{supervisor.port}")


def test_supervised_opa_runs_with_the_tuned_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supervised OPA collects garbage less often than Go's default, unless the operator
    chose GOGC themselves."""

    def collector_target(environment: dict[str, str]) -> str:
        monkeypatch.delenv("GOGC", raising=False)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        settings = Settings(
            data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'order3.db'}"
        )
        with TestClient(create_app(settings)) as client:
            pid = client.app.state.services.supervisor.pid
            variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return dict(v.decode().split("=", 1) for v in variables if b"=" in v)["GOGC"]

    assert collector_target({}) == OPA_GOGC
    assert collector_target({"GOGC": "150"}) == "150"
