"""The audit log under load and under attack: concurrent writers in one process and in two,
and a tampered database that `order3 audit verify` catches."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import create_workspace
from order3.config import Settings
from support.api import purchase_order
from support.servers import ORDER3, order3_services


def _verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ORDER3), "audit", "verify"], env=env, capture_output=True, text=True, check=False
    )


def _verified_count(env: dict[str, str]) -> int:
    verified = _verify(env)
    assert verified.returncode == 0, verified.stderr
    return int(verified.stdout.split()[1])


@pytest.fixture
def shared_env(settings: Settings) -> dict[str, str]:
    """Environment for service processes that share one database and one signing key."""
    return {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
        "ORDER3_OPA_URL": str(settings.opa_url),
        "ORDER3_LOG_LEVEL": "warning",
    }


@pytest.fixture
def two_services(shared_env: dict[str, str]) -> Iterator[list[str]]:
    with order3_services(shared_env, 2) as bases:
        yield bases


async def _submit_everywhere(bases: list[str], token: str, owner: str, count: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def submit(n: int) -> int:
            response = await client.post(
                f"{bases[n % len(bases)]}/v1/drafts",
                json=purchase_order(owner),
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{n}"},
            )
            return response.status_code

        return await asyncio.gather(*(submit(n) for n in range(count)))


def test_two_processes_share_one_unbroken_chain(
    settings: Settings, shared_env: dict[str, str], two_services: list[str]
) -> None:
    """Two service processes writing at once leave one chain: no fork, no gap, all signed."""
    workspace = asyncio.run(create_workspace(settings))
    before = _verified_count(shared_env)

    statuses = asyncio.run(
        _submit_everywhere(two_services, workspace.admin_token, workspace.admin_id, 60)
    )
    verified = _verify(shared_env)

    assert statuses == [201] * 60
    assert verified.returncode == 0, verified.stderr
    # one record per submitted draft on top of what was there (the workspace, its admin and
    # what the services wrote when they started)
    assert verified.stdout.startswith(f"OK: {before + 60} records verified")


def test_verify_names_the_first_tampered_record(tmp_path: Path, opa_url: str) -> None:
    """Editing one stored record makes `order3 audit verify` fail and name that record."""
    database = tmp_path / "order3.db"
    settings = Settings(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{database}", opa_url=opa_url
    )
    asyncio.run(create_workspace(settings, floor=False))
    asyncio.run(create_workspace(settings, floor=False))
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
    }
    assert _verify(env).returncode == 0

    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE audit_records SET body = replace(body, 'Acme Parts', 'Acme Partz') "
            "WHERE seq = 4"
        )
    tampered = _verify(env)

    assert tampered.returncode == 1
    assert "FAILED at record 4: hash does not match the body" in tampered.stderr


def test_verify_trusts_only_the_keys_it_is_given(tmp_path: Path, opa_url: str) -> None:
    """Records signed by a key the database does not list verify only when its public key
    is given (as for a log written before keys were registered)."""
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'order3.db'}",
        opa_url=opa_url,
    )
    asyncio.run(create_workspace(settings))
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
    }
    old_public = tmp_path / "old-key.pub"
    old_public.write_text(
        subprocess.run(
            [str(ORDER3), "audit", "public-key"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    env["ORDER3_SIGNING_KEY_FILE"] = str(tmp_path / "new-key.pem")
    with sqlite3.connect(tmp_path / "order3.db") as connection:
        connection.execute("DELETE FROM audit_keys")

    untrusted = _verify(env)
    trusted = subprocess.run(
        [str(ORDER3), "audit", "verify", "--public-key", str(old_public)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert untrusted.returncode == 1
    assert "FAILED at record 1: no public key with id" in untrusted.stderr
    assert trusted.returncode == 0, trusted.stderr
