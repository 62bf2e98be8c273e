"""Replaying past decisions under a candidate policy set, before it is deployed.

A **candidate** is a policy set that decides nothing yet: Rego modules and the policy data
they read as ``data.settings``. A **case** is one decision input with the outcome and rule
ids it is expected to get. Replay evaluates every case under the candidate with ``opa eval``,
a batch of inputs per run (`order3.policy.reevaluation.batch_command`), and reports the cases
whose outcome or rule ids would change, grouped by the rules that changed.

Cases come from any iterable, synchronous or not: `replay` is the same for all of them. The
audit log is one source (`recorded_cases`: each recorded decision expects what it got);
a folder of hand-written cases is another.

Inputs whose values were masked before they were recorded are replayed as recorded: the
policy that decided saw other values there, so the report counts them and flags each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from order3.audit.records import AuditEntry
from order3.audit.verify import StoredRecord
from order3.domain.decisions import parse_result
from order3.policy.engine import SETTINGS_PATH
from order3.policy.reevaluation import (
    ENTRYPOINT,
    NothingToReevaluate,
    batch_command,
    batch_results,
    recorded_decision,
)
from order3.policy.revisions import RevisionContent
from order3.storage.repositories import AuditFilter, count_audit, query_audit

REPLAYED = "policy.replayed"
"""The action of the one audit record a replay writes."""

BATCH_SIZE = 500
_OPA_TIMEOUT_SECONDS = 120
_PAGE = 1000
_MODULE_NAME = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.rego$")
_MODULES = "modules"

BatchEvaluator = Callable[[list[Any], dict[str, Any] | None], Awaitable[list[Any]]]
"""Decides a batch of inputs, with keys of ``data.settings`` replaced by the given settings
(or None for none): one raw result for each, None where undefined."""


class CandidateInvalid(ValueError):
    """The candidate's modules do not compile; ``problems`` names each module and error."""

    def __init__(self, problems: list[ModuleProblem]) -> None:
        super().__init__("; ".join(f"{p.module}: {p.message}" for p in problems))
        self.problems = problems


class ModuleProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One error OPA found in a candidate module."""

    module: str | None
    """The module's name; None when OPA's error is not in one."""
    message: str
    """OPA's message, with its error code and the line it is on."""


class Expectation(msgspec.Struct, frozen=True, kw_only=True):
    """What a decision came to: its outcome and the ids of the rules that decided."""

    outcome: Literal["allowed", "denied"]
    rules: list[str]


class ReplayCase(msgspec.Struct, frozen=True, kw_only=True):
    """A decision input to replay and what it is expected to come to."""

    name: str
    """How the report names the case: ``record 42``, or a corpus file name."""
    input: Any
    expected: Expectation
    masked: list[str] = []
    """JSON pointers into ``input`` whose recorded values are keyed hashes, not the values."""
    settings: dict[str, Any] | None = None
    """Keys of the candidate's ``data.settings`` replaced for this case only: how a corpus
    case reaches a rule that the shipped settings never let fire."""
    seq: int | None = None
    decision_id: str | None = None
    draft_id: str | None = None


class ChangedDecision(msgspec.Struct, frozen=True, kw_only=True):
    """A case the candidate would decide otherwise."""

    case: str
    seq: int | None
    decision_id: str | None
    draft_id: str | None
    action: str | None
    recorded: Expectation
    candidate: Expectation
    masked: list[str]


class RuleChange(msgspec.Struct, kw_only=True):
    """The changed decisions that went one way: same outcomes, same rules gained and lost."""

    from_outcome: str
    to_outcome: str
    rules_added: list[str]
    """Rule ids the candidate gives that were not given."""
    rules_removed: list[str]
    """Rule ids that were given and the candidate no longer gives."""
    decisions: list[ChangedDecision] = []


class FailedCase(msgspec.Struct, frozen=True, kw_only=True):
    """A case the candidate gave no usable result for."""

    case: str
    seq: int | None
    decision_id: str | None
    problem: str
    masked: list[str]


