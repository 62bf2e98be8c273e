"""The tables. Times are stored as fixed-width RFC 3339 UTC text so they sort the same way
in SQLite and PostgreSQL; money as integer minor units beside its currency code."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.String(40)
Timestamp = sa.String(27)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("workspace_id", Id, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("roles", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("workspace_id", Id, sa.ForeignKey("workspaces.id"), nullable=False, index=True),
    sa.Column("principal_id", Id, sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("secret_hash", sa.String(71), nullable=False, unique=True),
    sa.Column("scopes", Json, nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp),
)

drafts = sa.Table(
    "drafts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("workspace_id", Id, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("rationale", sa.Text, nullable=False),
    sa.Column("affected_records", Json, nullable=False),
    sa.Column("approval_owner_id", Id, nullable=False),
    sa.Column("requester_id", Id, nullable=False),
    sa.Column("requester_type", sa.String(20), nullable=False),
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("required", Json, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("execution", Json),
    sa.Index("ix_drafts_workspace_id_id", "workspace_id", "id"),
    sa.Index("ix_drafts_workspace_id_state", "workspace_id", "state", "id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("workspace_id", Id, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("draft_id", Id, sa.ForeignKey("drafts.id"), nullable=False, index=True),
    sa.Column("approver_id", Id, nullable=False),
    sa.Column("approver_type", sa.String(20), nullable=False),
    sa.Column("approver_roles", Json, nullable=False),
    sa.Column("verdict", sa.String(10), nullable=False),
    sa.Column("role", sa.String(40)),
    sa.Column("comment", sa.Text),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("decided_at", Timestamp, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("workspace_id", Id, primary_key=True),
    sa.Column("principal_id", Id, primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(71), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response_body", sa.LargeBinary),
    sa.Column("created_at", Timestamp, nullable=False),
)

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("recorded_at", Timestamp, nullable=False, index=True),
    sa.Column("workspace_id", Id),
    sa.Column("actor_id", Id, nullable=False, index=True),
    sa.Column("actor_type", sa.String(20), nullable=False),
    sa.Column("action", sa.String(40), nullable=False, index=True),
    sa.Column("subject_type", sa.String(30), nullable=False),
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("draft_id", Id, index=True),
    sa.Column("outcome", sa.String(20)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("hash", sa.String(71), nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("decision_id", Id, unique=True),
    sa.Column("policy_revision", sa.String(71), index=True),
    sa.Index("ix_audit_records_workspace_id_seq", "workspace_id", "seq"),
)

audit_record_rules = sa.Table(
    "audit_record_rules",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.ForeignKey("audit_records.seq"), primary_key=True),
    sa.Column("rule_id", sa.String(200), primary_key=True),
    sa.Index("ix_audit_record_rules_rule_id", "rule_id", "seq"),
)
"""The ids of the rules that decided each record, so auditors can search and count by rule."""

audit_chain_head = sa.Table(
    "audit_chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(71), nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(200), nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False, index=True),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

audit_cosignatures = sa.Table(
    "audit_cosignatures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("checkpoint_id", sa.Integer, sa.ForeignKey("audit_checkpoints.id"), nullable=False),
    sa.Column("witness", sa.String(200), nullable=False),
    sa.Column("signature_line", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("checkpoint_id", "witness"),
)
"""Witness cosignatures of checkpoints: one C2SP signed-note signature line each."""

audit_keys = sa.Table(
    "audit_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("activated_at", Timestamp, nullable=False),
    sa.Column("retired_at", Timestamp),
)
"""Public keys that have signed records, with their validity windows. Private keys are never
stored: they come from a file or the environment."""

policy_revisions = sa.Table(
    "policy_revisions",
    metadata,
    sa.Column("revision", sa.String(71), primary_key=True),
    sa.Column("engine", sa.String(40), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("first_seen_at", Timestamp, nullable=False),
)
"""Every policy set that decided, content-addressed: ``revision`` is the hash of ``content``
(RFC 8785 JSON of the modules and the policy data), so a decision can be re-run under it."""
