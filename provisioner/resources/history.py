"""Reading the samples the resource sampler wrote: one instance's last day (its chart), and
the latest sample of each running gateway (one primary-key row each)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import LatestResourceSample, ResourceSample
from db.types import utcnow
from provisioner.resources.sampler import KEPT


class ResourceHistory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def last_day(self, instance_id: uuid.UUID) -> list[ResourceSample]:
        """The instance's samples of the last 24 hours, oldest first."""
        async with self.sessions() as session:
            return list(await session.scalars(
                select(ResourceSample)
                .where(ResourceSample.instance_id == instance_id, ResourceSample.taken_at >= utcnow() - KEPT)
                .order_by(ResourceSample.taken_at)))

    async def latest(self, instance_ids: Iterable[uuid.UUID] | None = None) -> dict[uuid.UUID, LatestResourceSample]:
        """The latest sample of each running gateway (of `instance_ids` only, when given)."""
        query = select(LatestResourceSample)
        if instance_ids is not None:
            query = query.where(LatestResourceSample.instance_id.in_(list(instance_ids)))
        async with self.sessions() as session:
            return {row.instance_id: row for row in await session.scalars(query)}
