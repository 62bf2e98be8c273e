"""What one short read costs the service's process in CPU, by the way it reaches PostgreSQL.

A decision runs about a dozen statements, and half of the service's CPU goes to the database
layer. This prints the CPU this process spends per primary-key read, over a throwaway cluster
(or ``--postgres-url``) reached by its Unix socket:

- through SQLAlchemy on one connection held throughout, as the audit appender's batch runs;
- through SQLAlchemy with a pooled connection checked out per read from the service's own
  read engine (`order3.storage.database.reader`), as a request's reads do;
- through psycopg directly, on one connection, with no SQLAlchemy in between.

    .venv/bin/python benchmarks/statement_cost.py [--reads 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from order3.storage.database import create_engine, reader  # noqa: E402
from support.servers import PostgresServer, libpq_url  # noqa: E402

ROWS = 1000
items = sa.table("items", sa.column("id", sa.Integer), sa.column("name", sa.String))
BY_ID = sa.select(items.c.name).where(items.c.id == sa.bindparam("id"))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def per_read(reads: int, read: Callable[[int], Awaitable[object]]) -> float:
    """CPU microseconds per call of ``read``, after a warm-up that lets psycopg prepare."""
    for n in range(100):
        await read(n)
    started = cpu_seconds()
    for n in range(reads):
        await read(n)
    return 1e6 * (cpu_seconds() - started) / reads


async def measure(url: str, reads: int) -> list[tuple[str, float]]:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE items (id int PRIMARY KEY, name text)"))
        await connection.execute(
            sa.text("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, :rows) g"),
            {"rows": ROWS},
        )
    figures = []
    async with engine.connect() as held:

        async def on_held_connection(n: int) -> object:
            return (await held.execute(BY_ID, {"id": n % ROWS + 1})).all()

        held_cost = await per_read(reads, on_held_connection)
        figures.append(("SQLAlchemy, one held connection", held_cost))

    reads_engine = reader(engine)

    async def checked_out(n: int) -> object:
        async with reads_engine.connect() as connection:
            return (await connection.execute(BY_ID, {"id": n % ROWS + 1})).all()

    checkout_cost = await per_read(reads, checked_out)
    figures.append(("SQLAlchemy, a pooled read connection each", checkout_cost))
    await engine.dispose()

    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as raw:

        async def direct(n: int) -> object:
            cursor = await raw.execute("SELECT name FROM items WHERE id = %s", (n % ROWS + 1,))
            return await cursor.fetchall()

        figures.append(("psycopg, one connection", await per_read(reads, direct)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    with PostgresServer() as postgres:
        url = args.postgres_url or postgres.over_unix_socket(postgres.create_database("reads"))
        figures = asyncio.run(measure(url, args.reads))
    table = Table(title=f"CPU per primary-key read in this process ({args.reads} reads each)")
    table.add_column("path")
    table.add_column("µs per read", justify="right")
    for label, micros in figures:
        table.add_row(label, f"{micros:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
