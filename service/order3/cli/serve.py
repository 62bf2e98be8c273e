"""``order3 serve``: run the HTTP service."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import uvicorn

from order3.config import Settings
from order3.logging import configure_logging
from order3.policy.binary import OpaUnavailable, ensure_opa


@click.command()
@click.option("--host", default=None, help="Address to listen on [ORDER3_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [ORDER3_PORT, 8080].")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Service processes sharing the port (they share one audit chain).",
)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the API on embedded defaults unless ORDER3_* settings say otherwise."""
    settings = Settings.from_env(host=host, port=port)
    configure_logging(settings.log_level, settings.log_format)
    if settings.opa_url is None:
        try:
            binary = ensure_opa()
        except OpaUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        os.environ.setdefault("ORDER3_OPA_BINARY", str(binary))
    database = settings.resolved_database_url
    click.echo(f"Order3 Approvals listening on http://{settings.host}:{settings.port}")
    click.echo(f"  database: {database if database.startswith('sqlite') else 'postgresql'}")
    click.echo(f"  policy engine: {settings.opa_url or 'supervised OPA on loopback'}")
    command = Path(sys.argv[0]) if sys.argv[0].endswith("order3") else "order3"
    click.echo(f"  first admin token: {command} workspace create NAME --admin YOUR-NAME")
    # Each worker builds its own app from the same environment.
    os.environ["ORDER3_HOST"], os.environ["ORDER3_PORT"] = settings.host, str(settings.port)
    uvicorn.run(
        "order3.http.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
