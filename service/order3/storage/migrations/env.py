"""Alembic environment: migrations run on a connection the service hands over."""

from __future__ import annotations

from alembic import context

from order3.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `order3.storage.database.migrate`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
