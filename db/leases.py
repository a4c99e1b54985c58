"""Leases: one holder at a time, taken with a conditional UPDATE (same on SQLite and PostgreSQL).

A holder that dies simply lets its lease expire; another process may then take it over.
Each call is its own committed transaction, so other processes see the lease at once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Instance, Lease
from db.types import utcnow


async def acquire_instance_lease(
    session: AsyncSession, instance_id: uuid.UUID, holder: str, ttl: timedelta
) -> bool:
    """Take (or renew) the instance's lease. True when `holder` now has it. Commits."""
    now = utcnow()
    result = await session.execute(
        update(Instance)
        .where(
            Instance.id == instance_id,
            or_(
                Instance.lease_holder.is_(None),
                Instance.lease_holder == holder,
                Instance.lease_expires_at < now,
            ),
        )
        .values(lease_holder=holder, lease_expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1


async def release_instance_lease(session: AsyncSession, instance_id: uuid.UUID, holder: str) -> None:
    await session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.lease_holder == holder)
        .values(lease_holder=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def acquire_named_lease(session: AsyncSession, name: str, holder: str, ttl: timedelta) -> bool:
    """Take (or renew) a singleton lease such as "reconciler". Commits."""
    if await session.scalar(select(Lease.id).where(Lease.name == name)) is None:
        try:
            async with session.begin_nested():
                session.add(Lease(name=name))
        except IntegrityError:
            pass  # another process created the row first
    now = utcnow()
    result = await session.execute(
        update(Lease)
        .where(
            Lease.name == name,
            or_(Lease.holder.is_(None), Lease.holder == holder, Lease.expires_at < now),
        )
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount == 1


async def release_named_lease(session: AsyncSession, name: str, holder: str) -> None:
    await session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
