"""``order3 demo load``: fill an empty workspace with a realistic inventory to look at."""

from __future__ import annotations

import asyncio

import click

from order3.config import Settings
from order3.domain.errors import Conflict, NotFound
from order3.logging import configure_logging
from order3.runtime import open_storage
from order3.workflow.inventory_demo import DemoSummary, load_demo


@click.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
@click.option("--workspace", "workspace_id", required=True, help="The id of an empty workspace.")
def load(workspace_id: str) -> None:
    """Load a few hundred items over three locations, suppliers in every status, open, late
    and short orders, a count that drifted and some reservations, all audited. Refuses a
    workspace that has inventory already."""
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    try:
        summary = asyncio.run(_load(settings, workspace_id))
    except (NotFound, Conflict) as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"loaded into {workspace_id} as integration {summary.principal_id} (demo-loader):")
    for name in ("items", "locations", "suppliers", "purchase_orders", "receipts", "counts"):
        click.echo(f"  {name.replace('_', ' ')}: {getattr(summary, name)}")
    click.echo(f"  reservations: {summary.reservations}")
    click.echo(f"  ledger movements: {summary.movements}")
    click.echo("Run exception detection (POST /v1/exceptions/detect) to see what needs attention.")


async def _load(settings: Settings, workspace_id: str) -> DemoSummary:
    async with open_storage(settings) as (_, _, appender):
        return await load_demo(appender, workspace_id)