class ReplayCounts(msgspec.Struct, kw_only=True):
    replayed: int = 0
    unchanged: int = 0
    allowed_to_denied: int = 0
    denied_to_allowed: int = 0
    rules_changed: int = 0
    """Same outcome, other rule ids."""
    failed: int = 0
    """No usable result: undefined, malformed, or an error in OPA."""
    masked: int = 0
    """Replayed cases whose input was masked when it was recorded (counted in the others too)."""


class ReplayReport(msgspec.Struct, kw_only=True):
    candidate: str
    """The candidate's content hash: the policy revision id it will have once deployed."""
    counts: ReplayCounts = msgspec.field(default_factory=ReplayCounts)
    changes: list[RuleChange] = []
    """Most decisions first."""
    failures: list[FailedCase] = []


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """A policy set to replay under: module sources by file name, and the policy data."""

    modules: dict[str, str]
    data: Any

    @classmethod
    def from_directory(cls, folder: Path) -> Candidate:
        """Every ``.rego`` file under ``folder``, and ``settings/data.json`` as the data.

        Raises:
            ValueError: There is no module, or the data file is not JSON.
        """
        modules = {
            path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(folder.rglob("*.rego"))
            if not any(part.startswith(".") for part in path.relative_to(folder).parts)
        }
        if not modules:
            raise ValueError(f"{folder} holds no .rego module")
        data_file = folder / SETTINGS_PATH / "data.json"
        try:
            data = json.loads(data_file.read_text(encoding="utf-8")) if data_file.exists() else None
        except ValueError as exc:
            raise ValueError(f"{data_file} is not JSON: {exc}") from None

        return cls(modules=modules, data=data)

    def revision(self) -> str:
        """The content hash, computed as a policy revision id is (see `RevisionContent`)."""
        return RevisionContent.of(list(self.modules.values()), self.data).revision()

    def write(self, folder: Path) -> Path:
        """Lay the candidate out as ``opa eval --data`` loads it; return ``folder``.

        Raises:
            ValueError: A module name is not a relative path ending in ``.rego``.
        """
        for name, source in self.modules.items():
            if not valid_module_name(name):
                raise ValueError(f"module name `{name}` is not a relative path ending in .rego")
            path = folder / _MODULES / PurePosixPath(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
        if self.data is not None:
            (folder / SETTINGS_PATH).mkdir(parents=True, exist_ok=True)
            (folder / SETTINGS_PATH / "data.json").write_text(json.dumps(self.data), "utf-8")

        return folder


def valid_module_name(name: str) -> bool:
    """Whether ``name`` can name a candidate module: a relative path ending in ``.rego``."""
    return _MODULE_NAME.match(name) is not None


async def check_candidate(opa: Path, folder: Path) -> None:
    """Compile a `Candidate.write` folder with ``opa check``.

    Raises:
        CandidateInvalid: OPA found errors; each names the module it is in.
    """
    code, stdout, stderr = await _run(opa, ["check", "--format", "json", str(folder)], "")
    if code == 0:
        return
    try:
        errors = json.loads(stderr or stdout).get("errors") or []
    except (ValueError, AttributeError):
        errors = [{"message": (stderr or stdout).strip() or f"opa check exited with {code}"}]
    raise CandidateInvalid([_module_problem(error, folder) for error in errors])


async def evaluate_batch(
    opa: Path, folder: Path, inputs: list[Any], settings: dict[str, Any] | None = None
) -> list[Any]:
    """The raw decision for each input under the policy in ``folder``, with ``settings``
    merged over its ``data.settings`` when given; None where undefined.

    Runs ``opa eval`` as an asyncio subprocess, so the event loop stays free meanwhile.

    Raises:
        RuntimeError: ``opa eval`` failed; the message is OPA's.
    """
    command = batch_command(opa, folder, with_settings=settings is not None)
    stdin = json.dumps(inputs if settings is None else {"cases": inputs, "settings": settings})
    code, stdout, stderr = await _run(Path(command[0]), command[1:], stdin)

    return batch_results(code, stdout, stderr, len(inputs))


async def replay(
    cases: Iterable[ReplayCase] | AsyncIterable[ReplayCase],
    evaluate: BatchEvaluator,
    candidate: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Replay ``cases`` with ``evaluate`` (an async function of a batch of inputs, such as
    `evaluate_batch` bound to a candidate folder) and report what would change.

    ``progress`` is told how many cases each batch finished.
    """
    tally = _Tally(ReplayReport(candidate=candidate))
    batch: list[ReplayCase] = []
    async for case in _each(cases):
        batch.append(case)
        if len(batch) >= batch_size:
            await _replay_batch(batch, evaluate, tally)
            if progress is not None:
                progress(len(batch))
            batch = []
    if batch:
        await _replay_batch(batch, evaluate, tally)
        if progress is not None:
            progress(len(batch))

    return tally.finished()


async def recorded_cases(db: AsyncEngine, where: AuditFilter) -> AsyncIterator[ReplayCase]:
    """The decisions in the audit log that ``where`` selects and that have a result, as cases
    that expect what was recorded, in sequence order. Engine failures have no result."""
    after: int | None = None
    while True:
        async with db.connect() as connection:
            rows = await query_audit(connection, where, after=after, limit=_PAGE)
        for row in rows:
            case = _recorded_case(row)
            if case is not None:
                yield case
        if len(rows) < _PAGE:
            return
        after = rows[-1].seq


async def count_recorded(db: AsyncEngine, where: AuditFilter) -> int:
    """How many records `recorded_cases` would go through: those allowed or denied."""
    async with db.connect() as connection:
        groups = await count_audit(connection, where, ["outcome"])
    return sum(count for keys, count in groups if keys["outcome"] in ("allowed", "denied"))


def replay_entry(
    report: ReplayReport,
    *,
    workspace_id: str | None,
    actor: dict[str, str],
    filters: dict[str, str | None],
    source: str,
) -> AuditEntry:
    """The one audit record of a replay: the candidate, the filters and the counts.

    The changed decisions are not in it; the report that named them went to the caller.
    """
    return AuditEntry(
        workspace_id=workspace_id,
        actor=actor,
        action=REPLAYED,
        subject={"type": "policy_candidate", "id": report.candidate},
        details={
            "candidate": report.candidate,
            "source": source,
            "filters": filters,
            "counts": msgspec.to_builtins(report.counts),
        },
    )


class _Tally:
    def __init__(self, report: ReplayReport) -> None:
        self.report = report
        self._groups: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], RuleChange] = {}

    def compared(self, case: ReplayCase, raw: Any) -> None:
        counts = self.report.counts
        counts.replayed += 1
        counts.masked += bool(case.masked)
        if raw is None:
            self.failed(case, f"the decision is undefined under {ENTRYPOINT}", counted=True)
            return
        try:
            result = parse_result(raw)
        except ValueError as exc:
            self.failed(case, f"the candidate gave a {exc}", counted=True)
            return
        expected, got = case.expected, Expectation(outcome=result.outcome, rules=result.rules)
        if got == expected:
            counts.unchanged += 1
            return
        if expected.outcome == got.outcome:
            counts.rules_changed += 1
        elif got.outcome == "denied":
            counts.allowed_to_denied += 1
        else:
            counts.denied_to_allowed += 1
        self._group(expected, got).decisions.append(_changed(case, got))

    def failed(self, case: ReplayCase, problem: str, *, counted: bool = False) -> None:
        counts = self.report.counts
        if not counted:
            counts.replayed += 1
            counts.masked += bool(case.masked)
        counts.failed += 1
        self.report.failures.append(
            FailedCase(
                case=case.name,
                seq=case.seq,
                decision_id=case.decision_id,
                problem=problem,
                masked=case.masked,
            )
        )

    def finished(self) -> ReplayReport:
        self.report.changes = sorted(
            self._groups.values(),
            key=lambda g: (-len(g.decisions), g.from_outcome, g.rules_added, g.rules_removed),
        )
        return self.report

    def _group(self, expected: Expectation, got: Expectation) -> RuleChange:
        added = [rule for rule in got.rules if rule not in expected.rules]
        removed = [rule for rule in expected.rules if rule not in got.rules]
        key = (expected.outcome, got.outcome, tuple(added), tuple(removed))
        if key not in self._groups:
            self._groups[key] = RuleChange(
                from_outcome=expected.outcome,
                to_outcome=got.outcome,
                rules_added=added,
                rules_removed=removed,
                decisions=[],
            )
        return self._groups[key]


async def _replay_batch(batch: list[ReplayCase], evaluate: BatchEvaluator, tally: _Tally) -> None:
    by_settings: dict[str, list[ReplayCase]] = {}
    for case in batch:
        by_settings.setdefault(json.dumps(case.settings, sort_keys=True), []).append(case)
    for cases in by_settings.values():
        await _replay_alike(cases, evaluate, tally)


async def _replay_alike(batch: list[ReplayCase], evaluate: BatchEvaluator, tally: _Tally) -> None:
    """Replay cases that share their settings."""
    try:
        results = await evaluate([case.input for case in batch], batch[0].settings)
    except (RuntimeError, OSError, TimeoutError) as exc:
        if len(batch) == 1:
            tally.failed(batch[0], str(exc))
            return
        # One input that makes OPA fail must not hide the others: run them one by one.
        for case in batch:
            await _replay_alike([case], evaluate, tally)
        return
    for case, raw in zip(batch, results, strict=True):
        tally.compared(case, raw)


async def _each(
    cases: Iterable[ReplayCase] | AsyncIterable[ReplayCase],
) -> AsyncIterator[ReplayCase]:
    if isinstance(cases, AsyncIterable):
        async for case in cases:
            yield case
    else:
        for case in cases:
            yield case


async def _run(opa: Path, args: list[str], stdin: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(opa),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_OPA_TIMEOUT_SECONDS):
            stdout, stderr = await process.communicate(stdin.encode())
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    assert process.returncode is not None  # communicate() waits for the exit

    return process.returncode, stdout.decode(), stderr.decode()


def _module_problem(error: dict[str, Any], folder: Path) -> ModuleProblem:
    location = error.get("location") or {}
    message = str(error.get("message", "")).strip()
    if error.get("code"):
        message = f"{error['code']}: {message}"
    if location.get("row"):
        message += f" (line {location['row']})"
    module = None
    with contextlib.suppress(ValueError):
        module = Path(location.get("file", "")).relative_to(folder / _MODULES).as_posix()

    return ModuleProblem(module=module, message=message)


def _recorded_case(row: sa.Row[Any]) -> ReplayCase | None:
    stored = StoredRecord(
        seq=row.seq, body=row.body, hash=row.hash, signature=row.signature, key_id=row.key_id
    )
    try:
        decision = recorded_decision(stored)
    except (NothingToReevaluate, ValueError):
        return None
    body = json.loads(row.body)
    subject = body.get("subject") or {}

    return ReplayCase(
        name=f"record {row.seq}",
        input=decision.input,
        expected=Expectation(outcome=decision.result.outcome, rules=decision.result.rules),
        masked=decision.masked,
        seq=row.seq,
        decision_id=body["decision"].get("id"),
        draft_id=subject.get("id") if subject.get("type") == "draft" else None,
    )


def _changed(case: ReplayCase, got: Expectation) -> ChangedDecision:
    action = case.input.get("action") if isinstance(case.input, dict) else None
    return ChangedDecision(
        case=case.name,
        seq=case.seq,
        decision_id=case.decision_id,
        draft_id=case.draft_id,
        action=action if isinstance(action, str) else None,
        recorded=case.expected,
        candidate=got,
        masked=case.masked,
    )
