"""Inventory records, the append-only stock ledger, and exceptions with their evidence.

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import SchemaItem

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.String(length=40)
_CODE = sa.String(length=100)
_TIME = sa.String(length=27)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _workspace(table: str) -> list[SchemaItem]:
    return [
        sa.Column("workspace_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces")
        ),
    ]


def _owned() -> list[SchemaItem]:
    return [
        sa.Column("owner_id", _ID, nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    ]


def _child_of(table: str, parent: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id", column],
        [f"{parent}.workspace_id", f"{parent}.id"],
        name=op.f(f"fk_{table}_workspace_id_{parent}"),
    )


def _primary_key(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def upgrade() -> None:
    op.create_table(
        "items",
        *_workspace("items"),
        sa.Column("sku", _CODE, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("reorder_point", sa.Integer(), nullable=False),
        sa.Column("reorder_quantity", sa.Integer(), nullable=False),
        sa.Column("supplier_id", _CODE, nullable=True),
        *_owned(),
        _primary_key("items", "workspace_id", "sku"),
    )
    op.create_table(
        "locations",
        *_workspace("locations"),
        sa.Column("id", _CODE, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        *_owned(),
        _primary_key("locations", "workspace_id", "id"),
    )
    op.create_table(
        "bins",
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("location_id", _CODE, nullable=False),
        sa.Column("code", _CODE, nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        _child_of("bins", "locations", "location_id"),
        _primary_key("bins", "workspace_id", "location_id", "code"),
    )
    op.create_table(
        "suppliers",
        *_workspace("suppliers"),
        sa.Column("id", _CODE, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        *_owned(),
        _primary_key("suppliers", "workspace_id", "id"),
    )
    op.create_table(
        "supplier_notes",
        *_workspace("supplier_notes"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("supplier_id", _CODE, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        *_owned(),
        _primary_key("supplier_notes", "workspace_id", "id"),
    )
    op.create_table(
        "purchase_orders",
        *_workspace("purchase_orders"),
        sa.Column("id", _CODE, nullable=False),
        sa.Column("supplier_id", _CODE, nullable=False),
        sa.Column("location_id", _CODE, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("expected_date", sa.String(length=10), nullable=True),
        *_owned(),
        _primary_key("purchase_orders", "workspace_id", "id"),
    )
    op.create_index(
        "ix_purchase_orders_workspace_id_state", "purchase_orders", ["workspace_id", "state"]
    )
    op.create_table(
        "purchase_order_lines",
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("purchase_order_id", _CODE, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sku", _CODE, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        _child_of("purchase_order_lines", "purchase_orders", "purchase_order_id"),
        _primary_key("purchase_order_lines", "workspace_id", "purchase_order_id", "line"),
    )
    op.create_table(
        "receipts",
        *_workspace("receipts"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("purchase_order_id", _CODE, nullable=False),
        sa.Column("location_id", _CODE, nullable=False),
        sa.Column("closes", sa.Boolean(), nullable=False),
        sa.Column("short", sa.Boolean(), nullable=False),
        *_owned(),
        _primary_key("receipts", "workspace_id", "id"),
    )
    op.create_table(
        "receipt_lines",
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("receipt_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sku", _CODE, nullable=False),
        sa.Column("bin", _CODE, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _child_of("receipt_lines", "receipts", "receipt_id"),
        _primary_key("receipt_lines", "workspace_id", "receipt_id", "position"),
    )
    op.create_table(
        "stock_counts",
        *_workspace("stock_counts"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("location_id", _CODE, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("due_date", sa.String(length=10), nullable=True),
        *_owned(),
        _primary_key("stock_counts", "workspace_id", "id"),
    )
    op.create_table(
        "stock_count_lines",
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("count_id", _ID, nullable=False),
        sa.Column("sku", _CODE, nullable=False),
        sa.Column("bin", _CODE, nullable=False),
        sa.Column("book", sa.Integer(), nullable=True),
        sa.Column("counted", sa.Integer(), nullable=True),
        _child_of("stock_count_lines", "stock_counts", "count_id"),
        _primary_key("stock_count_lines", "workspace_id", "count_id", "sku", "bin"),
    )
    op.create_table(
        "reservations",
        *_workspace("reservations"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("sku", _CODE, nullable=False),
        sa.Column("location_id", _CODE, nullable=False),
        sa.Column("bin", _CODE, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        *_owned(),
        _primary_key("reservations", "workspace_id", "id"),
    )
    op.create_index(
        "ix_reservations_workspace_id_sku_state", "reservations", ["workspace_id", "sku", "state"]
    )
    op.create_table(
        "stock_ledger",
        *_workspace("stock_ledger"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sku", _CODE, nullable=False),
        sa.Column("location_id", _CODE, nullable=False),
        sa.Column("bin", _CODE, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference_type", sa.String(length=30), nullable=False),
        sa.Column("reference_id", _ID, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("owner_id", _ID, nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        _primary_key("stock_ledger", "workspace_id", "id"),
    )
    op.create_index(
        "ix_stock_ledger_workspace_id_sku_location_id_bin",
        "stock_ledger",
        ["workspace_id", "sku", "location_id", "bin"],
    )
    op.create_table(
        "inventory_exceptions",
        *_workspace("inventory_exceptions"),
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("condition", sa.String(length=300), nullable=False),
        sa.Column("active_condition", sa.String(length=300), nullable=True),
        sa.Column("sku", _CODE, nullable=True),
        sa.Column("location_id", _CODE, nullable=True),
        sa.Column("supplier_id", _CODE, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", _JSON, nullable=False),
        sa.Column("dismissal", _JSON, nullable=True),
        sa.Column("draft_id", _ID, nullable=True),
        sa.Column("resolved_at", _TIME, nullable=True),
        *_owned(),
        _primary_key("inventory_exceptions", "workspace_id", "id"),
        sa.UniqueConstraint(
            "workspace_id",
            "active_condition",
            name=op.f("uq_inventory_exceptions_workspace_id_active_condition"),
        ),
    )
    op.create_index(
        "ix_inventory_exceptions_workspace_id_state",
        "inventory_exceptions",
        ["workspace_id", "state", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_inventory_exceptions_workspace_id_state", "inventory_exceptions")
    op.drop_table("inventory_exceptions")
    op.drop_index("ix_stock_ledger_workspace_id_sku_location_id_bin", "stock_ledger")
    op.drop_table("stock_ledger")
    op.drop_index("ix_reservations_workspace_id_sku_state", "reservations")
    for table in (
        "reservations",
        "stock_count_lines",
        "stock_counts",
        "receipt_lines",
        "receipts",
        "purchase_order_lines",
    ):
        op.drop_table(table)
    op.drop_index("ix_purchase_orders_workspace_id_state", "purchase_orders")
    for table in ("purchase_orders", "supplier_notes", "suppliers", "bins", "locations", "items"):
        op.drop_table(table)
