"""Rotating the signing key: every key that signed stays published with its window, and
records and checkpoints from before a rotation verify under the key that signed them."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from order3.audit.checkpoints import open_checkpoint, sign_checkpoint
from order3.audit.signing import SigningKey, load_public_key
from order3.config import Settings
from order3.http.app import create_app
from order3.runtime import open_storage
from order3.storage.database import create_engine
from order3.storage.schema import audit_keys, audit_records
from order3.workflow.audit_keys import KeyRetired
from support.api import Api, Workspace
from support.servers import ORDER3

ORIGIN = "order3-approvals/audit"


def order3(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
    }
    if settings.signing_key_file is not None:
        env["ORDER3_SIGNING_KEY_FILE"] = str(settings.signing_key_file)
    return subprocess.run(
        [str(ORDER3), *args], env=env, capture_output=True, text=True, check=False
    )


def rotated(settings: Settings, tmp_path: Path, name: str = "next.pem") -> Settings:
    """``settings`` pointed at a key file written by ``order3 audit new-key``."""
    path = tmp_path / name
    written = order3(settings, "audit", "new-key", str(path))
    assert written.returncode == 0, written.stderr
    return msgspec.structs.replace(settings, signing_key_file=path)


def test_a_log_signed_by_two_keys_verifies_with_both(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    """After a restart with a new key, the database and an export verify across the rotation,
    and an export checked with the new key alone fails at the first record of the old one."""
    with TestClient(create_app(settings)) as client:
        api = Api.with_cast(client, workspace)
        api.submitted()
        old_note = api.post("admin", "/v1/audit/checkpoints").json()["note"]
        old_key_id = client.get("/healthz").json()["audit_key_id"]
    new_settings = rotated(settings, tmp_path)
    with TestClient(create_app(new_settings)) as client:
        api.client = client
        api.submitted()
        keys = api.get("viewer", "/v1/audit/keys").json()["items"]
        new_key_id = client.get("/healthz").json()["audit_key_id"]
    export, old_pem, new_pem = tmp_path / "log.jsonl", tmp_path / "old.pem", tmp_path / "new.pem"
    old_pem.write_text(keys[0]["public_key"])
    new_pem.write_text(keys[1]["public_key"])

    database = order3(new_settings, "audit", "verify")
    exported = order3(new_settings, "audit", "export", "-o", str(export))
    both = order3(
        new_settings, "audit", "verify", str(export), "--public-key", str(old_pem),
        "--public-key", str(new_pem),
    )  # fmt: skip
    new_only = order3(new_settings, "audit", "verify", str(export), "--public-key", str(new_pem))

    assert [k["key_id"] for k in keys] == [old_key_id, new_key_id]
    assert keys[0]["retired_at"] == keys[1]["activated_at"] is not None
    assert keys[1]["retired_at"] is None
    assert keys[0]["activated_at"] < keys[0]["retired_at"]
    assert database.returncode == 0, database.stderr
    assert exported.returncode == 0, exported.stderr
    assert both.returncode == 0, both.stderr
    assert new_only.returncode == 1
    assert f"FAILED at record 1: no public key with id {old_key_id}" in new_only.stderr
    old_public = load_public_key(keys[0]["public_key"].encode())
    new_public = load_public_key(keys[1]["public_key"].encode())
    assert open_checkpoint(old_note, ORIGIN, [new_public, old_public])[0] > 0
    with pytest.raises(ValueError, match="no signature by the log's key"):
        open_checkpoint(old_note, ORIGIN, new_public)
    activations = [
        body
        for line in export.read_text().splitlines()
        if json.loads(line)["type"] == "record"
        and (body := json.loads(json.loads(line)["body"]))["action"] == "audit.key_activated"
    ]
    assert len(activations) == 1
    assert activations[0]["key_id"] == new_key_id
    assert activations[0]["actor"] == {"id": "system", "type": "system"}
    assert activations[0]["subject"] == {"type": "audit_key", "id": new_key_id}
    assert activations[0]["details"] == {
        "public_key": keys[1]["public_key"],
        "previous_key_id": old_key_id,
    }


def test_processes_starting_together_register_a_new_key_once(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    """Two processes starting at once with the same new key add one row and one record."""
    new_settings = rotated(settings, tmp_path)

    async def start() -> None:
        async with open_storage(new_settings):
            pass

    async def race() -> tuple[list[str | None], int]:
        await asyncio.gather(start(), start(), start())
        db = create_engine(str(settings.database_url))
        try:
            async with db.connect() as connection:
                windows = (
                    await connection.execute(
                        sa.select(audit_keys.c.retired_at).order_by(audit_keys.c.activated_at)
                    )
                ).scalars()
                activations = await connection.execute(
                    sa.select(sa.func.count()).where(
                        audit_records.c.action == "audit.key_activated"
                    )
                )
                return list(windows), activations.scalar_one()
        finally:
            await db.dispose()

    windows, activations = asyncio.run(race())

    assert len(windows) == 2
    assert windows[0] is not None
    assert windows[1] is None
    assert activations == 1


def test_a_retired_key_is_not_taken_back(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    """Starting again with a key that was rotated out is refused, naming the key."""
    asyncio.run(_open(rotated(settings, tmp_path)))
    old = SigningKey.load_or_create(settings.resolved_signing_key_file)

    with pytest.raises(KeyRetired, match=old.key_id):
        asyncio.run(_open(settings))


async def _open(settings: Settings) -> None:
    async with open_storage(settings):
        pass


def test_new_key_writes_an_owner_only_file_and_never_overwrites(tmp_path: Path) -> None:
    """``order3 audit new-key`` prints the key id, and refuses an existing path."""
    settings = Settings(data_dir=tmp_path / "var")
    path = tmp_path / "keys" / "signing.pem"

    first = order3(settings, "audit", "new-key", str(path))
    contents = path.read_bytes()
    second = order3(settings, "audit", "new-key", str(path))

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == SigningKey.from_pem(contents).key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert second.returncode != 0
    assert "never overwritten" in second.stderr
    assert path.read_bytes() == contents


_seeds = st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=4, unique=True)


@given(
    seeds=_seeds,
    signer=st.integers(min_value=0, max_value=3),
    size=st.integers(min_value=1, max_value=2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_a_checkpoint_verifies_under_the_key_that_signed_it_and_no_other(
    seeds: list[bytes], signer: int, size: int, root: bytes
) -> None:
    """A checkpoint signed before a rotation verifies against its published key, alone or
    among the log's others, and against no other key."""
    keys = [SigningKey(Ed25519PrivateKey.from_private_bytes(seed)) for seed in seeds]
    signing = keys[signer % len(keys)]
    published = [load_public_key(key.public_pem().encode()) for key in keys]
    own = published[keys.index(signing)]
    others = [key for key in published if key is not own]

    note = sign_checkpoint(ORIGIN, size, root, signing)

    assert open_checkpoint(note, ORIGIN, own) == (size, root)
    assert open_checkpoint(note, ORIGIN, published) == (size, root)
    with pytest.raises(ValueError, match="no signature by the log's key"):
        open_checkpoint(note, ORIGIN, others)
