"""The decision corpus in policies/corpus: every case decides as it says through a real OPA's
REST API, the cases reach every rule that can decide, and `order3 policy replay --corpus`
names each case a candidate policy set would decide otherwise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import POLICY_DIR
from order3.policy.annotations import read_annotations
from order3.policy.corpus import CorpusInvalid, corpus_cases, file_cases
from order3.policy.replay import ReplayCase
from support.servers import ORDER3

CORPUS = POLICY_DIR / "corpus"
CASES = list(corpus_cases(CORPUS))

# The decision entrypoint with some keys of data.settings replaced, as a case's `settings`
# asks: the same query `order3 policy replay` runs for such a case.
_WITH_SETTINGS = (
    "given := input.settings; "
    "s := object.union(object.remove(data.settings, object.keys(given)), given); "
    "decision := data.order3.decision with input as input.case with data.settings as s"
)

# A safety net no input can reach: every known action has a rule that accepts it, so the
# rule fires only when those rules are overridden, as its unit test does.
UNREACHABLE = {"decision.no_allow_reason"}


def _decide(opa_url: str, case: ReplayCase) -> dict[str, Any]:
    if case.settings is None:
        response = httpx.post(f"{opa_url}/v1/data/order3/decision", json={"input": case.input})
        response.raise_for_status()
        return dict(response.json()["result"])
    body = {"query": _WITH_SETTINGS, "input": {"case": case.input, "settings": case.settings}}
    response = httpx.post(f"{opa_url}/v1/query", json=body)
    response.raise_for_status()
    [row] = response.json()["result"]

    return dict(row["decision"])


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_case_decides_as_the_corpus_expects(opa_url: str, case: ReplayCase) -> None:
    """Through the same REST entrypoint the service asks, the case gets its expected outcome
    and exactly its expected rules, in order."""
    decision = _decide(opa_url, case)

    assert (decision["outcome"], [r["rule"] for r in decision["reasons"]]) == (
        case.expected.outcome,
        case.expected.rules,
    )


def test_the_corpus_reaches_every_rule_that_can_decide() -> None:
    """Each rule id the policies annotate is what some case expects."""
    sources = [
        path.read_text(encoding="utf-8")
        for path in POLICY_DIR.rglob("*.rego")
        if not path.name.endswith("_test.rego")
    ]
    rule_ids = {a.id for a in read_annotations(sources) if a.rule is not None and a.id}
    expected = {rule for case in CASES for rule in case.expected.rules}

    assert len(rule_ids) > 40
    assert sorted(rule_ids - expected - UNREACHABLE) == []
    assert sorted(expected - rule_ids) == []


def test_replay_of_the_corpus_passes_under_the_policies_it_was_written_for() -> None:
    """`opa eval` under policies/ agrees with every case, and the replay exits 0."""
    run = _replay(POLICY_DIR)

    assert run.returncode == 0, run.stdout + run.stderr
    assert f"│ unchanged                      │ {len(CASES):>5} │" in run.stdout


def test_replay_of_the_corpus_names_every_case_a_candidate_changes(tmp_path: Path) -> None:
    """Lowering the two-person threshold by 1,000.00 USD changes what the cases at and just
    below it decide; the replay fails and lists exactly the changed cases by file and line."""
    candidate = tmp_path / "candidate"
    shutil.copytree(POLICY_DIR, candidate, ignore=shutil.ignore_patterns("corpus"))
    data_file = candidate / "settings" / "data.json"
    data = json.loads(data_file.read_text())
    data["two_person"]["from_minor_units"]["USD"] -= 100000
    data_file.write_text(json.dumps(data))

    run = _replay(candidate)

    assert run.returncode == 1
    changed = re.findall(r"^  (\S+\.jsonl:\d+) ", run.stdout, re.M)
    assert "quorum.jsonl:1" in changed, run.stdout
    for name in changed:
        case = next(c for c in CASES if c.name.startswith(f"{name} "))
        amount = case.input["draft"]["amount"]
        assert amount["currency"] == "USD", case.name
        assert 150000 <= amount["minor_units"] < 250000, case.name


def test_a_line_that_is_not_a_case_is_named(tmp_path: Path) -> None:
    """A case without its expected rules is refused with the file, line and missing field."""
    corpus = tmp_path / "cases.jsonl"
    corpus.write_text('{"name": "fine", "input": {}, "expected": {"outcome": "allowed"}}\n')

    with pytest.raises(CorpusInvalid, match=r"^cases.jsonl:1: .*rules"):
        list(file_cases(corpus))


def _replay(candidate: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ORDER3), "policy", "replay", "--candidate", str(candidate), "--corpus", str(CORPUS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
