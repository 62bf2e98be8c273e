"""``order3 audit``: verify the log, export it, and verify an export offline."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.export import verify_export
from order3.audit.keyfiles import create_private_key_file
from order3.audit.records import utc_timestamp
from order3.audit.signing import key_id_for, load_public_key
from order3.audit.verify import ChainVerifier, Report, available_cores
from order3.audit.witness import WitnessKey
from order3.cli.progress import progress_bar
from order3.config import Settings
from order3.domain.principals import PrincipalType
from order3.logging import configure_logging
from order3.runtime import load_signing_key, open_storage
from order3.storage.database import create_engine
from order3.storage.repositories import AuditFilter, count_audit, stream_audit_records
from order3.workflow.audit_export import ExportFormat, export_chunks, is_whole_log
from order3.workflow.audit_keys import trusted_keys
from order3.workflow.audit_log import AuditLog


@click.group()
def audit() -> None:
    """The audit log."""


@audit.command()
@click.argument("export", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="PEM public key to trust besides the configured signing key (repeatable).",
)
@click.option(
    "--earlier-checkpoint",
    type=click.Path(exists=True, path_type=Path),
    help="With EXPORT: a checkpoint note seen before, which the export must extend.",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="VKEY",
    help="With EXPORT: a witness (C2SP verifier key) whose cosignature the checkpoint must "
    "carry (repeatable).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes that check records (default: one per available core).",
)
def verify(
    export: Path | None,
    public_keys: tuple[Path, ...],
    earlier_checkpoint: Path | None,
    jobs: int | None,
    witnesses: tuple[str, ...],
) -> None:
    """Verify the log: the database's, or with EXPORT an export file, offline.

    Names the first bad record. An export is checked against its signed checkpoint and
    needs only the file and --public-key (each key the log has signed with, if it rotated
    its key): no database, no network. The database's log is checked with every key in its
    key registry.
    """
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    jobs = jobs or available_cores()
    keys: dict[str, Ed25519PublicKey] = {}
    for path in public_keys:
        key = load_public_key(path.read_bytes())
        keys[key_id_for(key)] = key
    if export is not None:
        _verify_export(export, keys, earlier_checkpoint, jobs, _witness_keys(witnesses))
        return
    if witnesses:
        raise click.UsageError("--witness checks an export's checkpoint: give EXPORT")
    if settings.signing_key_pem or settings.resolved_signing_key_file.exists():
        try:
            signing = load_signing_key(settings)
        except (OSError, ValueError) as exc:
            if not keys:
                raise click.ClickException(f"cannot read the signing key: {exc}") from None
        else:
            keys[signing.key_id] = signing.public_key
    report = asyncio.run(_verify(settings, keys, jobs))
    if report.failure is not None:
        click.echo(f"FAILED at record {report.failure.seq}: {report.failure.reason}", err=True)
        click.echo(f"{report.records} records before it verified.", err=True)
        raise SystemExit(1)
    click.echo(f"OK: {report.records} records verified; head {report.head_hash}")


def _verify_export(
    export: Path,
    keys: dict[str, Ed25519PublicKey],
    earlier_checkpoint: Path | None,
    jobs: int,
    witnesses: list[WitnessKey],
) -> None:
    if not keys:
        raise click.UsageError("give --public-key: each key the log has signed with")
    earlier = None if earlier_checkpoint is None else earlier_checkpoint.read_text()
    with export.open("rb") as lines:
        report = verify_export(
            lines, keys, keys.values(), earlier_note=earlier, witnesses=witnesses, jobs=jobs
        )
    if report.failure is not None:
        click.echo(f"FAILED at record {report.failure.seq}: {report.failure.reason}", err=True)
        raise SystemExit(1)
    if report.problem is not None:
        click.echo(f"FAILED: {report.problem}", err=True)
        raise SystemExit(1)
    click.echo(
        f"OK: {report.records} records verified against the signed checkpoint at size "
        f"{report.tree_size}, root {report.root_hash}"
    )


def _utc_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone offset; times are compared in UTC")
    return utc_timestamp(moment)


@audit.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the export.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ExportFormat]),
    default=ExportFormat.JSONL.value,
    show_default=True,
    help="jsonl verifies offline; csv is for spreadsheets.",
)
@click.option("--workspace", help="Only this workspace's records.")
@click.option("--since", callback=_utc_option, help="Recorded at or after this time.")
@click.option("--until", callback=_utc_option, help="Recorded before this time.")
@click.option("--actor", help="Only records of this principal.")
@click.option(
    "--principal-type",
    type=click.Choice([t.value for t in PrincipalType]),
    help="Only records of users, agents or integrations.",
)
@click.option("--draft", help="Only records about this draft.")
@click.option("--action", help="Only records of this action, such as decision.refused.")
@click.option("--outcome", help="Only records with this outcome: allowed, denied, error.")
@click.option("--rule", help="Only decisions this rule id took part in.")
@click.option("--policy-revision", help="Only decisions under this policy revision.")
@click.option(
    "--at-checkpoint",
    type=click.IntRange(min=1),
    help="Export against the stored checkpoint of this tree size, with the witness "
    "cosignatures it gathered, instead of signing a new one.",
)
def export_log(
    output: Path,
    fmt: str,
    workspace: str | None,
    at_checkpoint: int | None,
    **filters: str | None,
) -> None:
    """Sign a checkpoint and export the records it covers, with the policy revisions.

    With no filter the export is the whole log, checked as a chain; with filters each
    record carries its inclusion proof against the checkpoint. Memory stays flat.
    """
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    where = AuditFilter(workspace_id=workspace, **filters)
    asyncio.run(_export(settings, output, ExportFormat(fmt), where, at_checkpoint))


async def _export(
    settings: Settings,
    output: Path,
    fmt: ExportFormat,
    where: AuditFilter,
    at_checkpoint: int | None,
) -> None:
    async with open_storage(settings) as (db, key, appender):
        log = AuditLog(db, appender, key, settings.audit_origin)
        if at_checkpoint is None:
            checkpoint = await log.sign_checkpoint()
        else:
            stored = await log.checkpoints(limit=1, below=at_checkpoint + 1)
            if not stored or stored[0].tree_size != at_checkpoint:
                raise click.ClickException(f"no checkpoint of tree size {at_checkpoint} is stored")
            checkpoint = stored[0]
        total = checkpoint.tree_size
        if not is_whole_log(where):
            async with db.connect() as connection:
                [(_, total)] = await count_audit(connection, where, [])
        progress = progress_bar("exporting")
        exported = 0
        with output.open("wb") as out, progress:
            task = progress.add_task("records", total=total)
            async for chunk in export_chunks(log, db, checkpoint, where, fmt):
                out.write(chunk.data)
                exported += chunk.records
                progress.advance(task, chunk.records)
    click.echo(
        f"exported {exported} records of the log at checkpoint size {checkpoint.tree_size} "
        f"to {output}"
    )


async def _verify(settings: Settings, keys: dict[str, Ed25519PublicKey], jobs: int) -> Report:
    db = create_engine(settings.resolved_database_url)
    try:
        verifier = ChainVerifier({**await trusted_keys(db), **keys}, jobs=jobs)
        async for record in stream_audit_records(db):
            if not verifier.feed(record):
                break
    finally:
        await db.dispose()
    return verifier.report()


@audit.command("public-key")
def public_key() -> None:
    """Print the PEM public key that verifies the records this service signs."""
    settings = Settings.from_env()
    if not (settings.signing_key_pem or settings.resolved_signing_key_file.exists()):
        raise click.ClickException(f"no signing key at {settings.resolved_signing_key_file}")
    click.echo(load_signing_key(settings).public_pem(), nl=False)


def _witness_keys(vkeys: tuple[str, ...]) -> list[WitnessKey]:
    try:
        return [WitnessKey.parse(vkey) for vkey in vkeys]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--witness") from None


@audit.command("new-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def new_key(path: Path) -> None:
    """Write a new Ed25519 signing key to PATH (mode 0600) and print its key id.

    To rotate the signing key, point ORDER3_SIGNING_KEY_FILE at PATH and restart: the
    service retires the key it signed with until then and records the new one.
    """
    try:
        key = create_private_key_file(path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; a key file is never overwritten") from None
    click.echo(key_id_for(key.public_key()))
