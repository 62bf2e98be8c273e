"""docs/audit-format.md, followed step by step by a verifier written only from the document,
against records the service really wrote. If the document and the code disagree, this fails."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.config import Settings
from support.api import Api

ORDER3 = Path(sys.executable).parent / "order3"
GENESIS = "sha256:" + "0" * 64
BODY_MEMBERS = {
    "format",
    "seq",
    "recorded_at",
    "workspace_id",
    "actor",
    "action",
    "subject",
    "outcome",
    "decision",
    "details",
    "prev_hash",
    "key_id",
}


def public_key(settings: Settings) -> Ed25519PublicKey:
    env = {"ORDER3_DATA_DIR": str(settings.data_dir), "PATH": ""}
    pem = subprocess.run(
        [str(ORDER3), "audit", "public-key"], env=env, check=True, capture_output=True
    ).stdout
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    return key


def exported_records(settings: Settings, path: Path) -> list[dict[str, Any]]:
    """The record lines of a whole-log export (section 7), every workspace's and the
    service's own."""
    env = {
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
        "PATH": "",
    }
    subprocess.run(
        [str(ORDER3), "audit", "export", "-o", str(path)], env=env, check=True, capture_output=True
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["type"] == "record"]


def check(
    item: dict[str, Any], expected_seq: int, prev_hash: str, key: Ed25519PublicKey, key_id: str
) -> str:
    body = json.loads(item["body"])
    encoded = rfc8785.dumps(body)  # section 2, step 1
    assert encoded == item["body"].encode()

    assert set(body) == BODY_MEMBERS  # section 1
    assert body["format"] == 1
    assert body["seq"] == expected_seq  # section 5, step 2
    assert body["prev_hash"] == prev_hash  # section 5, step 3
    assert item["hash"] == "sha256:" + hashlib.sha256(encoded).hexdigest()  # step 4
    assert body["key_id"] == item["key_id"] == key_id  # step 5
    raw = base64.b64decode(item["signature"], validate=True)  # section 3
    assert base64.b64encode(raw).decode() == item["signature"]
    key.verify(raw, b"order3.audit.record.v1\n" + item["hash"].encode("ascii"))
    return str(item["hash"])


def test_records_verify_by_the_document_alone(api: Api, settings: Settings, tmp_path: Path) -> None:
    """Every record the service wrote verifies by the steps the document gives."""
    draft_id = api.submitted()
    api.approve("rogue", draft_id, "manager")
    api.approve("mia", draft_id, "manager")
    api.post("mia", f"/v1/drafts/{draft_id}/execute")
    key = public_key(settings)
    raw_key = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(raw_key).hexdigest()[:16]  # section 3, step 3

    records = exported_records(settings, tmp_path / "log.jsonl")
    prev_hash = GENESIS
    for seq, item in enumerate(records, start=1):
        prev_hash = check(item, seq, prev_hash, key, key_id)

    bodies = [json.loads(item["body"]) for item in records]
    actions = {body["action"] for body in bodies}
    assert {
        "workspace.created",
        "token.created",
        "draft.submitted",
        "decision.refused",
        "approval.decided",
        "draft.executed",
        "policy_data.changed",
    } <= actions
    decided = next(body for body in bodies if body["action"] == "approval.decided")
    assert set(decided["decision"]) == {
        "id",
        "input",
        "result",
        "rules",
        "engine",
        "policy_revision",
        "decision_id",
    }
    assert json.dumps(records).count("o3_") == 0  # no token value anywhere in the log
