"""Fixtures: a real OPA loading ``policies/``, SQLite and a real PostgreSQL, and the service
running on them through Litestar's test client."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from order3.config import REPO_ROOT, Settings
from order3.domain.principals import Actor, PrincipalType, Scope
from order3.http.app import create_app
from order3.runtime import open_storage
from order3.workflow.access import AccessWorkflow
from support.api import Api, Workspace
from support.inventory import stock_floor
from support.servers import OpaServer, PostgresServer

POLICY_DIR = REPO_ROOT / "policies"
_database_names = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # CI provisions PostgreSQL, so there a missing server is a failure, never a skip.
    if os.environ.get("CI") or PostgresServer.available():
        return
    skip = pytest.mark.skip(reason="no PostgreSQL server binaries (apt-get install postgresql)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def opa_url() -> Iterator[str]:
    """An OPA run by the 'operator' (external mode), loading the repository's policies."""
    with OpaServer() as server:
        server.start(POLICY_DIR)
        yield server.url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def _postgres_url(request: pytest.FixtureRequest) -> str:
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"order3_test_{os.getpid()}_{next(_database_names)}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'order3.db'}"
    return _postgres_url(request)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, opa_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        opa_url=opa_url,
        policy_refresh_seconds=3600,
        expiry_sweep_seconds=3600,
    )


async def create_workspace(settings: Settings, *, floor: bool = True) -> Workspace:
    """A workspace with its admin; with ``floor``, stocked with the standard test floor
    (`stock_floor`), which drafts need: they may only name records that exist."""
    async with open_storage(settings) as (db, _, appender):
        workspace_id, admin, token = await AccessWorkflow(db, appender).create_workspace(
            "Acme Parts", "Ada"
        )
        if floor:
            actor = Actor(
                id=admin.id,
                type=PrincipalType.USER,
                roles=tuple(admin.roles),
                scopes=tuple(Scope(scope) for scope in token.scopes),
                workspace_id=workspace_id,
                token_id=token.id,
            )
            await stock_floor(appender, actor)
    assert token.secret is not None
    return Workspace(id=workspace_id, admin_id=admin.id, admin_token=token.secret)


@pytest.fixture
def workspace(settings: Settings) -> Workspace:
    return asyncio.run(create_workspace(settings))


@pytest.fixture
def client(settings: Settings, workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, workspace: Workspace) -> Api:
    """The API with a cast: an admin, managers, finance, a human buyer and an agent."""
    return Api.with_cast(client, workspace)
