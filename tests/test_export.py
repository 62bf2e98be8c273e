"""Exports verify offline, against their signed checkpoint and an earlier one, with nothing
but the file and the public key."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from order3.audit.checkpoints import Checkpoint, sign_checkpoint
from order3.audit.export import checkpoint_line, record_line, verify_export
from order3.audit.merkle import leaf_hash, root_hash
from order3.audit.records import GENESIS_HASH, AuditEntry, ChainHead, seal
from order3.audit.signing import SigningKey
from order3.audit.verify import StoredRecord
from order3.config import Settings
from support.api import Api
from support.servers import ORDER3

ORIGIN = "example.test/audit"


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
    }
    return subprocess.run(
        [str(ORDER3), "audit", *args], env=env, capture_output=True, text=True, check=False
    )


def test_an_export_verifies_offline_and_a_changed_line_fails(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    """The exported log verifies with only the file and the key; one edit is named."""
    draft_id = api.submitted()
    api.approve("mia", draft_id, "manager")
    export, key = tmp_path / "log.jsonl", tmp_path / "log.pub"
    key.write_text(run(settings, "public-key").stdout)

    exported = run(settings, "export", "-o", str(export))
    verified = run(settings, "verify", str(export), "--public-key", str(key))
    lines = export.read_text().splitlines()
    fifth = next(i for i, line in enumerate(lines) if line.startswith('{"type":"record","seq":5,'))
    lines[fifth] = lines[fifth].replace('\\"action\\":\\"', '\\"action\\":\\"forged.')
    assert "forged." in lines[fifth]
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    refused = run(settings, "verify", str(tampered), "--public-key", str(key))

    assert exported.returncode == 0, exported.stderr
    assert verified.returncode == 0, verified.stderr
    records = sum(line.startswith('{"type":"record"') for line in lines)
    assert verified.stdout.startswith(f"OK: {records} records verified against the signed")
    assert refused.returncode == 1
    assert "FAILED at record 5" in refused.stderr


def _log(
    key: SigningKey, actions: list[str], after: list[StoredRecord] | None = None
) -> list[StoredRecord]:
    """Records for ``actions``, sealed after ``after`` (or from the start)."""
    before = after or []
    head = ChainHead(before[-1].seq, before[-1].hash) if before else ChainHead(0, GENESIS_HASH)
    entries = [
        AuditEntry(
            workspace_id="w",
            actor={"id": "a", "type": "user"},
            action=action,
            subject={"type": "draft", "id": "d"},
        )
        for action in actions
    ]
    sealed = seal(entries, head, key)
    return before + [
        StoredRecord(
            seq=r.seq,
            body=r.canonical.decode(),
            hash=r.hash,
            signature=r.signature,
            key_id=r.key_id,
        )
        for r in sealed
    ]


def _export(records: list[StoredRecord], key: SigningKey) -> list[bytes]:
    root = root_hash([leaf_hash(r.body.encode()) for r in records])
    checkpoint = Checkpoint(
        origin=ORIGIN,
        tree_size=len(records),
        root_hash=root,
        note=sign_checkpoint(ORIGIN, len(records), root, key),
        key_id=key.key_id,
        created_at="2026-12-03T00:00:00.000000Z",
    )
    return [checkpoint_line(checkpoint), *(record_line(r) for r in records)]


def test_a_log_rewritten_by_its_own_key_fails_against_an_earlier_checkpoint() -> None:
    """Even a fully re-signed history is caught by a checkpoint the auditor kept."""
    key = SigningKey(Ed25519PrivateKey.generate())
    original = _log(key, ["a.one", "a.two", "a.three"])
    kept = json.loads(_export(original, key)[0])["note"]
    rewritten = _log(key, ["a.one", "a.TWO", "a.three", "a.four"])
    grown = _log(key, ["a.four"], after=original)
    keys = {key.key_id: key.public_key}

    honest = verify_export(_export(grown, key), keys, key.public_key, earlier_note=kept)
    forged = verify_export(_export(rewritten, key), keys, key.public_key, earlier_note=kept)
    truncated = verify_export(_export(original[:2], key), keys, key.public_key, earlier_note=kept)

    assert honest.ok
    assert forged.failure is None
    assert forged.problem is not None
    assert "not those of the earlier checkpoint" in forged.problem
    assert not truncated.ok


def test_an_export_signed_by_another_key_or_cut_short_fails() -> None:
    """The checkpoint must be the log's, and must cover exactly the records exported."""
    key, stranger = (SigningKey(Ed25519PrivateKey.generate()) for _ in range(2))
    records = _log(key, ["b.one", "b.two", "b.three"])
    keys = {key.key_id: key.public_key}
    lines = _export(records, key)

    assert verify_export(lines, keys, key.public_key).ok
    assert "no signature by the log's key" in str(
        verify_export(lines, keys, stranger.public_key).problem
    )
    assert "covers 3 records" in str(verify_export(lines[:-1], keys, key.public_key).problem)
    assert verify_export(lines[1:], keys, key.public_key).problem == (
        "the export does not start with a checkpoint"
    )
