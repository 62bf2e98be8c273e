"""Filtered exports: part of the log, each record with its inclusion proof, verified offline;
and the same through the API under the `export` scope, as JSON Lines and as CSV."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from order3.audit.checkpoints import Checkpoint, sign_checkpoint
from order3.audit.export import checkpoint_line, verify_export
from order3.audit.merkle import MerkleTree, leaf_hash
from order3.audit.records import GENESIS_HASH, AuditEntry, ChainHead, seal
from order3.audit.signing import SigningKey
from order3.config import Settings
from support.api import Api
from test_export import run

ORIGIN = "example.test/audit"
KEY = SigningKey(Ed25519PrivateKey.generate())
KEYS = {KEY.key_id: KEY.public_key}


def _filtered_export(size: int, chosen: list[int]) -> list[bytes]:
    """The lines of an export of records ``chosen`` (1-based) out of a log of ``size``."""
    entries = [
        AuditEntry(
            workspace_id="w",
            actor={"id": "a", "type": "user"},
            action=f"a.{n}",
            subject={"type": "draft", "id": "d"},
        )
        for n in range(size)
    ]
    records = list(seal(entries, ChainHead(0, GENESIS_HASH), KEY))
    tree = MerkleTree()
    tree.extend(leaf_hash(r.canonical) for r in records)
    root = tree.root(size)
    checkpoint = Checkpoint(
        origin=ORIGIN,
        tree_size=size,
        root_hash=root,
        note=sign_checkpoint(ORIGIN, size, root, KEY),
        key_id=KEY.key_id,
        created_at="2026-12-03T00:00:00.000000Z",
    )
    lines = [checkpoint_line(checkpoint)]
    for seq in chosen:
        record = records[seq - 1]
        line = {
            "type": "record",
            "seq": seq,
            "body": record.canonical.decode(),
            "hash": record.hash,
            "signature": record.signature,
            "key_id": record.key_id,
            "proof": [base64.b64encode(n).decode() for n in tree.inclusion_proof(seq - 1, size)],
        }
        lines.append(json.dumps(line).encode() + b"\n")
    return lines


logs = st.integers(1, 40).flatmap(
    lambda size: st.tuples(
        st.just(size),
        st.lists(st.integers(1, size), min_size=1, unique=True).map(sorted),
    )
)


@settings(max_examples=60, deadline=None)
@given(log=logs, data=st.data())
def test_every_edit_to_a_filtered_export_is_named(
    log: tuple[int, list[int]], data: st.DataObject
) -> None:
    size, chosen = log
    lines = _filtered_export(size, chosen)
    assert verify_export(lines, KEYS, KEY.public_key).ok

    victim = data.draw(st.integers(1, len(chosen)))
    line = json.loads(lines[victim])
    edit = data.draw(st.sampled_from(["body", "proof", "seq", "drop_proof_node", "swap"]))
    if edit == "body":
        line["body"] = line["body"].replace('"action":"a.', '"action":"b.')
    elif edit == "proof":
        if not line["proof"]:
            return  # a log of one record has an empty proof
        line["proof"][0] = base64.b64encode(b"\x00" * 32).decode()
    elif edit == "drop_proof_node":
        if not line["proof"]:
            return
        line["proof"].pop()
    elif edit == "seq":
        line["seq"] = line["seq"] % size + 1
        if line["seq"] in chosen:
            return  # would also be out of order; covered by "swap"
    else:
        if len(chosen) < 2:
            return
        other = victim + 1 if victim < len(chosen) else victim - 1
        lines[victim], lines[other] = lines[other], lines[victim]
        report = verify_export(lines, KEYS, KEY.public_key)
        assert report.failure is not None  # the smaller of the two now follows the larger
        assert report.failure.seq == chosen[min(victim, other) - 1]
        assert "out of order" in report.failure.reason
        return
    lines[victim] = json.dumps(line).encode() + b"\n"

    report = verify_export(lines, KEYS, KEY.public_key)

    assert not report.ok
    assert report.failure is not None
    assert report.failure.seq == line["seq"]


def test_a_filtered_export_with_a_missing_proof_fails() -> None:
    lines = _filtered_export(8, [2, 5])
    line = json.loads(lines[2])
    del line["proof"]
    lines[2] = json.dumps(line).encode()

    report = verify_export(lines, KEYS, KEY.public_key)

    assert report.failure is not None
    assert report.failure.seq == 5
    assert "no inclusion proof" in report.failure.reason


def test_the_cli_exports_one_rule_with_proofs(api: Api, settings: Settings, tmp_path: Path) -> None:
    for _ in range(3):
        draft = api.submitted("bot")
        assert api.approve("rogue", draft, "manager").status_code == 403
    api.approve("mia", draft, "manager")
    export, key = tmp_path / "refusals.jsonl", tmp_path / "log.pub"
    key.write_text(run(settings, "public-key").stdout)

    exported = run(settings, "export", "-o", str(export), "--rule", "duties.agent_cannot_approve")
    verified = run(settings, "verify", str(export), "--public-key", str(key))

    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in export.read_text().splitlines()]
    bodies = [json.loads(r["body"]) for r in records if r["type"] == "record"]
    assert [b["actor"]["id"] for b in bodies] == [api.id("rogue")] * 3
    assert all("proof" in r for r in records if r["type"] == "record")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: 3 records verified")


@pytest.fixture
def auditor(api: Api) -> Api:
    api.members["ivy"] = api.add_member("ivy", "user", ["auditor"])
    return api


def test_the_api_exports_a_workspace_that_verifies_offline(
    auditor: Api, settings: Settings, tmp_path: Path
) -> None:
    api = auditor
    draft = api.submitted("bot")
    api.approve("mia", draft, "manager")

    response = api.get("ivy", "/v1/audit/export", draft=draft)
    refused = api.get("viewer", "/v1/audit/export")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    export, key = tmp_path / "draft.jsonl", tmp_path / "log.pub"
    export.write_bytes(response.content)
    key.write_text(run(settings, "public-key").stdout)
    verified = run(settings, "verify", str(export), "--public-key", str(key))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: 2 records verified")
    assert refused.status_code == 403
    assert "export" in refused.json()["detail"]


def test_the_api_exports_csv_for_spreadsheets(auditor: Api) -> None:
    api = auditor
    draft = api.submitted("bot")
    assert api.approve("rogue", draft, "manager").status_code == 403

    response = api.get("ivy", "/v1/audit/export", format="csv", draft=draft)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["action"] for row in rows] == ["draft.submitted", "decision.refused"]
    assert rows[1]["rules"] == "duties.agent_cannot_approve"
    assert rows[1]["actor_type"] == "agent"
    assert json.loads(rows[1]["body"])["seq"] == int(rows[1]["seq"])


def test_an_unknown_export_format_is_named(auditor: Api) -> None:
    response = auditor.get("ivy", "/v1/audit/export", format="xlsx")

    assert response.status_code == 400
    assert "format" in response.text
