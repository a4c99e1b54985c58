"""Database errors on purpose, for the code that must outlive one: chosen statements fail the way
they fail when the connection drops or the database is locked (an OperationalError from the
driver), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Faults:
    left: int  # failures still to come
    failed: int = 0  # statements failed so far


@contextmanager
def failing_statements(engine: AsyncEngine, matches: Callable[[str], bool], times: int) -> Iterator[Faults]:
    """The next `times` statements whose SQL `matches` fail before they reach the database."""
    faults = Faults(times)

    def fail(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if faults.left > 0 and matches(statement):
            faults.left -= 1
            faults.failed += 1
            raise OperationalError(statement, parameters, Exception("the database went away (on purpose)"))

    event.listen(engine.sync_engine, "before_cursor_execute", fail)
    try:
        yield faults
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fail)


def releases_instance_lease(sql: str) -> bool:
    """The UPDATE that frees an instance's lease (db.leases.release_instance_lease); the one that
    takes it differs by its "lease_holder IS NULL OR ..." condition."""
    return sql.lstrip().startswith("UPDATE instances SET lease_holder") and "IS NULL" not in sql


def releases_named_lease(sql: str) -> bool:
    """The UPDATE that frees a named lease (db.leases.release_named_lease)."""
    return sql.lstrip().startswith("UPDATE leases SET holder=") and "IS NULL" not in sql and "expires_at" in sql
