"""Running spend totals: what was executed at a location in a month and what a requester
submitted in a day, kept as the drafts change instead of summed over drafts on every
decision. Existing drafts are counted in. The index that served the requester's daily sum
goes: nothing else reads drafts by requester.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")
_drafts = sa.table(
    "drafts",
    sa.column("workspace_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("state", sa.String),
    sa.column("payload", _json),
    sa.column("requester_id", sa.String),
    sa.column("amount_minor", sa.BigInteger),
    sa.column("currency", sa.String),
    sa.column("created_at", sa.String),
    sa.column("updated_at", sa.String),
)
_REQUESTER_INDEX = "ix_drafts_workspace_id_requester_id"
_columns = ["workspace_id", "measure", "subject_id", "period", "currency", "amount_minor"]


def upgrade() -> None:
    totals = op.create_table(
        "spend_totals",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("measure", sa.String(length=30), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_spend_totals_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "measure",
            "subject_id",
            "period",
            "currency",
            name=op.f("pk_spend_totals"),
        ),
    )
    priced = _drafts.c.amount_minor.is_not(None)
    day = sa.func.substr(_drafts.c.created_at, 1, 10)
    submitted = (
        sa.select(
            _drafts.c.workspace_id,
            sa.literal("submitted_by_requester"),
            _drafts.c.requester_id,
            day,
            _drafts.c.currency,
            sa.func.sum(_drafts.c.amount_minor),
        )
        .where(priced)
        .group_by(_drafts.c.workspace_id, _drafts.c.requester_id, day, _drafts.c.currency)
    )
    location = _drafts.c.payload["location_id"].as_string()
    month = sa.func.substr(_drafts.c.updated_at, 1, 7)
    executed = (
        sa.select(
            _drafts.c.workspace_id,
            sa.literal("executed_at_location"),
            location,
            month,
            _drafts.c.currency,
            sa.func.sum(_drafts.c.amount_minor),
        )
        .where(priced, _drafts.c.state == "executed", _drafts.c.kind == "purchase_order")
        .group_by(_drafts.c.workspace_id, location, month, _drafts.c.currency)
    )
    for counted in (submitted, executed):
        op.execute(totals.insert().from_select(_columns, counted))
    op.drop_index(_REQUESTER_INDEX, table_name="drafts")


def downgrade() -> None:
    op.create_index(_REQUESTER_INDEX, "drafts", ["workspace_id", "requester_id", "created_at"])
    op.drop_table("spend_totals")
