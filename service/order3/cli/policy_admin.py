"""``order3 policy-admin create``: the only way to a token that may change the policy data.

The policy data is global: every workspace decides under it. A workspace admin therefore
cannot grant the `policy` scope; the operator, who holds the database and the keys, does.
"""

from __future__ import annotations

import asyncio

import click

from order3.config import Settings
from order3.domain.errors import NotFound
from order3.logging import configure_logging
from order3.runtime import open_storage
from order3.workflow.access import AccessWorkflow, Principal, Token


@click.group("policy-admin")
def policy_admin() -> None:
    """Principals that may change the global policy data."""


@policy_admin.command("create")
@click.argument("workspace_id")
@click.option("--name", required=True, help="Name of the policy admin.")
def create(workspace_id: str, name: str) -> None:
    """Add a policy admin to WORKSPACE_ID and print its token (shown once)."""
    settings = Settings.from_env()
    configure_logging("warning", settings.log_format)
    try:
        principal, token = asyncio.run(_create(settings, workspace_id, name))
    except NotFound as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"policy admin: {principal.id} ({principal.name})")
    click.echo(f"token:        {token.secret}")
    click.echo("The token is shown once; keep it somewhere safe.", err=True)


async def _create(settings: Settings, workspace_id: str, name: str) -> tuple[Principal, Token]:
    async with open_storage(settings) as (db, _, appender):
        return await AccessWorkflow(db, appender).create_policy_admin(workspace_id, name)
