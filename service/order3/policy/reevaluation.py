"""Re-running recorded decisions under the policy revision that made them.

An audit record holds a decision's complete input, its result and the id of the policy
revision that answered. Given that revision's stored content, the decision can be evaluated
again with nothing but the ``opa`` binary: the content is written out as files (each module as
a ``.rego`` file, the policy data as ``settings/data.json`` so that it is ``data.settings``
again) and ``opa eval`` evaluates ``data.order3.decision`` with the recorded input. The
outcome, rule ids and required approvals it gives must be the ones recorded.

Nothing is trusted on the way: the content must hash to the revision id the record names
before it is evaluated, and a record whose body no longer hashes to its stored hash is
re-run but reported as altered. Inputs with masked values are re-run as they were recorded;
the policy saw other values there, so the report names those fields.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from order3.audit.records import hash_canonical
from order3.audit.verify import StoredRecord
from order3.domain.decisions import DecisionResult, parse_result
from order3.policy.engine import DECISION_PACKAGE, DECISION_RULE, SETTINGS_PATH
from order3.policy.revisions import RevisionContent, StoredRevision

ENTRYPOINT = f"data.{DECISION_PACKAGE}.{DECISION_RULE}"

# One `opa eval` for many inputs: the array given as input is iterated, and each element is
# evaluated as the input of its own decision. Keys missing from the answer are undefined.
_BATCH_QUERY = f"{{i: d | some i, x in input; d := {ENTRYPOINT} with input as x}}"
# The same with keys of the policy data replaced by the caller's: the stdin is then
# {"cases": [input, ...], "settings": {key: value, ...}}.
_SETTINGS_BATCH_QUERY = (
    "{i: d | given := input.settings; "
    "s := object.union(object.remove(data.settings, object.keys(given)), given); "
    f"some i, x in input.cases; d := {ENTRYPOINT} with input as x with data.settings as s}}"
)
_OPA_TIMEOUT_SECONDS = 120
_VERSION = re.compile(r"^Version:\s*(\S+)", re.MULTILINE)


class NothingToReevaluate(ValueError):
    """The record holds no decision result that could be compared with a re-run."""


class RecordedDecision(msgspec.Struct, frozen=True, kw_only=True):
    """A decision as an audit record holds it."""

    seq: int
    input: Any
    result: DecisionResult
    policy_revision: str | None
    engine: str
    masked: list[str]
    """JSON pointers into the input whose values were replaced by keyed hashes."""
    intact: bool
    """Whether the record's body still hashes to the record's hash."""


class Reevaluation(msgspec.Struct, frozen=True, kw_only=True):
    """What re-running one recorded decision showed."""

    seq: int
    policy_revision: str | None
    status: Literal["confirmed", "differs", "not_rerun"]
    recorded: DecisionResult
    rerun: DecisionResult | None = None
    differences: list[str] = []
    problem: str | None = None
    """Why the decision could not be re-run, when it could not."""
    notes: list[str] = []
    """What the reader should weigh: masked fields, another OPA version, an altered record."""


def recorded_decision(record: StoredRecord) -> RecordedDecision:
    """Read the decision out of a record.

    Raises:
        NothingToReevaluate: The record has no decision, or its decision has no result (an
            engine failure), so there is nothing to compare a re-run with.
    """
    body = json.loads(record.body)
    decision = body.get("decision") if isinstance(body, dict) else None
    if not isinstance(decision, dict):
        raise NothingToReevaluate(
            f"record {record.seq} ({body.get('action')}) holds no policy decision"
        )
    if decision.get("result") is None:
        raise NothingToReevaluate(
            f"record {record.seq} is an engine failure: the policy gave no result to compare with"
        )
    try:
        result = parse_result(decision["result"])
    except ValueError as exc:
        raise NothingToReevaluate(f"record {record.seq}: the recorded {exc}") from None
    return RecordedDecision(
        seq=record.seq,
        input=decision.get("input"),
        result=result,
        policy_revision=decision.get("policy_revision"),
        engine=str(decision.get("engine") or "unknown"),
        masked=[str(pointer) for pointer in decision.get("masked") or ()],
        intact=hash_canonical(record.body.encode()) == record.hash,
    )


def materialise(content: RevisionContent, folder: Path) -> Path:
    """Write a revision out as OPA loads a policy directory; return ``folder``."""
    modules = folder / "modules"
    modules.mkdir(parents=True, exist_ok=True)
    for name, source in content.module_files().items():
        (modules / name).write_text(source, encoding="utf-8")
    if content.data is not None:
        settings = folder / SETTINGS_PATH
        settings.mkdir(exist_ok=True)
        (settings / "data.json").write_text(json.dumps(content.data), encoding="utf-8")
    return folder


def opa_version(opa: Path) -> str | None:
    """The version ``opa version`` reports, such as ``1.22.4``."""
    try:
        answer = subprocess.run(  # noqa: S603 - the binary is given, the argv fixed
            [str(opa), "version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(answer.stdout)
    return found.group(1) if found else None


def evaluate(opa: Path, folder: Path, inputs: Sequence[Any]) -> list[Any]:
    """``data.order3.decision`` for each input under the policy in ``folder``.

    Returns:
        One raw result per input, None where the decision is undefined.

    Raises:
        RuntimeError: ``opa eval`` failed; the message is OPA's.
    """
    answer = subprocess.run(  # noqa: S603 - the binary is given, the argv fixed
        batch_command(opa, folder),
        input=json.dumps(list(inputs)),
        capture_output=True,
        text=True,
        check=False,
        timeout=_OPA_TIMEOUT_SECONDS,
    )

    return batch_results(answer.returncode, answer.stdout, answer.stderr, len(inputs))


def batch_command(opa: Path, folder: Path, *, with_settings: bool = False) -> list[str]:
    """The argv of one ``opa eval`` that decides every input of a JSON array on its stdin;
    ``with_settings``, of ``{"cases": [...], "settings": {...}}``, where each key of those
    settings replaces that key of ``data.settings``."""
    return [
        str(opa),
        "eval",
        "--format",
        "json",
        "--data",
        str(folder),
        "--stdin-input",
        _SETTINGS_BATCH_QUERY if with_settings else _BATCH_QUERY,
    ]


def batch_results(returncode: int, stdout: str, stderr: str, count: int) -> list[Any]:
    """The ``count`` raw results of a `batch_command` run, None where undefined.

    Raises:
        RuntimeError: ``opa eval`` failed; the message is OPA's.
    """
    try:
        output = json.loads(stdout)
    except ValueError:
        output = {}
    if returncode != 0 or "errors" in output:
        errors = output.get("errors") or [{"message": stderr.strip() or "no output"}]
        raise RuntimeError("opa eval failed: " + "; ".join(e.get("message", "") for e in errors))
    values = output["result"][0]["expressions"][0]["value"] if output.get("result") else {}

    return [values.get(str(index)) for index in range(count)]


class Reevaluator:
    """Re-runs recorded decisions, writing each revision out once under ``workdir``."""

    def __init__(self, opa: Path, workdir: Path) -> None:
        self._opa = opa
        self._workdir = workdir
        self._folders: dict[str, Path | str] = {}
        self.opa_version = opa_version(opa)

    def reevaluate(
        self, decisions: Sequence[RecordedDecision], revisions: Mapping[str, StoredRevision]
    ) -> list[Reevaluation]:
        """Re-run ``decisions``, each under the revision it names, found in ``revisions``.

        The answer is in the order of ``decisions``.
        """
        by_revision: dict[str | None, list[RecordedDecision]] = defaultdict(list)
        for decision in decisions:
            by_revision[decision.policy_revision].append(decision)
        done: dict[int, Reevaluation] = {}
        for revision, group in by_revision.items():
            for report in self._reevaluate_group(revision, group, revisions):
                done[report.seq] = report

        return [done[decision.seq] for decision in decisions]

    def _reevaluate_group(
        self,
        revision: str | None,
        group: list[RecordedDecision],
        revisions: Mapping[str, StoredRevision],
    ) -> list[Reevaluation]:
        folder = self._folder(revision, revisions)
        if isinstance(folder, str):
            return [self._not_rerun(decision, folder) for decision in group]
        try:
            results = evaluate(self._opa, folder, [decision.input for decision in group])
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            if len(group) == 1:
                return [self._not_rerun(group[0], str(exc))]
            # One input that makes OPA fail should not hide the others: run them one by one.
            return [
                report
                for decision in group
                for report in self._reevaluate_group(revision, [decision], revisions)
            ]

        return [self._compare(decision, raw) for decision, raw in zip(group, results, strict=True)]

    def _folder(self, revision: str | None, revisions: Mapping[str, StoredRevision]) -> Path | str:
        """The revision written out, or why it cannot be."""
        if revision is None or revision == "unknown":
            return "the decision names no policy revision: the engine had not loaded one"
        if revision not in self._folders:
            stored = revisions.get(revision)
            if stored is None:
                self._folders[revision] = f"the policy revision {revision} is not stored"
            else:
                try:
                    content = stored.verified()
                except ValueError as exc:
                    self._folders[revision] = str(exc)
                else:
                    folder = self._workdir / f"revision-{len(self._folders)}"
                    self._folders[revision] = materialise(content, folder)

        return self._folders[revision]

    def _not_rerun(self, decision: RecordedDecision, problem: str) -> Reevaluation:
        return Reevaluation(
            seq=decision.seq,
            policy_revision=decision.policy_revision,
            status="not_rerun",
            recorded=decision.result,
            problem=problem,
            notes=self._notes(decision),
        )

    def _compare(self, decision: RecordedDecision, raw: Any) -> Reevaluation:
        recorded, rerun, differences = decision.result, None, []
        if raw is None:
            differences.append(f"the re-run decision is undefined under {ENTRYPOINT}")
        else:
            try:
                rerun = parse_result(raw)
            except ValueError as exc:
                differences.append(f"the re-run gave a {exc}")
        if rerun is not None:
            differences += _differences(recorded, rerun)
        return Reevaluation(
            seq=decision.seq,
            policy_revision=decision.policy_revision,
            status="differs" if differences else "confirmed",
            recorded=recorded,
            rerun=rerun,
            differences=differences,
            notes=self._notes(decision),
        )

    def _notes(self, decision: RecordedDecision) -> list[str]:
        notes = []
        if decision.masked:
            notes.append(
                "masked before it was recorded, so the policy saw other values at: "
                + ", ".join(decision.masked)
                + "; a difference may come from them"
            )
        if self.opa_version and decision.engine not in ("opa", f"opa/{self.opa_version}"):
            notes.append(f"decided by {decision.engine}, re-run with opa/{self.opa_version}")
        if not decision.intact:
            notes.append(
                "the record's body does not hash to its stored hash: it was altered "
                "(run `order3 audit verify`)"
            )
        return notes


def _differences(recorded: DecisionResult, rerun: DecisionResult) -> list[str]:
    found = []
    if recorded.outcome != rerun.outcome:
        found.append(f"outcome: recorded {recorded.outcome}, re-run {rerun.outcome}")
    if recorded.rules != rerun.rules:
        found.append(f"rules: recorded {_listed(recorded.rules)}, re-run {_listed(rerun.rules)}")
    if recorded.required != rerun.required:
        found.append(f"required: recorded {_required(recorded)}, re-run {_required(rerun)}")
    return found


def _listed(rules: list[str]) -> str:
    return "[" + ", ".join(rules) + "]"


def _required(result: DecisionResult) -> str:
    return _listed([f"{r.count} {r.role}" for r in result.required])
