"""The embedded SQLite database when several service processes open it at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path

from order3.storage.database import create_engine


def _open_at(path: str, moment: float) -> str:
    """Connect through the service's engine at ``moment``; the journal mode it then reports,
    or the error that refused the connection."""

    async def journal_mode() -> str:
        engine = create_engine(f"sqlite:///{path}")
        try:
            async with engine.connect() as connection:
                mode = await connection.exec_driver_sql("PRAGMA journal_mode")
                return str(mode.scalar_one())
        finally:
            await engine.dispose()

    while time.time() < moment:
        pass
    try:
        return asyncio.run(journal_mode())
    except Exception as exc:  # the answer under test: which error refused the connection
        return f"{type(exc).__name__}: {exc}"


def test_services_starting_together_on_a_new_file_all_connect(tmp_path: Path) -> None:
    """Four processes open one new database file at the same moment, forty times over: every
    one connects and finds the file in write-ahead-log mode, though only one of them can
    switch it."""
    processes = 4
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for trial in range(40):
            path, moment = str(tmp_path / f"{trial}.db"), time.time() + 0.05
            modes = pool.starmap(_open_at, [(path, moment)] * processes, chunksize=1)
            assert modes == ["wal"] * processes, f"trial {trial}: {modes}"
