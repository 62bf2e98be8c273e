"""Every policy revision that decided is kept, and a recorded decision re-run under it with
`opa eval` gives the recorded outcome and rules, from the database or from an export alone."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from order3.audit.canonical import canonical_json, content_hash
from order3.audit.records import hash_canonical
from order3.config import REPO_ROOT, Settings
from order3.policy.engine import PolicyEngine
from order3.policy.revisions import PolicyRevision, RevisionContent
from order3.runtime import open_storage
from order3.storage.revisions import store_revision
from order3.storage.schema import audit_records, policy_revisions
from support.api import Api
from support.database import query
from support.servers import ORDER3

OPA = REPO_ROOT / ".tools" / "bin" / "opa"


def order3(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORDER3_DATA_DIR": str(settings.data_dir),
        "ORDER3_DATABASE_URL": str(settings.database_url),
    }
    return subprocess.run(
        [str(ORDER3), "audit", *args], env=env, capture_output=True, text=True, check=False
    )


def decided(api: Api) -> dict[str, int]:
    """An allowed submit, a refused approval and an allowed one; their record numbers."""
    draft_id = api.submitted()
    refused = api.approve("rogue", draft_id, "manager")
    allowed = api.approve("mia", draft_id, "manager")
    assert refused.status_code == 403, refused.text
    assert allowed.status_code == 200, allowed.text
    return {
        "submitted": api.audit(action="draft.submitted")[-1]["seq"],
        "refused": refused.json()["decision"]["audit_seq"],
        "approved": allowed.json()["decision"]["audit_seq"],
    }


def edit_export(export: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    edited = export.with_name("edited-" + export.name)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    for line in lines:
        change(line)
    edited.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return edited


def test_recorded_decisions_are_confirmed_from_the_database_and_from_an_export(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    """Allowed and denied decisions re-run to the same outcome and rules, with and without
    the database; every revision a record names was stored, and travels in the export."""
    seqs = decided(api)
    export = tmp_path / "log.jsonl"

    one = order3(settings, "reevaluate", str(seqs["refused"]))
    every = order3(settings, "reevaluate", "--all")
    exported = order3(settings, "export", "-o", str(export))
    offline = order3(settings, "reevaluate", "--all", "--export", str(export), "--opa", str(OPA))
    named = {row.policy_revision for row in query(settings, sa.select(audit_records))} - {None}
    stored = {row.revision for row in query(settings, sa.select(policy_revisions))}
    lines = [json.loads(line) for line in export.read_text().splitlines()]

    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.startswith(f"record {seqs['refused']}: confirmed under policy revision")
    assert ": denied by duties.agent_cannot_approve" in one.stdout
    assert every.returncode == 0, every.stdout + every.stderr
    assert f"record {seqs['approved']}: confirmed" in every.stdout
    assert "3 decisions: 3 confirmed, 0 differ, 0 not re-run" in every.stdout
    assert exported.returncode == 0, exported.stderr
    assert [line["type"] for line in lines[:2]] == ["checkpoint", "policy_revision"]
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout == every.stdout
    assert named
    assert named <= stored


def test_a_changed_revision_or_outcome_is_reported(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    """Revision content that no longer hashes to its id is not trusted, and a recorded
    outcome the policy does not give is shown as a difference."""
    seqs = decided(api)
    export = tmp_path / "log.jsonl"
    assert order3(settings, "export", "-o", str(export)).returncode == 0
    [record] = query(
        settings, sa.select(audit_records).where(audit_records.c.seq == seqs["approved"])
    )
    body = json.loads(record.body)
    body["decision"]["result"].update(allow=False, outcome="denied")
    query(
        settings,
        audit_records.update()
        .where(audit_records.c.seq == seqs["approved"])
        .values(body=canonical_json(body).decode()),
    )

    differs = order3(settings, "reevaluate", str(seqs["approved"]))

    def weaken(line: dict[str, Any]) -> None:
        if line["type"] == "policy_revision":
            line["content"]["modules"][0] += "\n# harmless, but not what decided\n"

    forged = order3(
        settings, "reevaluate", str(seqs["submitted"]), "--export", str(edit_export(export, weaken))
    )
    query(
        settings,
        policy_revisions.update().values(
            content=sa.func.replace(
                policy_revisions.c.content, "approval.counted", "approval.forged"
            )
        ),
    )
    changed = order3(settings, "reevaluate", str(seqs["submitted"]))
    query(settings, policy_revisions.delete())
    missing = order3(settings, "reevaluate", str(seqs["submitted"]))
    nothing = order3(settings, "reevaluate", "1")

    assert differs.returncode == 1
    assert f"record {seqs['approved']}: DIFFERS" in differs.stdout
    assert "outcome: recorded denied, re-run allowed" in differs.stdout
    assert "does not hash to its stored hash" in differs.stdout
    assert forged.returncode == 1
    assert "NOT RE-RUN" in forged.stdout
    assert "it was changed" in forged.stdout
    assert changed.returncode == 1
    assert "it was changed" in changed.stdout
    assert missing.returncode == 1
    assert "is not stored" in missing.stdout
    assert nothing.returncode == 1
    assert "record 1 (workspace.created) holds no policy decision" in nothing.stderr


def test_a_masked_input_is_rerun_and_its_masked_fields_named(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    """A decision whose input was masked still re-runs; the report names what was masked."""
    seqs = decided(api)
    export = tmp_path / "log.jsonl"
    assert order3(settings, "export", "-o", str(export)).returncode == 0

    def mask(line: dict[str, Any]) -> None:
        if line["type"] == "record" and line["seq"] == seqs["submitted"]:
            body = json.loads(line["body"])
            decision_input = body["decision"]["input"]
            # A masker replaces each copy of a value by the same keyed hash.
            decision_input["draft"]["payload"]["supplier_id"] = "hmac-sha256:00"
            decision_input["context"]["supplier"]["id"] = "hmac-sha256:00"
            body["decision"]["masked"] = ["/context/supplier/id", "/draft/payload/supplier_id"]
            line["body"] = canonical_json(body).decode()
            line["hash"] = hash_canonical(line["body"].encode())

    masked = order3(
        settings, "reevaluate", str(seqs["submitted"]), "--export", str(edit_export(export, mask))
    )

    assert masked.returncode == 0, masked.stdout + masked.stderr
    assert f"record {seqs['submitted']}: confirmed" in masked.stdout
    assert "masked before it was recorded" in masked.stdout
    assert "/draft/payload/supplier_id" in masked.stdout


def test_a_revision_is_stored_once_however_many_engines_see_it(
    settings: Settings, opa_url: str
) -> None:
    """Two engines starting together on one database store the revision they see once, as
    content that hashes to its id; the id is what it always was."""

    async def start_two() -> tuple[list[str | None], list[bool], list[Any]]:
        async with open_storage(settings) as (db, _, _):
            keep = functools.partial(store_revision, db)
            engines = [PolicyEngine(opa_url, keep_revision=keep) for _ in range(2)]
            await asyncio.gather(*(engine.start() for engine in engines))
            await asyncio.gather(*(engine.stop() for engine in engines))
            content = RevisionContent.of(["package x"], {"k": 1})
            again = await asyncio.gather(
                *(store_revision(db, PolicyRevision.of(content, "opa")) for _ in range(2))
            )
            async with db.connect() as connection:
                rows = list(await connection.execute(sa.select(policy_revisions)))
        return [engine.revision for engine in engines], sorted(again), rows

    revisions, again, rows = asyncio.run(start_two())

    [revision] = set(revisions)
    assert revision is not None
    assert again == [False, True]
    assert len(rows) == 2
    [row] = [row for row in rows if row.revision == revision]
    content = json.loads(row.content)
    assert content_hash(content) == revision
    assert set(content) == {"modules", "data"}
    assert content["modules"] == sorted(content["modules"])
    assert row.engine.startswith("opa/")


def test_an_engine_that_cannot_keep_its_revision_names_none(opa_url: str) -> None:
    """Decisions never name a revision that was not stored: until it is, they name none."""

    async def refuse(_: PolicyRevision) -> None:
        raise OSError("the database is away")

    async def start() -> str | None:
        engine = PolicyEngine(opa_url, keep_revision=refuse)
        await engine.start()
        await engine.stop()
        return engine.revision

    assert asyncio.run(start()) is None
