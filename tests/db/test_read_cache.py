"""The read cache on both databases: a kept read is served without the database, and every kind
of write to its tables, made any way in this process, makes the next read go to the database;
another process's writes are seen once the time to live is over."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import delete, select, text, update

from db.engine import create_engine, create_session_factory
from db.models import ApiToken, Instance, User
from db.read_cache import READ_CACHE_EXEMPT, ReadCache
from tests.support.builders import new_instance, new_user
from tests.support.other_process import execute_elsewhere

USER_TABLES = {"users"}


class CountedReads:
    """A user's email, read from the database, with a count of the reads."""

    def __init__(self, sessions, user_id) -> None:
        self.sessions, self.user_id, self.reads = sessions, user_id, 0

    async def __call__(self) -> str | None:
        self.reads += 1
        async with self.sessions() as session:
            return await session.scalar(select(User.email).where(User.id == self.user_id))


async def _user(sessions, **fields) -> User:
    user = new_user(**fields)
    async with sessions() as session:
        session.add(user)
        await session.commit()
    return user


async def test_a_kept_read_is_served_without_the_database(sessions) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), CountedReads(sessions, user.id)
    assert [await cache.get(user.id, read) for _ in range(5)] == ["ada@example.com"] * 5
    assert read.reads == 1


async def test_every_kind_of_write_to_its_table_is_seen_by_the_next_read(sessions) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), CountedReads(sessions, user.id)
    assert await cache.get(user.id, read) == "ada@example.com"

    async with sessions() as session:  # the ORM's unit of work
        row = await session.get(User, user.id)
        row.email = "orm@example.com"
        await session.commit()
    assert await cache.get(user.id, read) == "orm@example.com"

    async with sessions() as session:  # a Core statement
        await session.execute(update(User).where(User.id == user.id).values(email="core@example.com"))
        await session.commit()
    assert await cache.get(user.id, read) == "core@example.com"

    async with sessions() as session:  # text SQL: its tables are not known, so every cache is cleared
        await session.execute(text("UPDATE users SET email = 'text@example.com'"))
        await session.commit()
    assert await cache.get(user.id, read) == "text@example.com"

    engine = sessions.kw["bind"]
    async with engine.begin() as conn:  # a connection without a session
        await conn.execute(delete(User).where(User.id == user.id))
    assert await cache.get(user.id, read) is None
    assert read.reads == 5


async def test_a_cascade_from_a_table_it_names_is_seen(sessions) -> None:
    """Deleting a user deletes their tokens in the database, where no statement names the tokens:
    a cache of tokens names `users` too, for that."""
    user = await _user(sessions)
    async with sessions() as session:
        session.add(ApiToken(user_id=user.id, kind="api", name="script", token_hash="h" * 64, prefix="cf_x"))
        await session.commit()

    async def token_name() -> str | None:
        async with sessions() as session:
            return await session.scalar(select(ApiToken.name).where(ApiToken.token_hash == "h" * 64))

    cache = ReadCache(sessions, {"api_tokens", "users"}, ttl_s=60)
    assert await cache.get("h", token_name) == "script"
    async with sessions() as session:
        await session.execute(delete(User).where(User.id == user.id))
        await session.commit()
    assert await cache.get("h", token_name) is None


async def test_writes_to_other_tables_and_exempt_writes_keep_it(sessions, keyring) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), CountedReads(sessions, user.id)
    await cache.get(user.id, read)
    async with sessions() as session:
        session.add(new_instance(keyring, user))
        await session.execute(update(User).where(User.id == user.id).values(email="exempt@example.com")
                              .execution_options(**{READ_CACHE_EXEMPT: True}))
        await session.commit()
    assert await cache.get(user.id, read) == "ada@example.com"  # the exempt write said it changes nothing kept
    assert read.reads == 1


async def test_a_read_that_a_write_overlapped_is_not_kept(sessions) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), CountedReads(sessions, user.id)

    async with sessions() as writer:  # a write sent, not yet committed
        await writer.execute(update(User).where(User.id == user.id).values(email="new@example.com"))
        assert await cache.get(user.id, read) == "ada@example.com"  # what the database says meanwhile
        assert len(cache) == 0  # but not kept: it is about to change
        await writer.commit()
    assert await cache.get(user.id, read) == "new@example.com"

    async def read_across_a_commit() -> str | None:  # the write begins and ends while this reads
        value = await read()
        async with sessions() as session:
            await session.execute(update(User).where(User.id == user.id).values(email="later@example.com"))
            await session.commit()
        return value

    cache.forget(user.id)
    assert await cache.get(user.id, read_across_a_commit) == "new@example.com"
    assert await cache.get(user.id, read) == "later@example.com"


