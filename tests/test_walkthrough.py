"""The README walkthrough, run as written against a live service: on SQLite and PostgreSQL,
with the OPA the service supervises and with an OPA run beside it (a sidecar)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from order3.config import REPO_ROOT
from support.servers import ORDER3, order3_services


def walkthrough_script() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- walkthrough:start -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->", readme, re.S
    )
    assert match, "README.md lost its walkthrough block"
    return match.group(1)


@pytest.fixture
def service_env(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    database, opa_mode = request.param
    env = {**os.environ, "ORDER3_DATA_DIR": str(tmp_path / "var"), "ORDER3_LOG_LEVEL": "warning"}
    if database == "postgresql":
        env["ORDER3_DATABASE_URL"] = request.getfixturevalue("postgres").create_database(
            f"walkthrough_{tmp_path.name.replace('-', '_').lower()}"[:60]
        )
    if opa_mode == "sidecar":
        env["ORDER3_OPA_URL"] = request.getfixturevalue("opa_url")
    return env


@pytest.fixture
def running_service(service_env: dict[str, str]) -> Iterator[str]:
    with order3_services(service_env) as [base]:
        yield base


@pytest.mark.parametrize(
    "service_env",
    [
        ("sqlite", "supervised"),
        ("sqlite", "sidecar"),
        pytest.param(("postgresql", "supervised"), marks=pytest.mark.postgres),
        pytest.param(("postgresql", "sidecar"), marks=pytest.mark.postgres),
    ],
    indirect=True,
    ids=["sqlite-supervised", "sqlite-sidecar", "postgresql-supervised", "postgresql-sidecar"],
)
def test_readme_walkthrough(running_service: str, service_env: dict[str, str]) -> None:
    """The walkthrough refuses the agent and the requester, approves, executes, verifies."""
    if not (shutil.which("jq") and shutil.which("curl")) and not os.environ.get("CI"):
        pytest.skip("the walkthrough needs curl and jq")
    created = subprocess.run(
        [str(ORDER3), "workspace", "create", "Acme Parts", "--admin", "Ada"],
        env=service_env,
        capture_output=True,
        text=True,
        check=True,
    )
    admin_token = re.search(r"^token:\s+(\S+)$", created.stdout, re.M)
    assert admin_token, created.stdout

    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough_script()],
        env={
            **service_env,
            "O3": running_service,
            "ADMIN": admin_token.group(1),
            "PATH": f"{ORDER3.parent}{os.pathsep}{service_env['PATH']}",
        },
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[:5] == [
        '{"state":"pending","required":[{"role":"manager","count":1}]}',
        '{"status":403,"rules":["duties.agent_cannot_approve","duties.requester_cannot_approve"]}',
        '{"status":403,"rules":["duties.requester_cannot_approve"]}',
        '{"state":"approved","rules":["approval.counted"]}',
        '{"state":"executed","rules":["execution.approvals_complete"]}',
    ]
    trail = [line.split(" ", 1)[1] for line in lines[5:-1]]
    assert trail == [
        "draft.submitted allowed by agent",
        "decision.refused denied by agent",
        "approval.decided allowed by user",
        "draft.executed allowed by user",
    ]
    assert re.fullmatch(r"OK: \d+ records verified; head sha256:[0-9a-f]{64}", lines[-1])
