"""Onboarding offers ClawFleet's own key to the people the operator gives it to, and skips the
API-key step for them; the assistant then runs on that key."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from db.models import KEY_PLATFORM, Instance
from tests.support.bot_chat import Chat, buttons, running_platform
from tests.support.model_keys import key_sent_for, keyring_of

PLATFORM_KEY = "sk-proj-PLATFORMbotKEY000123456789abc"


@pytest.fixture
def offered(settings, chat: Chat):
    return settings.model_copy(update={"platform_keys": {"openai": SecretStr(PLATFORM_KEY)},
                                       "platform_key_users": [str(chat.user.id)]})


async def test_the_platforms_key_skips_the_key_step(offered, sessions, runtime, chat: Chat, telegram) -> None:
    own_bot = telegram.add_bot(username="included_bot")
    async with running_platform(offered, runtime):
        await chat.send("/start")
        await chat.press(await chat.reply("Welcome to ClawFleet"), "provider:openai")
        models = await chat.reply("which model?")
        await chat.press(models, next(data for data in buttons(models) if data.startswith("model:")))
        question = await chat.reply("Send me your OpenAI API key")
        assert "Or use ClawFleet's key" in question["text"]
        await chat.press(question, "platformkey")
        await chat.reply("ClawFleet's key it is")
        await chat.send(own_bot.token)
        summary = await chat.reply("Ready to deploy")
        assert "API key: ClawFleet's, included in your plan" in summary["text"]
        await chat.press(summary, "deploy")
        await chat.reply("Write to your bot", timeout=15)
    async with sessions() as session:
        [instance] = list(await session.scalars(select(Instance)))
    assert instance.key_source == KEY_PLATFORM and instance.api_key_sealed is None
    assert await key_sent_for(sessions, keyring_of(offered), runtime.starts[0], offered.platform_keys) == PLATFORM_KEY
    assert PLATFORM_KEY not in chat.transcript()


async def test_nobody_else_is_offered_it(settings, sessions, runtime, chat: Chat) -> None:
    others = settings.model_copy(update={"platform_keys": {"openai": SecretStr(PLATFORM_KEY)},
                                         "platform_key_users": ["1"]})
    async with running_platform(others, runtime):
        await chat.send("/start")
        await chat.press(await chat.reply("Welcome to ClawFleet"), "provider:openai")
        models = await chat.reply("which model?")
        await chat.press(models, next(data for data in buttons(models) if data.startswith("model:")))
        question = await chat.reply("Send me your OpenAI API key")
        assert "ClawFleet's key" not in question["text"] and not buttons(question)
