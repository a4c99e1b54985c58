"""Fixtures of the bot's tests: the fake Bot API with ClawFleet's bot on it, the platform
running that bot over the in-memory runtime, and a person's chat with it."""

from __future__ import annotations

import pytest

from clawfleet.settings import Settings
from tests.support.bot_chat import Chat, running_platform
from tests.support.memory_runtime import MemoryRuntime


@pytest.fixture
def clawfleet_bot(telegram):
    return telegram.add_bot(username="clawfleet_bot")


@pytest.fixture
def settings(database_url, tmp_path, telegram, clawfleet_bot) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, database_url=database_url, telegram_api_url=telegram.api_url,
                    telegram_bot_token=clawfleet_bot.token, start_timeout_s=5, lease_ttl_s=3,
                    telegram_pacing=False)  # the fake has no flood limits here: tests/bot/test_pacing*.py pace


@pytest.fixture
async def runtime():
    runtime = MemoryRuntime()
    yield runtime
    await runtime.close()


@pytest.fixture
async def platform(settings, sessions, runtime):
    async with running_platform(settings, runtime) as server:
        yield server


@pytest.fixture
def chat(telegram, clawfleet_bot) -> Chat:
    return Chat(clawfleet_bot, telegram.user(first_name="Ada"))
