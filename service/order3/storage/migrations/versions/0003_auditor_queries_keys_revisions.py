"""Auditor queries by decision, rule and policy revision; key windows; policy revisions;
witness cosignatures.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch_op:
        batch_op.add_column(sa.Column("decision_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("policy_revision", sa.String(length=71), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_records_decision_id"), ["decision_id"]
        )
        batch_op.create_index(batch_op.f("ix_audit_records_policy_revision"), ["policy_revision"])
    op.create_table(
        "audit_record_rules",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["audit_records.seq"],
            name=op.f("fk_audit_record_rules_seq_audit_records"),
        ),
        sa.PrimaryKeyConstraint("seq", "rule_id", name=op.f("pk_audit_record_rules")),
    )
    op.create_index("ix_audit_record_rules_rule_id", "audit_record_rules", ["rule_id", "seq"])
    op.create_table(
        "audit_cosignatures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("signature_line", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["audit_checkpoints.id"],
            name=op.f("fk_audit_cosignatures_checkpoint_id_audit_checkpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_cosignatures")),
        sa.UniqueConstraint(
            "checkpoint_id", "witness", name=op.f("uq_audit_cosignatures_checkpoint_id_witness")
        ),
    )
    op.create_table(
        "audit_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("activated_at", sa.String(length=27), nullable=False),
        sa.Column("retired_at", sa.String(length=27), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_audit_keys")),
    )
    op.create_table(
        "policy_revisions",
        sa.Column("revision", sa.String(length=71), nullable=False),
        sa.Column("engine", sa.String(length=40), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.String(length=27), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_policy_revisions")),
    )


def downgrade() -> None:
    op.drop_table("policy_revisions")
    op.drop_table("audit_keys")
    op.drop_table("audit_cosignatures")
    op.drop_index("ix_audit_record_rules_rule_id", table_name="audit_record_rules")
    op.drop_table("audit_record_rules")
    with op.batch_alter_table("audit_records") as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_records_policy_revision"))
        batch_op.drop_constraint(batch_op.f("uq_audit_records_decision_id"), type_="unique")
        batch_op.drop_column("policy_revision")
        batch_op.drop_column("decision_id")
