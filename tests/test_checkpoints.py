"""Signed checkpoints and proofs: a client holding an old checkpoint can prove the log only
grew, and can tell when a record it was shown is no longer in it unchanged."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import create_workspace
from order3.audit.merkle import verify_consistency, verify_inclusion
from order3.config import Settings
from support.api import Api
from support.servers import ORDER3

ORIGIN = "order3-approvals/audit"


def public_key(settings: Settings) -> Ed25519PublicKey:
    env = {"ORDER3_DATA_DIR": str(settings.data_dir), "PATH": ""}
    pem = subprocess.run(
        [str(ORDER3), "audit", "public-key"], env=env, check=True, capture_output=True
    ).stdout
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    return key


def read_note(note: str, key: Ed25519PublicKey) -> tuple[int, bytes]:
    """Verify a checkpoint by the C2SP signed-note and tlog-checkpoint texts alone."""
    text, signatures = note.split("\n\n")
    text += "\n"
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    [line] = signatures.splitlines()
    dash, name, encoded = line.split(" ")
    signature = base64.b64decode(encoded)

    assert (dash, name) == ("\u2014", ORIGIN)
    assert signature[:4] == key_id
    key.verify(signature[4:], text.encode())
    origin, size, root = text.splitlines()
    assert origin == ORIGIN
    return int(size), base64.b64decode(root)


def test_a_checkpoint_is_a_signed_note_and_proves_every_record(
    api: Api, settings: Settings
) -> None:
    """Each of the workspace's records is proved included under the signed root, which
    covers the whole log (the service's own records too) up to the workspace's last one."""
    api.submitted()
    seqs = [item["seq"] for item in api.audit(limit=500)]

    signed = api.post("admin", "/v1/audit/checkpoints")
    size, root = read_note(signed.json()["note"], public_key(settings))
    latest = api.get("admin", "/v1/audit/checkpoint").json()
    proofs = [api.get("admin", f"/v1/audit/records/{seq}/proof", size=size).json() for seq in seqs]

    assert signed.status_code == 201
    assert latest == signed.json()
    assert size == latest["tree_size"] == seqs[-1]
    for proof in proofs:
        leaf = base64.b64decode(proof["leaf_hash"])
        path = [base64.b64decode(node) for node in proof["proof"]]
        assert verify_inclusion(leaf, proof["leaf_index"], size, path, root)


def test_an_old_checkpoint_is_consistent_with_a_newer_one(api: Api, settings: Settings) -> None:
    """After the log grows, a consistency proof links the two signed roots."""
    key = public_key(settings)
    old_size, old_root = read_note(api.post("admin", "/v1/audit/checkpoints").json()["note"], key)
    api.submitted()
    new_size, new_root = read_note(api.post("admin", "/v1/audit/checkpoints").json()["note"], key)

    answer = api.get("admin", "/v1/audit/consistency", **{"from": old_size, "to": new_size})

    proof = [base64.b64decode(node) for node in answer.json()["proof"]]
    assert new_size > old_size
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)


def test_a_rewritten_record_breaks_consistency_with_an_earlier_checkpoint(
    tmp_path: Path, opa_url: str
) -> None:
    """Editing a stored record changes the roots, so the old checkpoint no longer links.

    The service is restarted after the edit: a running process keeps the leaf hashes it has
    read, so only a process that reads the log afresh sees the rewritten record.
    """
    from litestar.testing import TestClient

    from order3.http.app import create_app

    database = tmp_path / "order3.db"
    settings = Settings(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{database}", opa_url=opa_url
    )
    workspace = asyncio.run(create_workspace(settings))
    with TestClient(create_app(settings)) as client:
        api = Api.with_cast(client, workspace)
        key = public_key(settings)
        old_size, old_root = read_note(
            api.post("admin", "/v1/audit/checkpoints").json()["note"], key
        )
        with sqlite3.connect(database) as connection:
            connection.execute(
                "UPDATE audit_records SET body = replace(body, 'Acme Parts', 'Acme Partz') "
                "WHERE seq = 1"
            )
    with TestClient(create_app(settings)) as client:
        api.client = client
        api.submitted()
        new_size, new_root = read_note(
            api.post("admin", "/v1/audit/checkpoints").json()["note"], key
        )
        answer = api.get("admin", "/v1/audit/consistency", **{"from": old_size, "to": new_size})

    proof = [base64.b64decode(node) for node in answer.json()["proof"]]
    assert not verify_consistency(old_size, new_size, old_root, new_root, proof)


def test_proofs_stay_within_the_workspace_and_the_log(api: Api, settings: Settings) -> None:
    """Another workspace's record is not found; sizes outside the log are named as bad input."""
    other = Api.with_cast(api.client, asyncio.run(create_workspace(settings)))
    own_seq = other.audit()[0]["seq"]

    assert api.get("admin", f"/v1/audit/records/{own_seq}/proof").status_code == 404
    beyond = other.get("admin", f"/v1/audit/records/{own_seq}/proof", size=10_000)
    assert beyond.status_code == 422
    assert beyond.json()["errors"][0]["field"] == "size"
    backwards = api.get("admin", "/v1/audit/consistency", **{"from": 5, "to": 2})
    assert backwards.status_code == 422
    assert api.get("viewer", "/v1/audit/checkpoint").status_code in (200, 404)
    assert api.post("viewer", "/v1/audit/checkpoints").status_code == 403


@pytest.mark.parametrize("missing", ["from", "to"])
def test_consistency_needs_both_sizes(api: Api, missing: str) -> None:
    """Leaving out a size is a 400 naming it."""
    params = {"from": 1, "to": 2}
    del params[missing]

    response = api.get("admin", "/v1/audit/consistency", **params)

    assert response.status_code == 400
    assert f"'{missing}'" in response.json()["detail"]
