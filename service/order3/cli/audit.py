"""``order3 audit verify``: recompute every hash, check every signature and the continuity."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from order3.audit.signing import key_id_for, load_public_key
from order3.audit.verify import ChainVerifier, Report
from order3.config import Settings
from order3.logging import configure_logging
from order3.runtime import load_signing_key
from order3.storage.database import create_engine
from order3.storage.repositories import stream_audit_records


@click.group()
def audit() -> None:
    """The audit log."""


@audit.command()
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="PEM public key to trust besides the configured signing key (repeatable).",
)
def verify(public_keys: tuple[Path, ...]) -> None:
    """Verify the whole audit chain in the database; name the first bad record."""
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    keys: dict[str, Ed25519PublicKey] = {}
    for path in public_keys:
        key = load_public_key(path.read_bytes())
        keys[key_id_for(key)] = key
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