async def test_engines_of_one_database_share_what_they_saw(sessions, database_url) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), CountedReads(sessions, user.id)
    await cache.get(user.id, read)
    other = create_engine(database_url)
    try:
        async with create_session_factory(other)() as session:
            await session.execute(update(User).where(User.id == user.id).values(email="other@example.com"))
            await session.commit()
    finally:
        await other.dispose()
    assert await cache.get(user.id, read) == "other@example.com"


async def test_another_processes_write_is_seen_once_the_time_to_live_is_over(sessions, database_url) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=1.0), CountedReads(sessions, user.id)
    assert await cache.get(user.id, read) == "ada@example.com"
    kept_at = time.monotonic()
    await execute_elsewhere(database_url, "UPDATE users SET email = 'elsewhere@example.com'")
    if time.monotonic() - kept_at < 0.9:  # the process started fast enough to see the stale moment
        assert await cache.get(user.id, read) == "ada@example.com"
    await asyncio.sleep(max(0.0, kept_at + 1.05 - time.monotonic()))
    assert await cache.get(user.id, read) == "elsewhere@example.com"


async def test_none_is_never_kept_and_no_time_to_live_keeps_nothing(sessions) -> None:
    user = await _user(sessions)
    missing = CountedReads(sessions, new_user().id)
    cache = ReadCache(sessions, USER_TABLES, ttl_s=60)
    assert [await cache.get("nobody", missing) for _ in range(3)] == [None] * 3
    assert missing.reads == 3 and len(cache) == 0

    off, read = ReadCache(sessions, USER_TABLES, ttl_s=0), CountedReads(sessions, user.id)
    for _ in range(3):
        await off.get(user.id, read)
    assert read.reads == 3


async def test_it_holds_a_bounded_number_of_entries(sessions) -> None:
    users = [await _user(sessions) for _ in range(4)]
    cache = ReadCache(sessions, USER_TABLES, ttl_s=60, max_entries=3)
    reads = {user.id: CountedReads(sessions, user.id) for user in users}
    for user in users:
        await cache.get(user.id, reads[user.id])
    assert len(cache) == 3
    await cache.get(users[0].id, reads[users[0].id])  # the oldest went first
    await cache.get(users[3].id, reads[users[3].id])
    assert reads[users[0].id].reads == 2 and reads[users[3].id].reads == 1


async def test_instances_read_for_answers_see_the_managers_writes(sessions, keyring) -> None:
    """The instance view (InstanceService.view) reads `instances` and `users`: a status write
    of any session shows in the very next view."""
    user = await _user(sessions)
    instance = new_instance(keyring, user, status="provisioning")
    async with sessions() as session:
        session.add(instance)
        await session.commit()

    async def stored() -> Instance | None:
        async with sessions() as session:
            return await session.get(Instance, instance.id)

    cache = ReadCache(sessions, {"instances", "users"}, ttl_s=60)
    assert (await cache.get(instance.id, stored)).status == "provisioning"
    async with sessions() as session:
        await session.execute(update(Instance).where(Instance.id == instance.id).values(status="running"))
        await session.commit()
    assert (await cache.get(instance.id, stored)).status == "running"


class SlowReads(CountedReads):
    """Reads that wait for `release` before going to the database: readers pile up on them."""

    def __init__(self, sessions, user_id) -> None:
        super().__init__(sessions, user_id)
        self.release = asyncio.Event()

    async def __call__(self) -> str | None:
        await self.release.wait()
        return await super().__call__()  # counts the read


async def test_readers_that_miss_together_share_one_read(sessions) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), SlowReads(sessions, user.id)
    readers = [asyncio.create_task(cache.get(user.id, read)) for _ in range(20)]
    await asyncio.sleep(0.05)
    read.release.set()
    assert await asyncio.gather(*readers) == ["ada@example.com"] * 20
    assert read.reads == 1


async def test_a_reader_after_a_write_does_not_join_a_read_begun_before_it(sessions) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), SlowReads(sessions, user.id)
    before = asyncio.create_task(cache.get(user.id, read))
    await asyncio.sleep(0.05)
    async with sessions() as session:
        await session.execute(update(User).where(User.id == user.id).values(email="new@example.com"))
        await session.commit()
    after = asyncio.create_task(cache.get(user.id, read))
    await asyncio.sleep(0.05)
    read.release.set()
    await before
    assert await after == "new@example.com"
    assert read.reads == 2
    assert await cache.get(user.id, read) == "new@example.com"


async def test_a_cancelled_reader_leaves_the_shared_read_to_the_others(sessions) -> None:
    user = await _user(sessions, email="ada@example.com")
    cache, read = ReadCache(sessions, USER_TABLES, ttl_s=60), SlowReads(sessions, user.id)
    first, second = (asyncio.create_task(cache.get(user.id, read)) for _ in range(2))
    await asyncio.sleep(0.05)
    first.cancel()
    read.release.set()
    assert await second == "ada@example.com"
    assert first.cancelled() and read.reads == 1
