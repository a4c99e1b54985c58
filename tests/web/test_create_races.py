"""Creates and config changes that race each other through the REST API: the instance cap, the
host's memory budget and a bot token each decide once, however many requests arrive together.
In-memory gateways; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from db.models import Instance
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

BODY = {"model_provider": "openai", "api_key": "sk-proj-racesRACESraces0123456789"}
CONTENDERS = 6


async def _instances(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Instance))


async def _people(api: Api, count: int) -> list[Api]:
    people = []
    for _ in range(count):
        person = Api(api.server, api.http)
        await person.sign_up()
        people.append(person)
    return people


async def test_parallel_creates_of_one_user_stop_at_the_cap(settings_for, sessions) -> None:
    async with running_api(settings_for(max_instances_per_user=1), MemoryRuntime()) as api:
        await api.sign_up()
        answers = await asyncio.gather(*(api.call("POST", "/api/instances", BODY) for _ in range(CONTENDERS)))
    assert Counter(status for status, _ in answers) == {202: 1, 402: CONTENDERS - 1}, answers
    assert {body["error"]["code"] for status, body in answers if status != 202} == {"limit_reached"}
    assert await _instances(sessions) == 1


async def test_users_racing_for_the_last_memory_slot_get_it_once(settings_for, sessions) -> None:
    settings = settings_for(instance_memory_mb=1000, memory_budget_mb=1500, max_instances_per_user=5)
    async with running_api(settings, MemoryRuntime()) as api:
        people = await _people(api, CONTENDERS)
        answers = await asyncio.gather(*(person.call("POST", "/api/instances", BODY) for person in people))
    assert Counter(status for status, _ in answers) == {202: 1, 503: CONTENDERS - 1}, answers
    refusals = [body["error"] for status, body in answers if status != 202]
    assert {error["code"] for error in refusals} == {"capacity_exceeded"}
    assert all("1000 MB of its memory budget (1500 MB)" in error["message"] for error in refusals)
    assert await _instances(sessions) == 1


async def test_users_racing_for_one_bot_token_get_a_conflict_naming_it(settings_for, sessions, telegram) -> None:
    bot = telegram.add_bot(username="contested_bot")
    async with running_api(settings_for(), MemoryRuntime()) as api:
        people = await _people(api, CONTENDERS)
        answers = await asyncio.gather(*(person.call("POST", "/api/instances", {**BODY, "telegram_bot_token": bot.token})
                                         for person in people))
    assert Counter(status for status, _ in answers) == {202: 1, 409: CONTENDERS - 1}, answers
    for status, body in answers:
        if status != 202:
            assert body["error"]["field"] == "telegram_bot_token"
            assert "@contested_bot already serves another assistant" in body["error"]["message"]
    assert await _instances(sessions) == 1


async def test_instances_switching_to_one_bot_token_get_a_conflict_naming_it(settings_for, sessions,
                                                                            telegram) -> None:
    bot = telegram.add_bot(username="switched_to_bot")
    async with running_api(settings_for(), MemoryRuntime()) as api:
        people = await _people(api, CONTENDERS)
        created = [(await person.call("POST", "/api/instances", BODY))[1]["id"] for person in people]
        answers = await asyncio.gather(*(person.call("PUT", f"/api/instances/{instance_id}/config",
                                                     {"telegram_bot_token": bot.token})
                                         for person, instance_id in zip(people, created)))
    assert Counter(status for status, _ in answers) == {200: 1, 409: CONTENDERS - 1}, answers
    assert {body["error"]["field"] for status, body in answers if status != 200} == {"telegram_bot_token"}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Instance)
                                    .where(Instance.telegram_bot_id.is_not(None))) == 1
