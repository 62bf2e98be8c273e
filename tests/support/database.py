"""Reading and changing a test service's database directly, outside the service."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from order3.config import Settings
from order3.storage.database import create_engine


def query(settings: Settings, statement: sa.Executable) -> list[Any]:
    """Run ``statement`` in its own committed transaction; the rows it returns, if any."""

    async def run() -> list[Any]:
        db = create_engine(str(settings.database_url), pool_size=1)
        try:
            async with db.begin() as connection:
                result = await connection.execute(statement)
                return list(result) if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(run())
