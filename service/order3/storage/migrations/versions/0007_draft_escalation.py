"""When a pending draft is escalated, to whom, and when the sweep escalated it; an index
for what a requester submitted in a day (the agents' daily spend).

It also joins the policy data and inventory branches, so later migrations have one parent.

Revision ID: 0007
Revises: 0005, 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = ("0005", "0006")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drafts") as batch_op:
        batch_op.add_column(sa.Column("escalate_at", sa.String(length=27), nullable=True))
        batch_op.add_column(sa.Column("escalate_to", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.String(length=27), nullable=True))
        batch_op.create_index(
            "ix_drafts_workspace_id_requester_id", ["workspace_id", "requester_id", "created_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch_op:
        batch_op.drop_index("ix_drafts_workspace_id_requester_id")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("escalate_to")
        batch_op.drop_column("escalate_at")
