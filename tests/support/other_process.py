"""A write to a test's database by another process, as a second replica or a script would make it."""

from __future__ import annotations

import asyncio
import sys

SCRIPT = (
    "import asyncio, sys\n"
    "from sqlalchemy import text\n"
    "from db.engine import create_engine\n"
    "async def main():\n"
    "    engine = create_engine(sys.argv[1])\n"
    "    async with engine.begin() as conn:\n"
    "        await conn.execute(text(sys.argv[2]))\n"
    "    await engine.dispose()\n"
    "asyncio.run(main())\n"
)


async def execute_elsewhere(database_url: str, statement: str) -> None:
    """Runs `statement` through the project's own engine in a new Python process, and waits."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SCRIPT, database_url, statement)
    assert await process.wait() == 0
