"""Reads kept in memory for a moment, cleared by the writes that could change them.

Every request of the API and the dashboard starts with the same two reads (who holds this token,
and the instance asked for), and each costs a round trip through the driver's thread or socket,
far more than the rest of the request. A `ReadCache` keeps such a read's result for a few
seconds, keyed by what was asked, and names the tables the result comes from.

What clears it is the database traffic itself, not the code that writes: every INSERT, UPDATE
or DELETE (and anything that is not a plain read, DDL or text SQL included) sent through any
engine of this process on the same database is noticed by an engine event, and the tables it
touched get a new generation once the connection that wrote goes back to the pool, which is
after its commit or rollback. An entry of an older generation is never served, and a read that
a write overlapped is never kept; so within a process a write is seen by the very next read,
however it was made (a revocation path nobody remembered, a database cascade from `users`,
an operator's script run in-process). Writes by another process are not seen: the time to live
bounds how long they can go unnoticed.

A write that only notes something no cached read answers for (a token's last use) says so with
the execution option `READ_CACHE_EXEMPT`, so it does not clear everything each minute.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

READ_CACHE_EXEMPT = "read_cache_exempt"
READ_CACHE_TTL_S = 2.0  # the default: how long another process's write can go unseen
EVERY_TABLE = "*"  # what a statement whose tables are unknown (text SQL, DDL) wrote
READ_VERBS = frozenset({"SELECT", "PRAGMA", "SHOW", "EXPLAIN", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT",
                        "RELEASE", "SET"})  # of text SQL; a WITH may hold a DELETE, so it counts as a write
WRITTEN = "clawfleet.read_cache.written"  # on a pooled connection's info: (tables, when the first went)
FORGOTTEN_AFTER_S = 60.0  # a write whose connection never came back counts as ended after this


class TableWrites:
    """Which tables this process has written on one database, as generations: a table's number
    goes up each time a connection that wrote it goes back to the pool."""

    _by_database: dict[str, TableWrites] = {}

    def __init__(self) -> None:
        self._generations: dict[str, int] = {}
        self._open: dict[int, tuple[frozenset[str], float]] = {}  # pooled connection -> its writes so far
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()

    @classmethod
    def of(cls, engine: AsyncEngine | Engine) -> TableWrites:
        """The one watcher of `engine`'s database in this process; the engine is watched from now on."""
        sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        key = sync_engine.url.render_as_string(hide_password=False)
        writes = cls._by_database.setdefault(key, cls())
        if sync_engine not in writes._engines:
            writes._engines.add(sync_engine)
            event.listen(sync_engine, "after_cursor_execute", writes._executed)
            event.listen(sync_engine, "checkin", writes._returned)
        return writes

    def stamp(self, tables: frozenset[str]) -> tuple[int, ...] | None:
        """The generations of `tables` now; None while a connection that wrote one of them is
        still out (what is read then may be about to change)."""
        self._forget_lost_writes()
        for written, _ in self._open.values():
            if EVERY_TABLE in written or not written.isdisjoint(tables):
                return None
        everything = self._generations.get(EVERY_TABLE, 0)
        return (everything, *(self._generations.get(table, 0) for table in sorted(tables)))

    def current(self, tables: frozenset[str], stamp: tuple[int, ...]) -> bool:
        everything = self._generations.get(EVERY_TABLE, 0)
        return stamp == (everything, *(self._generations.get(table, 0) for table in sorted(tables)))

    # -- engine events (they run on the event loop's thread, between awaits) -------------------
    def _executed(self, conn, _cursor, statement: str, _parameters, context, _executemany) -> None:
        if context is not None and context.execution_options.get(READ_CACHE_EXEMPT):
            return
        tables = _tables_written(statement, context)
        if not tables:
            return
        info = conn.info  # the pooled connection's own, the same dict its checkin sees
        before, since = info.get(WRITTEN, (frozenset(), time.monotonic()))
        info[WRITTEN] = (before | tables, since)
        self._open[id(info)] = info[WRITTEN]

    def _returned(self, _dbapi_connection, record) -> None:
        if record is not None and WRITTEN in record.info:
            tables, _ = record.info.pop(WRITTEN)
            self._open.pop(id(record.info), None)
            self._bump(tables)

    def _bump(self, tables: frozenset[str]) -> None:
        for table in tables:
            self._generations[table] = self._generations.get(table, 0) + 1

    def _forget_lost_writes(self) -> None:
        """A connection lost with its writes pending (a task cancelled mid-reset, say) must not
        stop caching for good: after a while its writes count as ended."""
        if not self._open:
            return
        now = time.monotonic()
        for key, (tables, since) in list(self._open.items()):
            if now - since > FORGOTTEN_AFTER_S:
                del self._open[key]
                self._bump(tables)


