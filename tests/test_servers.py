"""The test servers and the OPA supervisor, against real OPA and PostgreSQL processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from order3.policy.binary import OpaUnavailable, default_tools_dir, ensure_opa
from order3.policy.supervisor import OpaStartError, OpaSupervisor
from support.servers import OpaServer, PostgresServer, libpq_url

POLICY = """package demo

default allow := false

allow if input.x == 1
"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "demo.rego").write_text(POLICY)
    return directory


@pytest.fixture
def opa_binary() -> Path:
    return ensure_opa(build=False)


async def _decide(base_url: str, x: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
        response = await client.post("/v1/data/demo/allow", json={"input": {"x": x}})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _mentions(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


async def _wait_for_restart(supervisor: OpaSupervisor, count: int, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while supervisor.restarts < count:
        assert loop.time() < deadline, "OPA was not restarted in time"
        await asyncio.sleep(0.05)


def test_supervisor_restarts_killed_opa_on_same_port(
    opa_binary: Path, policy_dir: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        supervisor = OpaSupervisor(opa_binary, policy_dir, log_path=tmp_path / "opa.log")
        await supervisor.start()
        try:
            first = await _decide(supervisor.url, 1)
            assert first["result"] is True
            assert first["decision_id"]
            old_pid, port = supervisor.pid, supervisor.port
            assert old_pid is not None

            os.kill(old_pid, signal.SIGKILL)
            await _wait_for_restart(supervisor, 1, within=15.0)

            assert supervisor.pid not in (None, old_pid)
            assert supervisor.port == port
            assert supervisor.url == f"http://127.0.0.1:{port}"
            second = await _decide(supervisor.url, 2)
            assert second["result"] is False
            assert second["decision_id"] not in ("", first["decision_id"])
        finally:
            await supervisor.stop()
        assert supervisor.pid is None
        await supervisor.stop()

    asyncio.run(scenario())


def test_supervisor_keeps_opa_log_bounded(
    opa_binary: Path, policy_dir: Path, tmp_path: Path
) -> None:
    """Past its limit OPA's decision log moves to ``opa.log.1``, and OPA goes on writing
    whole lines to the emptied ``opa.log``."""
    log_path, rotated = tmp_path / "opa.log", tmp_path / "opa.log.1"

    async def logged(decision_id: str, path: Path) -> None:
        deadline = asyncio.get_running_loop().time() + 10.0
        while not _mentions(path, decision_id):
            assert asyncio.get_running_loop().time() < deadline, f"{decision_id} not in {path}"
            await asyncio.sleep(0.02)

    async def scenario() -> tuple[str, str]:
        supervisor = OpaSupervisor(
            opa_binary, policy_dir, log_path=log_path, log_limit=4096, log_check_interval=0.05
        )
        await supervisor.start()
        try:
            first = (await _decide(supervisor.url, 1))["decision_id"]
            await logged(first, log_path)
            deadline = asyncio.get_running_loop().time() + 15.0
            while not _mentions(rotated, ""):
                assert asyncio.get_running_loop().time() < deadline, "opa.log was not rotated"
                await _decide(supervisor.url, 2)
            last = (await _decide(supervisor.url, 1))["decision_id"]
            await logged(last, log_path)
        finally:
            await supervisor.stop()
        return first, last

    first, last = asyncio.run(scenario())

    assert first in rotated.read_text()
    assert first not in log_path.read_text()
    lines = log_path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert any(json.loads(line).get("decision_id") == last for line in lines)


def test_supervisor_start_reports_opa_output_when_policy_is_broken(
    opa_binary: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.rego").write_text("package bad\n\nallow if {\n")
    supervisor = OpaSupervisor(opa_binary, tmp_path)

    with pytest.raises(OpaStartError, match="rego_parse_error"):
        asyncio.run(supervisor.start(timeout=10.0))
    assert supervisor.pid is None


def test_ensure_opa_finds_the_tools_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ORDER3_OPA_BINARY", raising=False)
    monkeypatch.delenv("ORDER3_TOOLS_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert ensure_opa(build=False) == default_tools_dir() / "opa"
    assert default_tools_dir() == Path(__file__).resolve().parents[1] / ".tools" / "bin"


def test_ensure_opa_explains_how_to_get_opa(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ORDER3_OPA_BINARY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(OpaUnavailable) as raised:
        ensure_opa(tmp_path / "empty", build=True)
    message = str(raised.value)
    assert "install Go" in message
    assert "ORDER3_OPA_BINARY" in message
    assert "on PATH" in message


def test_operator_run_opa_answers_with_decision_ids(policy_dir: Path) -> None:
    with OpaServer() as opa:
        opa.start(policy_dir)
        decision = asyncio.run(_decide(opa.url, 1))
    assert decision["result"] is True
    assert decision["decision_id"]
    assert opa.pid is None


@pytest.mark.postgres
def test_postgres_server_creates_a_database_that_answers() -> None:
    if not PostgresServer.available() and os.environ.get("CI") != "true":
        pytest.skip("no PostgreSQL binaries and ORDER3_TEST_POSTGRES_URL unset")
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database("order3_servers_test")
        assert url.startswith("postgresql+psycopg://")
        assert url.endswith("/order3_servers_test")
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("select current_database()").fetchone() == ("order3_servers_test",)
    finally:
        server.stop()
    server.stop()
