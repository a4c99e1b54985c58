"""Usage written down: every model call the gateway forwards is added to its instance's row for
the day (UTC), model and key (the owner's or the platform's), in batches, so recording never holds up a stream.

Calls are summed in memory and flushed every `flush_interval_s` (and on close) as one upsert
per row that changed: additions, never overwrites, so several platform processes flushing
the same row add up. What is not flushed yet still counts for spending caps (`pending_micro_usd`).
A flush that fails keeps its sums for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import date

import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import KEY_OWN, ModelUsage
from db.types import utcnow
from metrics import Metrics
from model_gateway.prices import PriceTable
from model_gateway.usage import Usage

log = structlog.get_logger(__name__)

MAX_MODEL_NAME = 128  # the column's width
_Key = tuple[uuid.UUID, date, str, str]  # instance, day, model, key source: one row of model_usage


@dataclass(frozen=True)
class Call:
    """One forwarded model call, as metered."""

    instance_id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    model: str
    usage: Usage | None  # None: the provider reported none (an error, a cut stream)
    failed: bool
    key_source: str = KEY_OWN  # whose key it went out with


@dataclass
class _Sum:
    user_id: uuid.UUID
    provider: str
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    errors: int = 0
    cost_micro_usd: int = 0


class UsageBook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], prices: PriceTable,
                 flush_interval_s: float = 1.0, metrics: Metrics | None = None) -> None:
        self.sessions = sessions
        self.metrics = metrics or Metrics()  # the platform's; a registry of its own otherwise (unscraped)
        self.prices = prices
        self.flush_interval_s = flush_interval_s
        self._sums: dict[_Key, _Sum] = {}
        self._flushing: dict[_Key, _Sum] = {}  # taken by a flush under way
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def record(self, call: Call) -> int:
        """Count the call (no I/O); what it cost, in micro-dollars."""
        model = (call.model or "unknown")[:MAX_MODEL_NAME]
        key = (call.instance_id, utcnow().date(), model, call.key_source)
        entry = self._sums.get(key)
        if entry is None:
            entry = self._sums[key] = _Sum(call.user_id, call.provider)
        cost = self.prices.cost_micro_usd(call.provider, model, call.usage) if call.usage else 0
        if call.usage is not None:
            entry.usage = entry.usage + call.usage
        entry.requests += 1
        entry.errors += int(call.failed)
        entry.cost_micro_usd += cost
        self._count(call)
        return cost

    def _count(self, call: Call) -> None:
        """The call in the metrics (clawfleet_model_*): by provider, an id of the providers table."""
        self.metrics.model_requests.labels(call.provider).inc()
        if call.failed:
            self.metrics.model_errors.labels(call.provider).inc()
        if call.usage is not None:
            for kind, tokens in (("input", call.usage.input_tokens), ("output", call.usage.output_tokens),
                                 ("cache_read", call.usage.cache_read_tokens),
                                 ("cache_write", call.usage.cache_write_tokens)):
                self.metrics.model_tokens.labels(call.provider, kind).inc(tokens)

    def pending_micro_usd(self, user_id: uuid.UUID, since: date, key_source: str | None = None) -> int:
        """What the user's calls since `since` (on keys of `key_source`; None: any) cost that is
        not in the database yet."""
        return sum(entry.cost_micro_usd for sums in (self._sums, self._flushing)
                   for (_, day, _, source), entry in sums.items()
                   if entry.user_id == user_id and day >= since and key_source in (None, source))

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="model-usage-flush")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except Exception:  # the database away a moment: the sums wait for the next round
                log.exception("could not write model usage; kept for the next try")

    async def flush(self) -> None:
        async with self._lock:
            if not self._sums:
                return
            self._flushing, self._sums = self._sums, {}
            try:
                async with self.sessions() as session:
                    for key, entry in self._flushing.items():
                        await session.execute(_upsert(session, key, entry))
                    await session.commit()
                    self._flushing = {}  # in the database now: never counted twice by pending_micro_usd
            except BaseException:
                for key, entry in self._flushing.items():  # back in, merged with what came meanwhile
                    self._merge(key, entry)
                raise
            finally:
                self._flushing = {}

    def _merge(self, key: _Key, entry: _Sum) -> None:
        current = self._sums.get(key)
        if current is None:
            self._sums[key] = entry
            return
        current.usage = current.usage + entry.usage
        current.requests += entry.requests
        current.errors += entry.errors
        current.cost_micro_usd += entry.cost_micro_usd


def _upsert(session: AsyncSession, key: _Key, entry: _Sum):
    instance_id, day, model, key_source = key
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    added = {
        "input_tokens": entry.usage.input_tokens, "output_tokens": entry.usage.output_tokens,
        "cache_read_tokens": entry.usage.cache_read_tokens, "cache_write_tokens": entry.usage.cache_write_tokens,
        "requests": entry.requests, "errors": entry.errors, "cost_micro_usd": entry.cost_micro_usd,
    }
    statement = insert(ModelUsage).values(id=uuid.uuid4(), user_id=entry.user_id, instance_id=instance_id, day=day,
                                          provider=entry.provider, model=model, key_source=key_source,
                                          **added)
    table = ModelUsage.__table__
    return statement.on_conflict_do_update(
        index_elements=[table.c.instance_id, table.c.day, table.c.model, table.c.key_source],
        set_={name: table.c[name] + statement.excluded[name] for name in added})
