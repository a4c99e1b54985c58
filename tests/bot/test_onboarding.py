"""Onboarding in chat, played by a user against the fake Bot API: the real python-telegram-bot
application of the platform talks to it over HTTP. Instances run in the in-memory runtime
here (the real gateway: tests/test_e2e_bot.py); SQLite and PostgreSQL both."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from db.models import BotState, Instance
from provisioner.providers import get_provider
from tests.support.bot_chat import Chat, buttons, collapse, running_platform
from tests.support.waiting import eventually
from tests.support.model_keys import key_sent_for, keyring_of

OPENAI_KEY = "sk-proj-onboardONBOARD0123456789abcd"
ANTHROPIC_KEY = "sk-ant-api03-onboardONBOARDonboardONBOARD0123456789"


async def _to_key_step(chat: Chat, provider: str = "openai") -> None:
    await chat.send("/start")
    welcome = await chat.reply("Welcome to ClawFleet")
    await chat.press(welcome, f"provider:{provider}")
    models = await chat.reply("which model?")
    await chat.press(models, f"model:{get_provider(provider).default_model}")
    await chat.reply("API key")


async def _to_confirm_step(chat: Chat, own_bot) -> dict:
    await _to_key_step(chat)
    await chat.send(OPENAI_KEY)
    await chat.reply("Key received")
    await chat.send(own_bot.token)
    return await chat.reply("Ready to deploy")


async def _forgotten(sessions) -> bool:
    return "api_key" not in await _stored_conversation_data(sessions)


async def _instances(sessions) -> list[Instance]:
    async with sessions() as session:
        return list(await session.scalars(select(Instance)))


async def _stored_conversation_data(sessions) -> str:
    async with sessions() as session:
        return json.dumps([row.data for row in await session.scalars(select(BotState))])


async def test_onboarding_deploys_an_assistant_that_answers_its_owner(
        platform, chat: Chat, telegram, sessions, runtime, settings) -> None:
    own_bot = telegram.add_bot(username="ada_assistant_bot")
    await chat.send("/start")
    welcome = await chat.reply("Welcome to ClawFleet")
    assert {"provider:anthropic", "provider:openai", "provider:moonshot"} <= set(buttons(welcome))

    await chat.press(welcome, "provider:openai")
    models = await chat.reply("which model?")
    default = get_provider("openai").default_model
    assert buttons(models)[f"model:{default}"].endswith("(recommended)")
    await chat.press(models, f"model:{default}")
    await chat.reply("Send me your OpenAI API key")

    key_message = await chat.send(OPENAI_KEY)
    confirmation = await chat.reply("Key received")
    assert chat.bot.deleted(chat.user.id, key_message["message_id"])  # gone from the chat at once
    assert f"…{OPENAI_KEY[-4:]}" in confirmation["text"]
    assert OPENAI_KEY not in await _stored_conversation_data(sessions)  # persisted sealed, never in the clear

    token_message = await chat.send(own_bot.token)
    summary = await chat.reply("Ready to deploy")
    assert chat.bot.deleted(chat.user.id, token_message["message_id"])
    assert "@ada_assistant_bot" in summary["text"] and f"…{OPENAI_KEY[-4:]}" in summary["text"]
    assert own_bot.token not in await _stored_conversation_data(sessions)

    await chat.press(summary, "deploy")
    ready = await chat.reply("Write to your bot", timeout=15)
    assert buttons(ready) == {"https://t.me/ada_assistant_bot": "Open @ada_assistant_bot"}
    assert "Dashboard: http://" in ready["text"]

    [instance] = await _instances(sessions)
    assert instance.status == "running" and instance.telegram_bot_id == own_bot.id
    assert instance.telegram_allow_from == chat.user.id  # their bot answers them with no pairing
    [launch] = runtime.starts
    assert launch.telegram_allow_from == chat.user.id and launch.bot_token.get_secret_value() == own_bot.token
    assert await key_sent_for(sessions, keyring_of(settings), launch) == OPENAI_KEY
    transcript = chat.transcript()
    assert OPENAI_KEY not in transcript and own_bot.token not in transcript
    await eventually(lambda: _forgotten(sessions), timeout=5)  # nothing pending is kept


@pytest.mark.parametrize(("sent", "problem"), [
    (ANTHROPIC_KEY, "looks like an API key for Anthropic"),
    ("123456789:AAE0123456789abcdefghijklmnopqrstuvw", "looks like a Telegram bot token"),
    ("hello there", "no spaces"),
    ("sk-" + "x" * 5000, "does not look like an API key"),
])
async def test_a_bad_key_is_deleted_explained_and_asked_again(platform, chat: Chat, telegram, sent, problem) -> None:
    await _to_key_step(chat)
    message = await chat.send(sent)
    answer = await chat.reply("Send the key again")
    assert problem in collapse(answer["text"])
    assert chat.bot.deleted(chat.user.id, message["message_id"])
    assert sent not in chat.transcript()
    await chat.send(OPENAI_KEY)  # the step is kept: a good key goes on
    await chat.reply("Key received")


async def test_what_is_not_text_is_refused_politely(platform, chat: Chat) -> None:
    await _to_key_step(chat)
    await chat.bot.user_sends_document(chat.user, b"sk-proj-in-a-file", "key.txt")
    await chat.reply("plain text message")
    await chat.send(OPENAI_KEY)
    await chat.reply("Key received")


async def test_bad_bot_tokens_are_refused_with_the_reason(platform, chat: Chat, telegram, clawfleet_bot,
                                                          sessions) -> None:
    await _to_key_step(chat)
    await chat.send(OPENAI_KEY)
    await chat.reply("Key received")

    await chat.send("not a token")
    assert "Send the token again" in (await chat.reply("Send the token again"))["text"]
    unknown = "987654321:AAE" + "x" * 32  # well-formed, but Telegram does not know it
    message = await chat.send(unknown)
    refused = await chat.reply("Send the token again")
    assert chat.bot.deleted(chat.user.id, message["message_id"]) and unknown not in refused["text"]
    await chat.send(clawfleet_bot.token)
    assert "ClawFleet's own bot" in (await chat.reply("Send the token again"))["text"]

    taken = telegram.add_bot(username="already_taken_bot")  # serves someone else's instance
    other = Chat(clawfleet_bot, telegram.user(first_name="Bob"))
    await _to_key_step(other)
    await other.send(OPENAI_KEY)
    await other.reply("Key received")
    await other.send(taken.token)
    await other.press(await other.reply("Ready to deploy"), "deploy")
    await other.reply("Write to your bot", timeout=15)
    await chat.send(taken.token)
    assert "@already_taken_bot already serves another assistant" in (await chat.reply("Send the token again"))["text"]

    await chat.send(telegram.add_bot(username="fine_bot").token)
    await chat.reply("Ready to deploy")


async def test_cancel_forgets_everything_sent(platform, chat: Chat, sessions) -> None:
    await _to_key_step(chat)
    await chat.send(OPENAI_KEY)
    await chat.reply("Key received")
    await chat.send("/cancel")
    await chat.reply("Setup cancelled")
    await eventually(lambda: _forgotten(sessions), timeout=5)
    await chat.send("/cancel")  # outside a conversation too
    await chat.reply("nothing to cancel")


async def test_back_goes_one_step_back(platform, chat: Chat, telegram) -> None:
    await _to_key_step(chat)
    await chat.send(OPENAI_KEY)
    await chat.reply("Key received")
    await chat.send("/back")
    await chat.reply("Send me your OpenAI API key")
    await chat.send("/back")
    models = await chat.reply("which model?")
    await chat.press(models, "back")
    welcome = await chat.reply("Which model provider")
    await chat.press(welcome, "provider:anthropic")
    await chat.press(await chat.reply("which model?"), f"model:{get_provider('anthropic').default_model}")
    await chat.send(ANTHROPIC_KEY)
    await chat.reply("Key received")


async def test_a_platform_restart_keeps_the_users_place(settings, sessions, runtime, chat: Chat, telegram) -> None:
    own_bot = telegram.add_bot(username="patient_bot")
    async with running_platform(settings, runtime):
        await _to_key_step(chat)
        await chat.send(OPENAI_KEY)
        await chat.reply("Key received")
    async with running_platform(settings, runtime):  # a new process: only the database remembers
        await chat.send(own_bot.token)
        summary = await chat.reply("Ready to deploy")
        assert f"…{OPENAI_KEY[-4:]}" in summary["text"]
        await chat.press(summary, "deploy")
        await chat.reply("Write to your bot", timeout=15)
    [instance] = await _instances(sessions)
    assert instance.telegram_bot_username == "patient_bot"
    assert await key_sent_for(sessions, keyring_of(settings), runtime.starts[0]) == OPENAI_KEY  # the sealed key survived


async def test_someone_with_an_assistant_is_sent_to_status(platform, chat: Chat, telegram) -> None:
    summary = await _to_confirm_step(chat, telegram.add_bot())
    await chat.press(summary, "deploy")
    await chat.reply("Write to your bot", timeout=15)
    await chat.send("/start")
    await chat.reply("You already have an assistant")


async def test_a_deploy_refused_by_the_platform_says_why_and_keeps_the_answers(
        settings, sessions, runtime, chat: Chat, telegram) -> None:
    async with running_platform(settings.model_copy(update={"max_instances_per_user": 0}), runtime):
        summary = await _to_confirm_step(chat, telegram.add_bot())
        await chat.press(summary, "deploy")
        refused = await chat.reply("Not deployed")
        assert "Your plan allows 0 instance(s)" in collapse(refused["text"])
        assert "deploy" in buttons(refused)  # they can try again once the cause is gone
    assert await _instances(sessions) == []


async def test_commands_are_registered(platform, clawfleet_bot) -> None:
    await eventually(lambda: clawfleet_bot.commands(), timeout=5)
    names = {command["command"] for command in clawfleet_bot.commands()}
    assert {"start", "status", "restart", "stop", "start_instance", "logs", "model", "key", "token",
            "delete", "billing", "help", "cancel"} <= names


async def test_an_abandoned_setup_times_out_and_forgets(settings, sessions, runtime, chat: Chat) -> None:
    async with running_platform(settings.model_copy(update={"telegram_setup_timeout_s": 1}), runtime):
        await _to_key_step(chat)
        await chat.send(OPENAI_KEY)
        await chat.reply("Key received")
        await chat.reply("waited too long", timeout=10)
        await eventually(lambda: _forgotten(sessions), timeout=5)
        await chat.send("/start")
        await chat.reply("Welcome to ClawFleet")


@pytest.mark.parametrize(("status", "description"), [(400, "Bad Request: message can't be deleted for everyone"),
                                                     (502, "Bad Gateway")])
async def test_a_secret_that_cannot_be_deleted_is_left_to_its_sender_at_every_step(
        platform, chat: Chat, telegram, status, description) -> None:
    await _to_key_step(chat)
    chat.bot.fail_next("deleteMessage", status, description)
    await chat.send(ANTHROPIC_KEY)  # a real key, refused for this provider: still in the chat
    assert "Please delete your message with the key yourself" in (await chat.reply("Send the key again"))["text"]
    chat.bot.fail_next("deleteMessage", status, description)
    await chat.send(OPENAI_KEY)
    assert "Please delete your message with the key yourself" in (await chat.reply("Key received"))["text"]

    chat.bot.fail_next("deleteMessage", status, description)
    await chat.send("987654321:AAE" + "x" * 32)  # well-formed, unknown to Telegram
    assert "Please delete your message with the bot token yourself" in (await chat.reply("Send the token again"))["text"]
    own_bot = telegram.add_bot(username="undeleted_bot")
    chat.bot.fail_next("deleteMessage", status, description)
    token_message = await chat.send(own_bot.token)
    summary = await chat.reply("Ready to deploy")
    assert "Please delete your message with the bot token yourself" in summary["text"]
    assert not chat.bot.deleted(chat.user.id, token_message["message_id"])
    await chat.press(summary, "deploy")  # the setup goes on
    await chat.reply("Write to your bot", timeout=15)