def _tables_written(statement: str, context) -> frozenset[str]:
    """The tables a statement may have changed: that of a compiled INSERT, UPDATE or DELETE,
    none for a compiled or plain-text read, and every table for anything else."""
    if context is not None:
        if context.isddl:
            return frozenset({EVERY_TABLE})
        if context.isinsert or context.isupdate or context.isdelete:
            table = getattr(getattr(context.compiled, "statement", None), "table", None)
            name = getattr(table, "name", None)
            return frozenset({name}) if isinstance(name, str) else frozenset({EVERY_TABLE})
        if not context.is_text:
            return frozenset()
    verb = statement.lstrip()[:10].split(None, 1)[0].upper() if statement.strip() else ""
    return frozenset() if verb in READ_VERBS else frozenset({EVERY_TABLE})


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    stamp: tuple[int, ...]
    until: float


class ReadCache(Generic[K, V]):
    """Results of one kind of read, by key, from `tables`, each kept `ttl_s` seconds at most
    (0: nothing is kept). Only answers that are not None are kept, so unknown keys (a stranger's
    guesses at tokens, say) cost a read each and cannot fill it. Served values are shared by
    every reader: treat them as read-only.

    Readers of one key that miss together share one read (single flight): a busy key whose
    entry lapses would otherwise send every request in flight to the database at once. A reader
    joins a read only if nothing was written to `tables` since it began, so a write is still
    seen by the very next read."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None, tables: set[str] | frozenset[str], *,
                 ttl_s: float, max_entries: int = 10_000) -> None:
        self._sessions = sessions
        self.tables = frozenset(tables)
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[K, _Entry[V]] = {}
        self._reading: dict[K, tuple[tuple[int, ...], asyncio.Future[V | None]]] = {}  # key -> (stamp, read)
        self._writes: TableWrites | None = None

    async def get(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        if self.ttl_s <= 0:
            return await load()
        writes = self._watcher()
        entry = self._entries.get(key)
        if entry is not None:
            if entry.until > time.monotonic() and writes.current(self.tables, entry.stamp):
                return entry.value
            del self._entries[key]
        stamp = writes.stamp(self.tables)
        if stamp is None:  # a write is under way: read alone, keep nothing
            return await load()
        reading = self._reading.get(key)
        if reading is not None and reading[0] == stamp:
            return await asyncio.shield(reading[1])  # one reader's cancellation is not the others'
        read = asyncio.ensure_future(self._read(key, load, stamp))
        read.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved, if all left
        self._reading[key] = (stamp, read)
        return await asyncio.shield(read)

    async def _read(self, key: K, load: Callable[[], Awaitable[V | None]], stamp: tuple[int, ...]) -> V | None:
        writes = self._watcher()
        try:
            value = await load()
        finally:
            if self._reading.get(key, (None, None))[1] is asyncio.current_task():
                del self._reading[key]
        if value is not None and writes.current(self.tables, stamp):
            self._keep(key, _Entry(value, stamp, time.monotonic() + self.ttl_s))
        return value

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _keep(self, key: K, entry: _Entry[V]) -> None:
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest kept
        self._entries[key] = entry

    def _watcher(self) -> TableWrites:
        if self._writes is None:
            if self._sessions is None:
                raise RuntimeError("a read cache needs the session factory of its database")
            self._writes = TableWrites.of(self._sessions.kw["bind"])
        return self._writes
