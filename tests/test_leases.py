"""Leases: one holder at a time, across sessions (as across processes), on both databases."""

import asyncio
from datetime import timedelta

from db.leases import (
    acquire_instance_lease,
    acquire_named_lease,
    release_instance_lease,
    release_named_lease,
)
from db.models import Instance
from tests.builders import new_instance, new_user

MINUTE = timedelta(minutes=1)


async def _stored_instance(sessions, keyring) -> Instance:
    user = new_user()
    instance = new_instance(keyring, user)
    async with sessions() as session:
        session.add_all([user, instance])
        await session.commit()
    return instance


async def test_an_instance_lease_has_one_holder(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    async with sessions() as a, sessions() as b:
        assert await acquire_instance_lease(a, instance.id, "web-1", MINUTE)
        assert not await acquire_instance_lease(b, instance.id, "web-2", MINUTE)
        assert await acquire_instance_lease(a, instance.id, "web-1", MINUTE)  # renewal
        await release_instance_lease(a, instance.id, "web-1")
        assert await acquire_instance_lease(b, instance.id, "web-2", MINUTE)


async def test_an_expired_instance_lease_can_be_taken_over(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    async with sessions() as a, sessions() as b:
        assert await acquire_instance_lease(a, instance.id, "dead-process", timedelta(seconds=-1))
        assert await acquire_instance_lease(b, instance.id, "web-2", MINUTE)
        await release_instance_lease(a, instance.id, "dead-process")  # not its lease any more
        assert not await acquire_instance_lease(a, instance.id, "web-3", MINUTE)


async def test_releasing_someone_elses_lease_does_nothing(sessions, keyring) -> None:
    instance = await _stored_instance(sessions, keyring)
    async with sessions() as a:
        assert await acquire_instance_lease(a, instance.id, "web-1", MINUTE)
        await release_instance_lease(a, instance.id, "web-2")
        assert not await acquire_instance_lease(a, instance.id, "web-2", MINUTE)


async def test_racing_for_a_named_lease_gives_exactly_one_winner(sessions) -> None:
    async def contender(holder: str) -> bool:
        async with sessions() as session:
            return await acquire_named_lease(session, "reconciler", holder, MINUTE)

    results = await asyncio.gather(*(contender(f"process-{n}") for n in range(6)))
    assert sorted(results) == [False] * 5 + [True]


async def test_a_named_lease_is_free_again_once_released(sessions) -> None:
    async with sessions() as session:
        assert await acquire_named_lease(session, "telegram-polling", "a", MINUTE)
        assert not await acquire_named_lease(session, "telegram-polling", "b", MINUTE)
        await release_named_lease(session, "telegram-polling", "a")
        assert await acquire_named_lease(session, "telegram-polling", "b", MINUTE)
