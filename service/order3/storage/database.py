"""Connecting to the database and bringing its schema up to date."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant works; it only has to be the same in every process migrating one database.
_MIGRATION_LOCK_KEY = 0x0DE3_A991

# How long a SQLite connection waits for a lock another connection holds, in seconds.
_SQLITE_LOCK_WAIT = 30


def normalize_url(url: str) -> str:
    """Pick the async driver for a plain ``sqlite://`` or ``postgresql://`` URL."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine for SQLite (WAL, foreign keys on) or PostgreSQL."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            connect_args={"timeout": _SQLITE_LOCK_WAIT},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it would cost a round trip on every checkout. Connections are recycled
    # instead, and a dead one fails its request, which the client retries.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine for single reads: autocommit on PostgreSQL, so a read costs one round trip
    with no BEGIN and no ROLLBACK when the connection goes back to the pool."""
    if is_sqlite(engine):
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _configure_sqlite(engine: AsyncEngine) -> None:
    # The driver's own implicit BEGIN cannot do savepoints or BEGIN IMMEDIATE; take over
    # transaction control so writers can ask for the write lock up front.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _use_write_ahead_log(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_LOCK_WAIT * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _use_write_ahead_log(cursor: Any) -> None:
    """Put the database file in WAL mode, which then stays with the file.

    Only a new file changes mode, and that needs the file to itself: while another process
    changes it (two services starting on one new file), SQLite answers "database is locked"
    at once instead of waiting out the busy timeout. So wait here, as a lock wait would.
    """
    deadline = time.monotonic() + _SQLITE_LOCK_WAIT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    """Upgrade the schema to ``revision``, the newest by default; safe to run from several
    processes."""
    async with engine.connect() as connection:
        if is_sqlite(engine):
            connection = await connection.execution_options(sqlite_begin="IMMEDIATE")
        async with connection.begin():
            if not is_sqlite(engine):
                await connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))


def make_revision(connection: sa.Connection, message: str) -> None:
    """Autogenerate a migration (a developer's tool, used from a Python shell)."""
    command.revision(_alembic_config(connection), message=message, autogenerate=True)
