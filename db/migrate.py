"""Alembic, driven from code: `clawfleet migrate`, start-up of `serve`, and the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Replicas starting together against PostgreSQL migrate one at a time.
_PG_MIGRATION_LOCK = 0x0C1A_F1EE7


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revisions() -> list[str]:
    """Every revision this code knows, oldest first (the history is linear)."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await _lock_migrations(conn)
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def move_to(conn: AsyncConnection, revision: str) -> None:
    """Up or down to exactly `revision`, in the caller's transaction (a restore loads a backup into
    the schema it was taken from). Only for a database whose rows are about to be replaced:
    a downgrade drops what later revisions added."""
    await _lock_migrations(conn)
    known = revisions()
    current = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    if current is not None and current in known and known.index(current) > known.index(revision):
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
    else:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def _lock_migrations(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def pending_model_changes(engine: AsyncEngine) -> list[Any]:
    """What the models have that the migrated database lacks (empty when they agree)."""

    def compare(sync: Connection) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as conn:
        return await conn.run_sync(compare)
