"""Two service processes appending and signing checkpoints at once build one Merkle tree:
every checkpoint either signed is a prefix of the final log, proven offline."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx

from conftest import create_workspace
from order3.config import Settings
from support.api import purchase_order
from support.servers import ORDER3, order3_services


async def _write_and_sign(bases: list[str], token: str, owner: str, drafts: int) -> list[str]:
    """Submit ``drafts`` drafts across both processes, each process signing a checkpoint
    after every fifth; return the checkpoint notes they signed."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:

        async def one(n: int) -> str | None:
            base = bases[n % len(bases)]
            submitted = await client.post(
                f"{base}/v1/drafts",
                json=purchase_order(owner),
                headers={"Idempotency-Key": f"t{n}"},
            )
            assert submitted.status_code == 201, submitted.text
            if n % 5:
                return None
            signed = await client.post(f"{base}/v1/audit/checkpoints")
            assert signed.status_code == 201, signed.text
            note: str = signed.json()["note"]
            return note

        notes = await asyncio.gather(*(one(n) for n in range(drafts)))
    return [note for note in notes if note is not None]


def test_two_writers_build_one_tree(settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
        "ORDER3_OPA_URL": str(settings.opa_url),
        "ORDER3_LOG_LEVEL": "warning",
    }
    workspace = asyncio.run(create_workspace(settings))
    with order3_services(env, 2) as bases:
        notes = asyncio.run(_write_and_sign(bases, workspace.admin_token, workspace.admin_id, 40))

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ORDER3), "audit", *args], env=env, capture_output=True, text=True, check=False
        )

    export, key = tmp_path / "log.jsonl", tmp_path / "log.pub"
    key.write_text(audit("public-key").stdout)
    assert audit("export", "-o", str(export)).returncode == 0
    assert len(notes) == 8
    for n, note in enumerate(notes):
        earlier = tmp_path / f"checkpoint-{n}.txt"
        earlier.write_text(note)
        verified = audit(
            "verify", str(export), "--public-key", str(key), "--earlier-checkpoint", str(earlier)
        )
        assert verified.returncode == 0, (note, verified.stderr)
