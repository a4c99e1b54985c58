"""SQLite engines made beside an open one, in one process, with another process writing."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import text

from db.engine import create_engine

OTHER_PROCESS_WRITES = (
    "import asyncio, sys\n"
    "from sqlalchemy import text\n"
    "from db.engine import create_engine\n"
    "async def main():\n"
    "    engine = create_engine(sys.argv[1])\n"
    "    async with engine.begin() as conn:\n"
    "        await conn.execute(text('INSERT INTO notes VALUES (3)'))\n"
    "    await engine.dispose()\n"
    "asyncio.run(main())\n"
)


async def test_a_second_engine_on_an_open_database_leaves_the_first_ones_locks(tmp_path) -> None:
    """A platform and a CLI command, or the tests and a platform, open one database file twice
    in one process. Opening and closing the file by hand would drop the process's POSIX locks
    on it, so another process's last connection would take itself for the last one anywhere
    and delete the WAL and shared-memory files still in use here ("disk I/O error" follows)."""
    path = tmp_path / "clawfleet.db"
    url = f"sqlite+aiosqlite:///{path}"
    first = create_engine(url)
    try:
        async with first.begin() as conn:
            await conn.execute(text("CREATE TABLE notes (n INTEGER)"))
            await conn.execute(text("INSERT INTO notes VALUES (1)"))
        second = create_engine(url)
        async with second.begin() as conn:
            await conn.execute(text("INSERT INTO notes VALUES (2)"))
        await second.dispose()

        writer = await asyncio.create_subprocess_exec(sys.executable, "-c", OTHER_PROCESS_WRITES, url)
        assert await writer.wait() == 0
        assert {"clawfleet.db-wal", "clawfleet.db-shm"} <= {entry.name for entry in tmp_path.iterdir()}
        async with first.begin() as conn:
            await conn.execute(text("INSERT INTO notes VALUES (4)"))
            assert (await conn.execute(text("SELECT n FROM notes ORDER BY n"))).scalars().all() == [1, 2, 3, 4]
    finally:
        await first.dispose()
