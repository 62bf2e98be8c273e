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
SubjectId = sa.String(80)
"""What an audit record is about: a record id, or a content hash such as a policy revision."""
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
    sa.Column("escalate_at", Timestamp),
    sa.Column("escalate_to", sa.String(40)),
    sa.Column("escalated_at", Timestamp),
    sa.Index("ix_drafts_workspace_id_id", "workspace_id", "id"),
    sa.Index("ix_drafts_workspace_id_state", "workspace_id", "state", "id"),
)

spend_totals = sa.Table(
    "spend_totals",
    metadata,
    sa.Column("workspace_id", Id, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("measure", sa.String(30), primary_key=True),
    sa.Column("subject_id", Id, primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
)
"""Running totals of the spend the budget and agent rules weigh, moved in the transaction of
the draft change that moves them: what was executed at a location in a UTC month
(``period`` YYYY-MM) and what a requester submitted in a UTC day (YYYY-MM-DD)."""

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
    sa.Column("subject_id", SubjectId, nullable=False),
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

policy_data_versions = sa.Table(
    "policy_data_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", Id, nullable=False),
)
"""Every version of the policy data (``data.settings``), numbered from 1; the highest is the
current one. ``document`` is its RFC 8785 JSON, ``content_hash`` that text's hash."""

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

# ---- inventory ------------------------------------------------------------------------------
# Records are keyed by (workspace_id, id). Each has its owner (principal id and type) and a
# version that goes up by one with each change. A missing bin is stored as "" so that stock
# sums and keys need no NULL handling; the API shows it as null.

Code = sa.String(100)


def _owned() -> list[sa.Column[object]]:
    return [
        sa.Column("owner_id", Id, nullable=False),
        sa.Column("owner_type", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    ]


def _workspace() -> sa.Column[str]:
    return sa.Column("workspace_id", Id, sa.ForeignKey("workspaces.id"), primary_key=True)


items = sa.Table(
    "items",
    metadata,
    _workspace(),
    sa.Column("sku", Code, primary_key=True),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("unit", sa.String(20), nullable=False),
    sa.Column("unit_cost_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("category", sa.String(200), nullable=False),
    sa.Column("reorder_point", sa.Integer, nullable=False),
    sa.Column("reorder_quantity", sa.Integer, nullable=False),
    sa.Column("supplier_id", Code),
    *_owned(),
)

locations = sa.Table(
    "locations",
    metadata,
    _workspace(),
    sa.Column("id", Code, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    *_owned(),
)

bins = sa.Table(
    "bins",
    metadata,
    sa.Column("workspace_id", Id, primary_key=True),
    sa.Column("location_id", Code, primary_key=True),
    sa.Column("code", Code, primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.ForeignKeyConstraint(
        ["workspace_id", "location_id"], ["locations.workspace_id", "locations.id"]
    ),
)

suppliers = sa.Table(
    "suppliers",
    metadata,
    _workspace(),
    sa.Column("id", Code, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("lead_time_days", sa.Integer, nullable=False),
    *_owned(),
)

supplier_notes = sa.Table(
    "supplier_notes",
    metadata,
    _workspace(),
    sa.Column("id", Id, primary_key=True),
    sa.Column("supplier_id", Code, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    *_owned(),
)

purchase_orders = sa.Table(
    "purchase_orders",
    metadata,
    _workspace(),
    sa.Column("id", Code, primary_key=True),
    sa.Column("supplier_id", Code, nullable=False),
    sa.Column("location_id", Code, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("expected_date", sa.String(10)),
    *_owned(),
    sa.Index("ix_purchase_orders_workspace_id_state", "workspace_id", "state"),
)

purchase_order_lines = sa.Table(
    "purchase_order_lines",
    metadata,
    sa.Column("workspace_id", Id, primary_key=True),
    sa.Column("purchase_order_id", Code, primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("sku", Code, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_cost_minor", sa.BigInteger, nullable=False),
    sa.Column("received", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["workspace_id", "purchase_order_id"],
        ["purchase_orders.workspace_id", "purchase_orders.id"],
    ),
)

receipts = sa.Table(
    "receipts",
    metadata,
    _workspace(),
    sa.Column("id", Id, primary_key=True),
    sa.Column("purchase_order_id", Code, nullable=False),
    sa.Column("location_id", Code, nullable=False),
    sa.Column("closes", sa.Boolean, nullable=False),
    sa.Column("short", sa.Boolean, nullable=False),
    *_owned(),
)

receipt_lines = sa.Table(
    "receipt_lines",
    metadata,
    sa.Column("workspace_id", Id, primary_key=True),
    sa.Column("receipt_id", Id, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("sku", Code, nullable=False),
    sa.Column("bin", Code, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_cost_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.ForeignKeyConstraint(
        ["workspace_id", "receipt_id"], ["receipts.workspace_id", "receipts.id"]
    ),
)

stock_counts = sa.Table(
    "stock_counts",
    metadata,
    _workspace(),
    sa.Column("id", Id, primary_key=True),
    sa.Column("location_id", Code, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("due_date", sa.String(10)),
    *_owned(),
)

stock_count_lines = sa.Table(
    "stock_count_lines",
    metadata,
    sa.Column("workspace_id", Id, primary_key=True),
    sa.Column("count_id", Id, primary_key=True),
    sa.Column("sku", Code, primary_key=True),
    sa.Column("bin", Code, primary_key=True),
    sa.Column("book", sa.Integer),
    sa.Column("counted", sa.Integer),
    sa.ForeignKeyConstraint(
        ["workspace_id", "count_id"], ["stock_counts.workspace_id", "stock_counts.id"]
    ),
)

reservations = sa.Table(
    "reservations",
    metadata,
    _workspace(),
    sa.Column("id", Id, primary_key=True),
    sa.Column("sku", Code, nullable=False),
    sa.Column("location_id", Code, nullable=False),
    sa.Column("bin", Code, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("reference", sa.Text),
    *_owned(),
    sa.Index("ix_reservations_workspace_id_sku_state", "workspace_id", "sku", "state"),
)

stock_ledger = sa.Table(
    "stock_ledger",
    metadata,
    _workspace(),
    sa.Column("id", Id, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("sku", Code, nullable=False),
    sa.Column("location_id", Code, nullable=False),
    sa.Column("bin", Code, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("value_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference_type", sa.String(30), nullable=False),
    sa.Column("reference_id", Id, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("owner_id", Id, nullable=False),
    sa.Column("owner_type", sa.String(20), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(
        "ix_stock_ledger_workspace_id_sku_location_id_bin",
        "workspace_id",
        "sku",
        "location_id",
        "bin",
    ),
)
"""Append-only: movements are inserted and never updated or deleted. On hand and its value
are sums over it."""

inventory_exceptions = sa.Table(
    "inventory_exceptions",
    metadata,
    _workspace(),
    sa.Column("id", Id, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("condition", sa.String(300), nullable=False),
    sa.Column("active_condition", sa.String(300)),
    sa.Column("sku", Code),
    sa.Column("location_id", Code),
    sa.Column("supplier_id", Code),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", Json, nullable=False),
    sa.Column("dismissal", Json),
    sa.Column("draft_id", Id),
    sa.Column("resolved_at", Timestamp),
    *_owned(),
    sa.UniqueConstraint("workspace_id", "active_condition"),
    sa.Index("ix_inventory_exceptions_workspace_id_state", "workspace_id", "state", "id"),
)
"""``active_condition`` holds the condition key while the exception is open, drafted, or
dismissed and still true, and is NULL after: the unique constraint keeps one per condition."""
