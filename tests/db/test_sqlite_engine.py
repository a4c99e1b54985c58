"""SQLite engines made beside an open one, in one process, with another process writing."""

from __future__ import annotations

from sqlalchemy import text

from db.engine import create_engine
from tests.support.other_process import execute_elsewhere


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

        await execute_elsewhere(url, "INSERT INTO notes VALUES (3)")
        assert {"clawfleet.db-wal", "clawfleet.db-shm"} <= {entry.name for entry in tmp_path.iterdir()}
        async with first.begin() as conn:
            await conn.execute(text("INSERT INTO notes VALUES (4)"))
            assert (await conn.execute(text("SELECT n FROM notes ORDER BY n"))).scalars().all() == [1, 2, 3, 4]
    finally:
        await first.dispose()
