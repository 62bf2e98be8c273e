"""Policy tooling: `order3 policy check` and `test` judge a policy directory, and a replay
shows exactly which recorded decisions a candidate policy set would decide otherwise, from
the command line and over the API, writing one audit record of its own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from conftest import POLICY_DIR, create_workspace
from order3.config import Settings
from order3.http.app import create_app
from order3.storage.schema import audit_records
from support.api import Api
from support.database import query
from support.servers import ORDER3

CAPPED_RULE = "replay_test.amount_capped"
CAP_MINOR_UNITS = 300000

# The candidate keeps the policies as they are under another package, and answers
# data.order3.decision itself: as they do, except that approvals above the cap are denied by
# a rule of its own. So the test depends on the policy contract, not on today's rule ids.
CAP_MODULE = f"""package order3

import data.order3.recorded_policy

default _capped := false

_capped if {{
	input.action == "approve"
	input.draft.amount.minor_units > {CAP_MINOR_UNITS}
}}

decision := recorded_policy.decision if not _capped

decision := {{
	"allow": false,
	"outcome": "denied",
	"reasons": [{{"rule": "{CAPPED_RULE}", "message": "approvals above 3,000.00 are refused"}}],
	"required": [],
}} if _capped
"""


def order3(*args: str, settings: Settings | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if settings is not None:
        env |= {
            "ORDER3_DATA_DIR": str(settings.data_dir),
            "ORDER3_DATABASE_URL": str(settings.database_url),
        }
    return subprocess.run(
        [str(ORDER3), "policy", *args], env=env, capture_output=True, text=True, check=False
    )


def policies_copy(tmp_path: Path, name: str = "candidate") -> Path:
    return Path(shutil.copytree(POLICY_DIR, tmp_path / name))


def capped_candidate(tmp_path: Path) -> Path:
    """A copy of the policies whose decisions deny approvals above 3,000.00."""
    candidate = policies_copy(tmp_path)
    for module in candidate.rglob("*.rego"):
        source = module.read_text()
        renamed = re.sub(
            r"^package order3\s*$", "package order3.recorded_policy", source, flags=re.M
        )
        module.write_text(renamed)
    (candidate / "replay_cap.rego").write_text(CAP_MODULE)
    return candidate


def modules_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.rego"))}


def record_count(settings: Settings) -> int:
    [(count,)] = query(settings, sa.select(sa.func.count()).select_from(audit_records))
    return int(count)


def replay_records(settings: Settings) -> list[dict[str, Any]]:
    rows = query(
        settings,
        sa.select(audit_records.c.body)
        .where(audit_records.c.action == "policy.replayed")
        .order_by(audit_records.c.seq),
    )
    return [json.loads(row.body) for row in rows]


def history(api: Api) -> dict[str, int]:
    """Three purchase orders below the cap's tier limit, approved by managers, one of them
    refused to an agent first; the record numbers of the approvals the cap changes."""
    small = api.submitted(unit_cost=12500)  # 1,250.00 USD
    large = api.submitted(unit_cost=40000)  # 4,000.00 USD
    middle = api.submitted(unit_cost=35000)  # 3,500.00 USD
    refused = api.approve("rogue", middle, "manager")
    approvals = {
        name: api.approve("mia", draft, "manager")
        for name, draft in [("small", small), ("large", large), ("middle", middle)]
    }
    assert refused.status_code == 403, refused.text
    for approval in approvals.values():
        assert approval.status_code == 200, approval.text
    return {
        "large": approvals["large"].json()["decision"]["audit_seq"],
        "middle": approvals["middle"].json()["decision"]["audit_seq"],
        "refused": refused.json()["decision"]["audit_seq"],
    }


def changed_seqs(report: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    return {
        (group["from_outcome"], group["to_outcome"]): {d["seq"] for d in group["decisions"]}
        for group in report["changes"]
    }


def test_check_passes_on_the_policies_and_fails_on_bad_formatting_or_strict_problems(
    tmp_path: Path,
) -> None:
    """The policies pass every step; a module opa fmt would change fails with its diff, and
    an unused import fails strict compilation; Regal is said to be skipped when absent."""
    unformatted = policies_copy(tmp_path, "unformatted")
    (unformatted / "spacing.rego").write_text("package spacing\n\nanswer   :=   42\n")
    loose = policies_copy(tmp_path, "loose")
    (loose / "loose.rego").write_text("package loose\n\nimport data.settings\n\nanswer := 42\n")

    passing = order3("check", str(POLICY_DIR))
    badly_formatted = order3("check", str(unformatted))
    not_strict = order3("check", str(loose))

    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert re.search(r"^opa check --strict\s+ok$", passing.stdout, re.M)
    assert re.search(r"^opa fmt\s+ok$", passing.stdout, re.M)
    if shutil.which("regal") is None:
        assert re.search(r"^regal lint\s+skipped: regal is not on the PATH$", passing.stdout, re.M)
    assert badly_formatted.returncode == 1
    assert re.search(r"^opa fmt\s+FAILED$", badly_formatted.stdout, re.M)
    assert "-answer   :=   42" in badly_formatted.stdout
    assert "+answer := 42" in badly_formatted.stdout
    assert not_strict.returncode == 1
    assert re.search(r"^opa check --strict\s+FAILED$", not_strict.stdout, re.M)
    assert "loose.rego" in not_strict.stdout


def test_test_reports_coverage_and_the_files_below_it_and_fails_with_the_trace(
    tmp_path: Path,
) -> None:
    """Coverage is printed as a percentage, with each file below 100% and its uncovered
    lines; a failing test exits non-zero and shows the failure as `opa test -v` does."""
    untested = policies_copy(tmp_path, "untested")
    (untested / "untested.rego").write_text("package untested\n\nanswer := 1 if input.x == 1\n")
    failing = policies_copy(tmp_path, "failing")
    (failing / "failing_test.rego").write_text(
        "package failing_test\n\ntest_allowed_never if {\n\t1 == 2\n}\n"
    )

    whole = order3("test", str(POLICY_DIR))
    partial = order3("test", str(untested))
    failed = order3("test", str(failing))

    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert re.match(r"all tests passed; coverage \d+\.\d\d%", whole.stdout)
    assert partial.returncode == 0, partial.stdout + partial.stderr
    assert re.search(r"^  untested\.rego: 0\.00%, not covered: lines 3$", partial.stdout, re.M)
    assert failed.returncode != 0
    assert "test_allowed_never: FAIL" in failed.stdout
    assert "Fail 1 = 2" in failed.stdout


def test_replay_reports_exactly_the_decisions_that_change_and_records_one_run(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    """Under a candidate that denies approvals above 3,000.00, the two allowed approvals
    above it would be denied and the agent's refusal would be refused by the new rule; the
    rest is unchanged, and the run adds exactly one record, which holds only counts."""
    seqs = history(api)
    candidate = capped_candidate(tmp_path)
    before = record_count(settings)

    run = order3(
        "replay",
        "--candidate",
        str(candidate),
        "--workspace",
        api.workspace.id,
        settings=settings,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert record_count(settings) == before + 1
    [record] = replay_records(settings)
    assert record["workspace_id"] == api.workspace.id
    assert record["actor"] == {"id": "cli", "type": "system"}
    assert record["decision"] is None
    assert record["details"]["counts"] == {
        "replayed": 7,  # three submits and four approval decisions
        "unchanged": 4,
        "allowed_to_denied": 2,
        "denied_to_allowed": 0,
        "rules_changed": 1,
        "failed": 0,
        "masked": 0,
    }
    assert record["details"]["candidate"].startswith("sha256:")
    assert record["details"]["filters"]["workspace_id"] == api.workspace.id
    assert f"allowed -> denied: +{CAPPED_RULE}" in run.stdout
    assert f"denied -> denied: +{CAPPED_RULE}" in run.stdout
    listed = {int(seq) for seq in re.findall(r"^  record (\d+)", run.stdout, re.M)}
    assert listed == set(seqs.values())
    assert re.search(r"would change allowed -> denied\s*│\s*2", run.stdout)
    assert f"recorded as audit record {before + 1} (policy.replayed)" in run.stdout


def test_the_replay_endpoint_answers_the_same_report_for_the_callers_workspace(
    api: Api, client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    """Over the API the same candidate reports the same changes, from the caller's
    workspace alone (another workspace's decisions are not replayed), with the data in
    force when none is sent, and the one record it writes names the caller."""
    seqs = history(api)
    other = Api.with_cast(client, asyncio.run(create_workspace(settings)))
    other.submitted()
    modules = modules_of(capped_candidate(tmp_path))
    before = record_count(settings)

    response = api.post("admin", "/v1/policies/replay", {"modules": modules})
    later = api.post(
        "admin", "/v1/policies/replay", {"modules": modules, "since": "2999-01-01T00:00:00Z"}
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"]["replayed"] == 7
    assert report["counts"]["allowed_to_denied"] == 2
    assert report["counts"]["rules_changed"] == 1
    assert report["counts"]["unchanged"] == 4
    assert changed_seqs(report) == {
        ("allowed", "denied"): {seqs["large"], seqs["middle"]},
        ("denied", "denied"): {seqs["refused"]},
    }
    assert all(group["rules_added"] == [CAPPED_RULE] for group in report["changes"])
    assert report["failures"] == []
    assert later.status_code == 200, later.text
    assert later.json()["counts"]["replayed"] == 0
    assert record_count(settings) == before + 2
    first = replay_records(settings)[0]
    assert first["seq"] == report["audit_seq"]
    assert first["actor"]["id"] == api.workspace.admin_id
    assert first["details"]["candidate"] == report["candidate"]
    assert first["details"]["counts"] == report["counts"]


def test_the_replay_endpoint_refuses_bad_rego_bad_names_and_large_bodies(
    api: Api, settings: Settings
) -> None:
    """Rego that does not compile is refused with 422 naming the module and OPA's message;
    so is a module name that is not a relative .rego path; a body over the limit gets 413,
    a token without the admin scope 403; none of them writes a record."""
    modules = modules_of(POLICY_DIR)
    broken = {**modules, "order3/broken.rego": "package broken\n\nanswer if {\n\tx\n}\n"}
    before = record_count(settings)

    bad_rego = api.post("admin", "/v1/policies/replay", {"modules": broken})
    bad_name = api.post("admin", "/v1/policies/replay", {"modules": {"../escape.rego": "x"}})
    too_large = api.post(
        "admin", "/v1/policies/replay", {"modules": {"big.rego": "#" * (3 * 1024 * 1024)}}
    )
    not_admin = api.post("mia", "/v1/policies/replay", {"modules": modules})

    assert bad_rego.status_code == 422, bad_rego.text
    [error] = bad_rego.json()["errors"]
    assert error["field"] == '$.modules["order3/broken.rego"]'
    assert "rego_unsafe_var_error" in error["message"]
    assert "var x is unsafe" in error["message"]
    assert bad_name.status_code == 422, bad_name.text
    assert bad_name.json()["errors"][0]["field"] == '$.modules["../escape.rego"]'
    assert too_large.status_code == 413, too_large.text
    assert not_admin.status_code == 403, not_admin.text
    assert record_count(settings) == before


@pytest.fixture
def masked_api(settings: Settings) -> Iterator[Api]:
    masked = msgspec.structs.replace(
        settings,
        audit_mask_fields="/draft/payload/supplier_id, /context/supplier/id",
        audit_mask_key="replay mask",
    )
    workspace = asyncio.run(create_workspace(masked))
    with TestClient(create_app(masked)) as client:
        yield Api.with_cast(client, workspace)


def test_masked_inputs_are_replayed_as_recorded_and_flagged(
    masked_api: Api, tmp_path: Path
) -> None:
    """Decisions whose inputs were masked are replayed with the recorded hashes in place,
    counted as masked, and each changed one names its masked fields."""
    api = masked_api
    draft = api.submitted(unit_cost=40000)
    assert api.approve("mia", draft, "manager").status_code == 200

    response = api.post(
        "admin", "/v1/policies/replay", {"modules": modules_of(capped_candidate(tmp_path))}
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"]["replayed"] == 2
    assert report["counts"]["masked"] == 2
    assert report["counts"]["allowed_to_denied"] == 1
    [group] = report["changes"]
    [decision] = group["decisions"]
    assert decision["masked"] == ["/context/supplier/id", "/draft/payload/supplier_id"]
    assert decision["action"] == "approve"
    assert decision["draft_id"] == draft
