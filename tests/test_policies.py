"""The policy set is what security teams ship: it must pass the same checks they run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from order3.config import REPO_ROOT
from order3.policy.binary import ensure_opa

POLICIES = REPO_ROOT / "policies"


@pytest.fixture(scope="module")
def opa() -> Path:
    return ensure_opa(build=False)


@pytest.mark.parametrize(
    "arguments",
    [
        ["check", "--strict", str(POLICIES)],
        ["fmt", "--list", "--fail", str(POLICIES)],
        ["test", str(POLICIES)],
    ],
    ids=["check-strict", "fmt", "unit-tests"],
)
def test_policies_pass_opa_tooling(opa: Path, arguments: list[str]) -> None:
    """`opa check --strict`, `opa fmt` and `opa test` all pass on policies/."""
    result = subprocess.run([str(opa), *arguments], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_id_has_a_unit_test() -> None:
    """Each rule id a policy can report appears in at least one policy unit test."""
    sources = [p.read_text() for p in POLICIES.rglob("*.rego") if not p.name.endswith("_test.rego")]
    tests = "\n".join(p.read_text() for p in POLICIES.rglob("*_test.rego"))
    rule_ids = {
        line.split("id:", 1)[1].strip()
        for source in sources
        for line in source.splitlines()
        if line.strip().startswith("#") and "id:" in line
    }

    assert len(rule_ids) > 20
    assert sorted(rule for rule in rule_ids if f'"{rule}"' not in tests) == []
