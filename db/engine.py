"""Engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from db.private_files import FILE_MODE, private_file
from db.read_cache import TableWrites


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine whose writes the read caches of this process see (db/read_cache.py), whichever
    engine of the same database they read through."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, echo=echo)
    else:
        engine = create_async_engine(parsed, echo=echo, pool_pre_ping=True)
    TableWrites.of(engine)
    return engine


def _sqlite_engine(url: URL, *, echo: bool) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        # Made 0600 before the first connection: SQLite gives its -wal and -shm files this mode.
        # An existing file is only chmod-ed, never opened: closing any descriptor of a database
        # that SQLite has open in this process drops all of this process's locks on it (POSIX),
        # and another process's last connection may then delete the WAL from under it.
        database = Path(url.database)
        if database.exists():
            os.chmod(database, FILE_MODE)
        else:
            private_file(database)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        # WAL: readers never block the writer; foreign keys are off in SQLite unless asked.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names when it does not exist (an engine would create it); None for
    any other database, or a file that is there."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    database = Path(parsed.database)
    return None if database.exists() else database


def describe_url(url: str) -> str:
    """The URL for humans and logs: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)
