"""Fail closed: with no usable policy result there is no action, and the refusal is audited."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from litestar.testing import TestClient

from conftest import create_workspace
from order3.config import Settings
from order3.http.app import create_app
from support.api import Api, Member, purchase_order
from support.servers import OpaServer, free_port

UNDEFINED = """package order3

# Defines something, but not the decision the service asks for.
version := 1
"""

MALFORMED = """package order3

decision := {"allow": "yes", "outcome": "allowed", "reasons": [], "required": []}
"""


def _opa_with(tmp_path: Path, source: str) -> Iterator[str]:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "order3.rego").write_text(source)
    with OpaServer() as server:
        server.start(policy_dir)
        yield server.url


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _client(tmp_path: Path, opa_url: str, timeout: float = 0.5) -> tuple[TestClient, Api]:
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'order3.db'}",
        opa_url=opa_url,
        opa_timeout=timeout,
        policy_refresh_seconds=3600,
    )
    workspace = asyncio.run(create_workspace(settings))
    client = TestClient(create_app(settings))
    return client, Api(
        client, workspace, {"admin": Member(workspace.admin_id, workspace.admin_token)}
    )


def _assert_refused_and_audited(api: Api, expected_failure: str) -> None:
    response = api.post("admin", "/v1/drafts", purchase_order(api.workspace.admin_id), key="k1")

    assert response.status_code == 503
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == "/problems/policy-engine-unavailable"
    assert api.get("admin", "/v1/drafts").json()["items"] == []
    [record] = api.audit(action="engine.failed")
    assert record["seq"] == problem["audit_seq"]
    assert record["record"]["outcome"] == "error"
    assert expected_failure in record["record"]["decision"]["failure"]
    assert record["record"]["decision"]["input"]["action"] == "submit"


def test_unreachable_engine_refuses(tmp_path: Path) -> None:
    """Nothing listening where OPA should be: 503, and an engine.failed record."""
    client, api = _client(tmp_path, f"http://127.0.0.1:{free_port()}")
    with client:
        _assert_refused_and_audited(api, "unreachable")


def test_engine_that_never_answers_refuses(tmp_path: Path, silent_port: int) -> None:
    """An engine that accepts and never answers times out into a refusal."""
    client, api = _client(tmp_path, f"http://127.0.0.1:{silent_port}")
    with client:
        _assert_refused_and_audited(api, "no answer within 0.5 s")


def test_undefined_decision_refuses(tmp_path: Path) -> None:
    """OPA answering 200 with no result (the decision is undefined) is no permission."""
    for opa_url in _opa_with(tmp_path, UNDEFINED):
        client, api = _client(tmp_path, opa_url)
        with client:
            _assert_refused_and_audited(api, "undefined")


def test_malformed_decision_refuses(tmp_path: Path) -> None:
    """A result that breaks the contract (allow is not a boolean) is no permission."""
    for opa_url in _opa_with(tmp_path, MALFORMED):
        client, api = _client(tmp_path, opa_url)
        with client:
            _assert_refused_and_audited(api, "malformed decision result")


def test_retry_after_a_refusal_decides_afresh(tmp_path: Path) -> None:
    """A 503 is not stored under its Idempotency-Key: the retry is decided again."""
    client, api = _client(tmp_path, f"http://127.0.0.1:{free_port()}")
    with client:
        body = purchase_order(api.workspace.admin_id)
        first = api.post("admin", "/v1/drafts", body, key="same")
        second = api.post("admin", "/v1/drafts", body, key="same")

    assert first.status_code == second.status_code == 503
    assert "idempotent-replayed" not in second.headers
    assert first.json()["audit_seq"] != second.json()["audit_seq"]


def test_a_key_still_in_flight_is_a_409(tmp_path: Path, silent_port: int) -> None:
    """While a request waits on its decision, a retry with its key is told to wait (409)."""
    client, api = _client(tmp_path, f"http://127.0.0.1:{silent_port}", timeout=3.0)
    body = purchase_order(api.workspace.admin_id)
    with client, ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(api.post, "admin", "/v1/drafts", body, key="slow")
        time.sleep(1.0)
        retry = api.post("admin", "/v1/drafts", body, key="slow")
        first_answer = first.result()
        after = api.post("admin", "/v1/drafts", body, key="slow")

    assert retry.status_code == 409
    assert "in flight" in retry.json()["detail"]
    assert first_answer.status_code == 503
    assert after.status_code == 503  # the refused first request released its key
