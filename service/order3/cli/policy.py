"""``order3 policy``: check, test and replay policies before they decide anything."""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from order3.cli.audit import _utc_option
from order3.cli.progress import progress_bar
from order3.config import REPO_ROOT, Settings
from order3.logging import configure_logging
from order3.policy.binary import OpaUnavailable, ensure_opa
from order3.policy.corpus import CorpusInvalid, corpus_cases
from order3.policy.replay import (
    Candidate,
    CandidateInvalid,
    ReplayReport,
    check_candidate,
    count_recorded,
    evaluate_batch,
    recorded_cases,
    replay,
    replay_entry,
)
from order3.runtime import open_storage
from order3.storage.repositories import AuditFilter

_POLICY_DIR = REPO_ROOT / "policies"
_CLI_ACTOR = {"id": "cli", "type": "system"}
_TIMEOUT_SECONDS = 300

_directory = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group()
def policy() -> None:
    """Check, test and replay Rego policies."""


@dataclass(frozen=True)
class _Step:
    name: str
    passed: bool | None
    """None when the step was skipped; ``output`` then says why."""
    output: str = ""


@policy.command()
@click.argument("directory", required=False, type=_directory, default=_POLICY_DIR)
@click.option("--opa", "opa_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(directory: Path, opa_path: Path | None) -> None:
    """Compile strictly, check formatting, and lint with Regal when it is installed.

    DIRECTORY defaults to policies/. Exits 1 when any step fails.
    """
    opa = _opa(opa_path)
    steps = [_strict(opa, directory), _formatted(opa, directory), _regal(directory)]
    for step in steps:
        if step.passed is None:
            click.echo(f"{step.name:<22} skipped: {step.output}")
            continue
        click.echo(f"{step.name:<22} {'ok' if step.passed else 'FAILED'}")
        if step.output:
            click.echo(_indented(step.output))
    if any(step.passed is False for step in steps):
        raise SystemExit(1)


@policy.command()
@click.argument("directory", required=False, type=_directory, default=_POLICY_DIR)
@click.option("--opa", "opa_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def test(directory: Path, opa_path: Path | None) -> None:
    """Run the policy tests with coverage: the total, and every file below 100%.

    DIRECTORY defaults to policies/. A failing test is shown with its trace, as `opa test -v`
    shows it; the exit code is opa's.
    """
    opa = _opa(opa_path)
    answer = _run([str(opa), "test", "--coverage", "-v", str(directory)])
    # With --coverage, OPA prints the coverage report only when every test passed, and the
    # verbose failure listing otherwise.
    coverage = _json(answer.stdout) if answer.returncode == 0 else None
    if coverage is None:
        click.echo(answer.stdout + answer.stderr, nl=False)
        raise SystemExit(answer.returncode or 1)
    click.echo(f"all tests passed; coverage {coverage.get('coverage', 0):.2f}%")
    for name, file in sorted(coverage.get("files", {}).items()):
        # OPA leaves a file's coverage out when it is zero.
        percent = file.get("coverage", 0 if file.get("not_covered") else 100)
        if percent < 100:
            lines = _ranges(file.get("not_covered") or [])
            click.echo(
                f"  {_relative(name, directory)}: {percent:.2f}%, not covered: lines {lines}"
            )


@policy.command("replay")
@click.option("--candidate", required=True, type=_directory, help="The policy set to replay under.")
@click.option("--since", callback=_utc_option, help="Decisions recorded at or after this time.")
@click.option("--until", callback=_utc_option, help="Decisions recorded before this time.")
@click.option("--workspace", help="Only this workspace's decisions.")
@click.option(
    "--corpus",
    type=_directory,
    help="Replay the cases of this decision corpus (such as policies/corpus) instead.",
)
@click.option("--opa", "opa_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def replay_command(
    candidate: Path,
    since: str | None,
    until: str | None,
    workspace: str | None,
    corpus: Path | None,
    opa_path: Path | None,
) -> None:
    """Replay recorded decisions under a candidate policy set and report what would change.

    The candidate is a directory laid out like policies/: its .rego modules, and its policy
    data in settings/data.json. Each recorded decision's input is evaluated under it, and
    every decision whose outcome or rule ids would change is listed, grouped by the rules
    that changed. Nothing is changed; one audit record (policy.replayed) notes the run.

    With --corpus, the corpus cases are replayed instead, each expecting the outcome and
    rules it names; no database is opened and nothing is recorded, and the exit code is 1
    when any case would change or fails to evaluate.
    """
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    if corpus is not None and (since or until or workspace):
        raise click.UsageError("--since, --until and --workspace select recorded decisions")
    opa = _opa(opa_path)
    try:
        policy_set = Candidate.from_directory(candidate)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if corpus is not None:
        report = asyncio.run(_replay_corpus(opa, policy_set, corpus))
        _print_report(report, None)
        if report.changes or report.failures:
            raise SystemExit(1)
        return
    where = AuditFilter(workspace_id=workspace, since=since, until=until)
    report, seq = asyncio.run(_replay(settings, opa, policy_set, where))
    _print_report(report, seq)


async def _replay(
    settings: Settings, opa: Path, candidate: Candidate, where: AuditFilter
) -> tuple[ReplayReport, int]:
    async with open_storage(settings) as (db, _, appender):
        with tempfile.TemporaryDirectory(prefix="order3-replay-") as workdir:
            folder = await _compiled(opa, candidate, Path(workdir))
            with progress_bar("replaying") as progress:
                task = progress.add_task("decisions", total=await count_recorded(db, where))
                report = await replay(
                    recorded_cases(db, where),
                    functools.partial(evaluate_batch, opa, folder),
                    candidate.revision(),
                    progress=lambda done: progress.advance(task, done),
                )
        filters = {"workspace_id": where.workspace_id, "since": where.since, "until": where.until}
        entry = replay_entry(
            report,
            workspace_id=where.workspace_id,
            actor=_CLI_ACTOR,
            filters=filters,
            source="audit_log",
        )
        [record] = await appender.record([entry])

    return report, record.seq


async def _replay_corpus(opa: Path, candidate: Candidate, corpus: Path) -> ReplayReport:
    try:
        cases = list(corpus_cases(corpus))
    except (OSError, CorpusInvalid) as exc:
        raise click.ClickException(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="order3-replay-") as workdir:
        folder = await _compiled(opa, candidate, Path(workdir))
        with progress_bar("replaying") as progress:
            task = progress.add_task("cases", total=len(cases))
            return await replay(
                cases,
                functools.partial(evaluate_batch, opa, folder),
                candidate.revision(),
                progress=lambda done: progress.advance(task, done),
            )


async def _compiled(opa: Path, candidate: Candidate, workdir: Path) -> Path:
    """The candidate laid out in ``workdir``, once ``opa check`` has compiled it."""
    folder = candidate.write(workdir)
    try:
        await check_candidate(opa, folder)
    except CandidateInvalid as exc:
        problems = "\n".join(f"  {p.module or '(candidate)'}: {p.message}" for p in exc.problems)
        raise click.ClickException(f"the candidate does not compile:\n{problems}") from None

    return folder


def _print_report(report: ReplayReport, seq: int | None) -> None:
    console = Console(highlight=False, soft_wrap=True)
    for group in report.changes:
        rules = [f"+{rule}" for rule in group.rules_added]
        rules += [f"-{rule}" for rule in group.rules_removed]
        count = len(group.decisions)
        console.print(
            f"{group.from_outcome} -> {group.to_outcome}: {' '.join(rules)} "
            f"({count} decision{'s' if count != 1 else ''})",
            markup=False,
        )
        for decision in group.decisions:
            facts = [decision.case, decision.action, decision.draft_id, decision.decision_id]
            line = "  " + "  ".join(fact for fact in facts if fact)
            if decision.masked:
                line += "  [masked: " + ", ".join(decision.masked) + "]"
            console.print(line, markup=False)
    for failure in report.failures:
        masked = "  [masked]" if failure.masked else ""
        console.print(f"failed: {failure.case}: {failure.problem}{masked}", markup=False)
    counts = report.counts
    table = Table(title=f"Replay under {report.candidate}", title_justify="left")
    table.add_column("decisions")
    table.add_column("count", justify="right")
    for label, value in [
        ("replayed", counts.replayed),
        ("unchanged", counts.unchanged),
        ("would change allowed -> denied", counts.allowed_to_denied),
        ("would change denied -> allowed", counts.denied_to_allowed),
        ("same outcome, other rules", counts.rules_changed),
        ("failed to evaluate", counts.failed),
        ("with masked inputs", counts.masked),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    if seq is not None:
        console.print(f"recorded as audit record {seq} (policy.replayed)", markup=False)


def _strict(opa: Path, directory: Path) -> _Step:
    answer = _run([str(opa), "check", "--strict", str(directory)])
    return _Step("opa check --strict", answer.returncode == 0, answer.stdout + answer.stderr)


def _formatted(opa: Path, directory: Path) -> _Step:
    # `opa fmt --diff` marks changes by colour alone, which is lost in a log or a pipe; the
    # files it would change are listed instead, each with a unified diff.
    listed = _run([str(opa), "fmt", "--list", "--fail", str(directory)])
    files = [line for line in listed.stdout.splitlines() if line.strip()]
    if listed.returncode != 0 and not files:
        return _Step("opa fmt", False, listed.stderr)
    diffs = [_format_diff(opa, Path(name)) for name in files]
    return _Step("opa fmt", not files, "".join(diffs))


def _format_diff(opa: Path, file: Path) -> str:
    formatted = _run([str(opa), "fmt", str(file)]).stdout
    original = file.read_text(encoding="utf-8")
    return "".join(
        difflib.unified_diff(
            original.splitlines(keepends=True),
            formatted.splitlines(keepends=True),
            fromfile=str(file),
            tofile=f"{file} (opa fmt)",
        )
    )


def _regal(directory: Path) -> _Step:
    regal = shutil.which("regal")
    if regal is None:
        return _Step("regal lint", None, "regal is not on the PATH")
    answer = _run([regal, "lint", str(directory)])
    return _Step("regal lint", answer.returncode == 0, answer.stdout + answer.stderr)


def _opa(given: Path | None) -> Path:
    try:
        return given or ensure_opa(build=False)
    except OpaUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - an argv list, no shell
        argv, capture_output=True, text=True, check=False, timeout=_TIMEOUT_SECONDS
    )


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _ranges(spans: list[dict[str, Any]]) -> str:
    rows = []
    for span in spans:
        first, last = span["start"]["row"], span["end"]["row"]
        rows.append(str(first) if first == last else f"{first}-{last}")
    return ", ".join(dict.fromkeys(rows))


def _relative(name: str, directory: Path) -> str:
    try:
        return Path(name).relative_to(directory).as_posix()
    except ValueError:
        return name


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())
