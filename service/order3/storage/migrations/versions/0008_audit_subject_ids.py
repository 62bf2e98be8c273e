"""Audit subjects named by a content hash: a policy candidate's id is its 71-character
``sha256:`` revision, longer than the 40 characters a record id takes.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch_op:
        batch_op.alter_column(
            "subject_id", existing_type=sa.String(length=40), type_=sa.String(length=80)
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_records") as batch_op:
        batch_op.alter_column(
            "subject_id", existing_type=sa.String(length=80), type_=sa.String(length=40)
        )
