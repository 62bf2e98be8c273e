"""``order3 audit reevaluate``: re-run recorded decisions under their policy revision."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from order3.audit.verify import StoredRecord
from order3.config import Settings
from order3.logging import configure_logging
from order3.policy.binary import OpaUnavailable, ensure_opa
from order3.policy.reevaluation import (
    NothingToReevaluate,
    RecordedDecision,
    Reevaluation,
    Reevaluator,
    recorded_decision,
)
from order3.policy.revisions import StoredRevision
from order3.storage.database import create_engine
from order3.storage.revisions import load_revisions, records_between

_BATCH = 500


class _Tally:
    def __init__(self) -> None:
        self.counts = {"confirmed": 0, "differs": 0, "not_rerun": 0}
        self.skipped = 0

    @property
    def ok(self) -> bool:
        return self.counts["differs"] == 0 and self.counts["not_rerun"] == 0


@click.command()
@click.argument("records", required=False, metavar="SEQ")
@click.option("--all", "every", is_flag=True, help="Re-run every recorded decision.")
@click.option(
    "--export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Re-run from this export file alone: no database, no network.",
)
@click.option(
    "--opa",
    "opa_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The opa binary to evaluate with (default: the one the service would use).",
)
def reevaluate(
    records: str | None, every: bool, export: Path | None, opa_path: Path | None
) -> None:
    """Re-run recorded decisions under the policy revision that made them.

    SEQ is a record's sequence number, or a range such as 10-40. Each decision's input is
    evaluated again with `opa eval` under its stored policy revision, and the outcome, rule
    ids and required approvals are compared with the recorded ones. Exits 1 when any
    decision differs or could not be re-run.
    """
    first, last = _span(records, every)
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    try:
        opa = opa_path or ensure_opa(build=False)
    except OpaUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="order3-reevaluate-") as workdir:
        reevaluator = Reevaluator(opa, Path(workdir))
        if export is not None:
            tally = _from_export(reevaluator, export, first, last, single=first == last)
        else:
            tally = asyncio.run(_from_database(reevaluator, settings, first, last))
    if first != last:
        _summarise(tally)
    if not tally.ok:
        raise SystemExit(1)


def _span(records: str | None, every: bool) -> tuple[int, int | None]:
    if every == (records is not None):
        raise click.UsageError("give either SEQ (a number or a range like 10-40) or --all")
    if records is None:
        return 1, None
    try:
        first_text, _, last_text = records.partition("-")
        first = int(first_text)
        last = int(last_text) if last_text else first
    except ValueError:
        raise click.BadParameter(f"expected N or N-M, got {records!r}", param_hint="SEQ") from None
    if first < 1 or last < first:
        raise click.BadParameter(f"{records!r} is not a range of records", param_hint="SEQ")
    return first, last


async def _from_database(
    reevaluator: Reevaluator, settings: Settings, first: int, last: int | None
) -> _Tally:
    db = create_engine(settings.resolved_database_url, pool_size=1)
    try:
        return await _run(reevaluator, records_between(db, first, last), first, last, db=db)
    finally:
        await db.dispose()


async def _run(
    reevaluator: Reevaluator,
    records: AsyncIterator[StoredRecord],
    first: int,
    last: int | None,
    *,
    db: AsyncEngine,
) -> _Tally:
    tally, seen = _Tally(), False
    batch: list[RecordedDecision] = []
    revisions: dict[str, StoredRevision] = {}
    async for record in records:
        seen = True
        decision = _decision(record, single=first == last, tally=tally)
        if decision is not None:
            batch.append(decision)
        if len(batch) >= _BATCH:
            revisions |= await load_revisions(db, _unloaded(batch, revisions))
            _report(reevaluator.reevaluate(batch, revisions), tally)
            batch = []
    if not seen and first == last:
        raise click.ClickException(f"there is no record {first}")
    revisions |= await load_revisions(db, _unloaded(batch, revisions))
    _report(reevaluator.reevaluate(batch, revisions), tally)
    return tally


def _from_export(
    reevaluator: Reevaluator, export: Path, first: int, last: int | None, *, single: bool
) -> _Tally:
    revisions = dict(_export_revisions(_export_lines(export)))
    tally, seen = _Tally(), False
    batch: list[RecordedDecision] = []
    for record in _export_records(_export_lines(export), first, last):
        seen = True
        decision = _decision(record, single=single, tally=tally)
        if decision is not None:
            batch.append(decision)
        if len(batch) >= _BATCH:
            _report(reevaluator.reevaluate(batch, revisions), tally)
            batch = []
    if not seen and single:
        raise click.ClickException(f"the export holds no record {first}")
    _report(reevaluator.reevaluate(batch, revisions), tally)
    return tally


def _decision(record: StoredRecord, *, single: bool, tally: _Tally) -> RecordedDecision | None:
    try:
        return recorded_decision(record)
    except NothingToReevaluate as exc:
        if single:
            raise click.ClickException(str(exc)) from None
        tally.skipped += 1
        return None
    except ValueError as exc:
        raise click.ClickException(f"record {record.seq} is not JSON: {exc}") from None


def _unloaded(batch: list[RecordedDecision], loaded: dict[str, StoredRevision]) -> set[str]:
    return {d.policy_revision for d in batch if d.policy_revision} - loaded.keys()


def _export_lines(export: Path) -> Iterator[dict[str, Any]]:
    with export.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                raise click.ClickException(f"{export}:{number} is not JSON") from None
            if isinstance(value, dict):
                yield value


def _export_revisions(lines: Iterable[dict[str, Any]]) -> Iterator[tuple[str, StoredRevision]]:
    for line in lines:
        if line.get("type") == "policy_revision":
            fields = {key: value for key, value in line.items() if key != "type"}
            try:
                stored = msgspec.convert(fields, StoredRevision)
            except msgspec.ValidationError as exc:
                raise click.ClickException(f"a policy revision line is malformed: {exc}") from None
            yield stored.revision, stored


def _export_records(
    lines: Iterable[dict[str, Any]], first: int, last: int | None
) -> Iterator[StoredRecord]:
    for line in lines:
        if line.get("type") != "record":
            continue
        fields = {key: value for key, value in line.items() if key != "type"}
        record = msgspec.convert(fields, StoredRecord)
        if record.seq >= first and (last is None or record.seq <= last):
            yield record


def _report(reports: list[Reevaluation], tally: _Tally) -> None:
    for report in reports:
        tally.counts[report.status] += 1
        click.echo(_describe(report))


def _describe(report: Reevaluation) -> str:
    head = f"record {report.seq}"
    revision = f"policy revision {report.policy_revision}"
    if report.status == "confirmed":
        lines = [
            f"{head}: confirmed under {revision}: {report.recorded.outcome} by "
            + ", ".join(report.recorded.rules)
        ]
    elif report.status == "differs":
        lines = [f"{head}: DIFFERS under {revision}", *(f"  {d}" for d in report.differences)]
    else:
        lines = [f"{head}: NOT RE-RUN: {report.problem}"]
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)


def _summarise(tally: _Tally) -> None:
    counts = tally.counts
    total = sum(counts.values())
    click.echo(
        f"{total} decisions: {counts['confirmed']} confirmed, {counts['differs']} differ, "
        f"{counts['not_rerun']} not re-run; {tally.skipped} records without a decision result"
    )
