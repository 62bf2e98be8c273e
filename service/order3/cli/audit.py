"""``order3 audit``: verify the log, export it, and verify an export offline."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from order3.audit.export import checkpoint_line, record_line, verify_export
from order3.audit.signing import key_id_for, load_public_key
from order3.audit.verify import ChainVerifier, Report
from order3.config import Settings
from order3.logging import configure_logging
from order3.runtime import load_signing_key, open_storage
from order3.storage.database import create_engine
from order3.storage.repositories import stream_audit_records
from order3.storage.revisions import revision_lines
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
def verify(
    export: Path | None, public_keys: tuple[Path, ...], earlier_checkpoint: Path | None
) -> None:
    """Verify the log: the database's, or with EXPORT an export file, offline.

    Names the first bad record. An export is checked against its signed checkpoint and
    needs only the file and --public-key: no database, no network.
    """
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    keys: dict[str, Ed25519PublicKey] = {}
    for path in public_keys:
        key = load_public_key(path.read_bytes())
        keys[key_id_for(key)] = key
    if export is not None:
        _verify_export(export, keys, earlier_checkpoint)
        return
    if settings.signing_key_pem or settings.resolved_signing_key_file.exists():
        try:
            signing = load_signing_key(settings)
        except (OSError, ValueError) as exc:
            if not keys:
                raise click.ClickException(f"cannot read the signing key: {exc}") from None
        else:
            keys[signing.key_id] = signing.public_key
    report = asyncio.run(_verify(settings, keys))
    if report.failure is not None:
        click.echo(f"FAILED at record {report.failure.seq}: {report.failure.reason}", err=True)
        click.echo(f"{report.records} records before it verified.", err=True)
        raise SystemExit(1)
    click.echo(f"OK: {report.records} records verified; head {report.head_hash}")


def _verify_export(
    export: Path, keys: dict[str, Ed25519PublicKey], earlier_checkpoint: Path | None
) -> None:
    if len(keys) != 1:
        raise click.UsageError("give exactly one --public-key: the key the log signs with")
    [log_key] = keys.values()
    earlier = None if earlier_checkpoint is None else earlier_checkpoint.read_text()
    with export.open("rb") as lines:
        report = verify_export(lines, keys, log_key, earlier_note=earlier)
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


@audit.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the JSON Lines export.",
)
def export_log(output: Path) -> None:
    """Sign a checkpoint and export it with every record it covers, as JSON Lines."""
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    asyncio.run(_export(settings, output))


async def _export(settings: Settings, output: Path) -> None:
    async with open_storage(settings) as (db, key, appender):
        log = AuditLog(db, appender, key, settings.audit_origin)
        checkpoint = await log.sign_checkpoint()
        progress = Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not sys.stderr.isatty(),
        )
        with output.open("wb") as out, progress:
            task = progress.add_task("records", total=checkpoint.tree_size)
            out.write(checkpoint_line(checkpoint))
            out.writelines([line async for line in revision_lines(db, checkpoint.tree_size)])
            async for record in stream_audit_records(db):
                if record.seq > checkpoint.tree_size:
                    break
                out.write(record_line(record))
                progress.advance(task)
    click.echo(f"exported {checkpoint.tree_size} records and their checkpoint to {output}")


async def _verify(settings: Settings, keys: dict[str, Ed25519PublicKey]) -> Report:
    verifier = ChainVerifier(keys)
    db = create_engine(settings.resolved_database_url)
    try:
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
