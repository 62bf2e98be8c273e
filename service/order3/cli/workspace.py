"""``order3 workspace create``: the first workspace and its admin token."""

from __future__ import annotations

import asyncio

import click

from order3.config import Settings
from order3.logging import configure_logging
from order3.runtime import open_storage
from order3.workflow.access import AccessWorkflow, Principal, Token


@click.group()
def workspace() -> None:
    """Workspaces."""


@workspace.command("create")
@click.argument("name")
@click.option("--admin", "admin_name", required=True, help="Name of the first admin user.")
def create(name: str, admin_name: str) -> None:
    """Create a workspace with an admin user, and print that user's token (shown once)."""
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    workspace_id, admin, token = asyncio.run(_create(settings, name, admin_name))
    click.echo(f"workspace: {workspace_id}")
    click.echo(f"admin:     {admin.id} ({admin.name})")
    click.echo(f"token:     {token.secret}")
    click.echo("The token is shown once; keep it somewhere safe.", err=True)


async def _create(settings: Settings, name: str, admin_name: str) -> tuple[str, Principal, Token]:
    async with open_storage(settings) as (db, _, appender):
        return await AccessWorkflow(db, appender).create_workspace(name, admin_name)
