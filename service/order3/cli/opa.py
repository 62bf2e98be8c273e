"""``order3 opa``: find or build the OPA binary the service runs."""

from __future__ import annotations

import sys

import click

from order3.policy.binary import OpaUnavailable, ensure_opa, find_opa


@click.group()
def opa() -> None:
    """Manage the Open Policy Agent binary."""


@opa.command()
def install() -> None:
    """Find OPA, or build the pinned version with Go; print its path."""
    try:
        binary = ensure_opa(build=True)
    except OpaUnavailable as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(str(binary))


@opa.command()
def where() -> None:
    """Print the path of the OPA binary the service would use."""
    binary = find_opa()
    if binary is None:
        click.echo("No OPA binary found; run `order3 opa install`.", err=True)
        sys.exit(1)
    click.echo(str(binary))
