"""The ``order3`` command: serve, create workspaces, verify the audit log, manage OPA."""

from __future__ import annotations

import click

from order3.cli.audit import audit
from order3.cli.demo import demo
from order3.cli.opa import opa
from order3.cli.policy import policy
from order3.cli.policy_admin import policy_admin
from order3.cli.reevaluate import reevaluate
from order3.cli.serve import serve
from order3.cli.witness import witness
from order3.cli.workspace import workspace


@click.group()
@click.version_option(package_name="order3-approvals")
def main() -> None:
    """Order3 Approvals: drafts of inventory work, decided by OPA, recorded in a signed log.

    Settings come from ORDER3_* environment variables (see the README).
    """


main.add_command(serve)
main.add_command(workspace)
main.add_command(demo)
main.add_command(audit)
audit.add_command(reevaluate)
main.add_command(opa)
main.add_command(policy)
main.add_command(witness)
main.add_command(policy_admin)
