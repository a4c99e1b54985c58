"""Managing an assistant from chat, and the platform telling its owner things, against the
fake Bot API with the real python-telegram-bot application (in-memory runtime)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from clawfleet.platform import PLATFORM
from db.models import Instance
from provisioner.providers import get_provider
from tests.support.bot_chat import Chat, button_starting, buttons, collapse, onboard
from tests.support.model_keys import key_sent_for, keyring_of

OPENAI_KEY = "sk-proj-manageMANAGE0123456789abcdef"
NEW_OPENAI_KEY = "sk-proj-replacedREPLACED0123456789wxyz"
ANTHROPIC_KEY = "sk-ant-api03-manageMANAGEmanageMANAGE0123456789"


@pytest.fixture
async def deployed(platform, chat: Chat, telegram, sessions) -> Instance:
    ready = await onboard(chat, telegram.add_bot(username="managed_bot"), OPENAI_KEY)
    assert "Write to your bot" in ready["text"], ready["text"]
    return await _instance(sessions)


async def _instance(sessions) -> Instance | None:
    async with sessions() as session:
        return await session.scalar(select(Instance))


async def _followed_to_the_end(chat: Chat, title: str) -> dict:
    """The progress message of an action, once it has its final text."""
    return await chat.reply(lambda m: title in m.get("text", "") and "…" not in m["text"].splitlines()[-1]
                            and "✓" in m["text"], timeout=15)


async def test_status_shows_state_model_uptime_and_url(deployed: Instance, chat: Chat) -> None:
    await chat.send("/status")
    status = await chat.reply("@managed_bot")
    text = collapse(status["text"])
    assert "@managed_bot: running" in text and "Up for 0 min" in text
    assert f"Model: openai/{deployed.model}" in text
    assert f"Dashboard: http://{deployed.subdomain}.localhost:8080" in text
    assert set(buttons(status)) == {f"act:restart:{deployed.id}", f"act:stop:{deployed.id}"}


async def test_status_of_an_instance_the_operator_suspended_offers_neither_paying_nor_starting(
        deployed: Instance, chat: Chat, platform, sessions) -> None:
    await platform.app[PLATFORM].admin.suspensions.suspend(deployed.id, actor="cli:test", reason="abuse")
    async with sessions() as session:  # as the memory watch counts its restarts
        row = await session.get(Instance, deployed.id)
        row.memory_restarts = 2
        await session.commit()
    await chat.send("/status")
    status = await chat.reply(lambda m: "@managed_bot: suspended" in m.get("text", ""))
    text = collapse(status["text"])
    assert "suspended by the platform's operator" in text and "subscription" not in text, text
    assert "Restarted at a quiet moment to free memory: 2 time(s)" in text
    assert buttons(status) == {}  # no "Choose a plan", no "Start"


async def test_stop_start_and_restart_from_commands_and_buttons(deployed: Instance, chat: Chat, sessions,
                                                                runtime) -> None:
    await chat.send("/stop")
    await _followed_to_the_end(chat, "Stopping your assistant")
    assert (await _instance(sessions)).status == "stopped" and deployed.id not in runtime.gateways

    await chat.send("/status")
    status = await chat.reply("@managed_bot: stopped")
    assert set(buttons(status)) == {f"act:start:{deployed.id}"}
    await chat.press(status, f"act:start:{deployed.id}")
    await chat.reply("Write to your bot", timeout=15)
    assert (await _instance(sessions)).status == "running"

    await chat.send("/restart")
    await chat.reply("Write to your bot", timeout=15)
    assert len(runtime.starts) == 3

    await chat.send("/start_instance")
    assert "already running" in (await chat.reply("already running"))["text"]


async def test_logs_come_back_redacted(deployed: Instance, chat: Chat, runtime) -> None:
    runtime.logs_by_instance[deployed.id] += ["gateway ready", f"oops, leaked {OPENAI_KEY} into a log line"]
    await chat.send("/logs")
    logs = await chat.reply("gateway ready")
    assert logs["text"].startswith(runtime.logs_by_instance[deployed.id][0][:20])
    assert OPENAI_KEY not in logs["text"] and "oops, leaked" in logs["text"]
    assert any(entity["type"] == "pre" for entity in logs.get("entities", []))

    runtime.logs_by_instance[deployed.id] += [f"line {n} " + "x" * 200 for n in range(40)]
    await chat.send("/logs")
    document = await chat.reply(lambda m: "document" in m, timeout=10)
    assert document["document"]["file_name"] == "assistant.log"
    assert b"line 39" in chat.bot.document_bytes(document)


async def test_model_change_within_a_provider_offers_a_restart(deployed: Instance, chat: Chat, sessions,
                                                                runtime) -> None:
    other_model = next(m for m in get_provider("openai").models if m != deployed.model)
    await chat.send("/model")
    await chat.press(await chat.reply("Which provider?"), "chprovider:openai")
    await chat.press(await chat.reply("which model?"), f"chmodel:{other_model}")
    offer = await chat.reply("Model changed")
    assert (await _instance(sessions)).model == other_model
    await chat.press(offer, button_starting(offer, "act:restart:"))
    await chat.reply("Write to your bot", timeout=15)
    assert runtime.starts[-1].model == other_model


async def test_switching_provider_asks_for_its_key(deployed: Instance, chat: Chat, sessions) -> None:
    await chat.send("/model")
    await chat.press(await chat.reply("Which provider?"), "chprovider:anthropic")
    model = get_provider("anthropic").default_model
    await chat.press(await chat.reply("which model?"), f"chmodel:{model}")
    await chat.reply("needs its API key")
    wrong = await chat.send(NEW_OPENAI_KEY)
    assert "looks like an API key for OpenAI" in collapse((await chat.reply("Try again"))["text"])
    assert chat.bot.deleted(chat.user.id, wrong["message_id"])
    await chat.send(ANTHROPIC_KEY)
    await chat.reply("Switched to Anthropic")
    instance = await _instance(sessions)
    assert (instance.model_provider, instance.model) == ("anthropic", model)
    assert ANTHROPIC_KEY not in chat.transcript()


async def test_key_and_token_are_replaced_and_their_messages_deleted(deployed: Instance, chat: Chat, sessions,
                                                                      telegram, runtime, settings) -> None:
    await chat.send("/key")
    await chat.reply("new OpenAI API key")
    message = await chat.send(NEW_OPENAI_KEY)
    await chat.reply("Key replaced")
    assert chat.bot.deleted(chat.user.id, message["message_id"])

    new_bot = telegram.add_bot(username="renamed_bot")
    await chat.send("/token")
    await chat.reply("new bot token")
    await chat.send("123:nope")
    await chat.reply("Try again")
    message = await chat.send(new_bot.token)
    offer = await chat.reply("Bot token replaced")
    assert chat.bot.deleted(chat.user.id, message["message_id"])
    instance = await _instance(sessions)
    assert instance.telegram_bot_username == "renamed_bot" and instance.telegram_bot_id == new_bot.id

    await chat.press(offer, button_starting(offer, "act:restart:"))
    await chat.reply("Write to your bot", timeout=15)
    launch = runtime.starts[-1]
    assert await key_sent_for(sessions, keyring_of(settings), launch) == NEW_OPENAI_KEY
    assert launch.bot_token.get_secret_value() == new_bot.token
    assert NEW_OPENAI_KEY not in chat.transcript() and new_bot.token not in chat.transcript()

    await chat.send("/key")
    await chat.reply("new OpenAI API key")
    await chat.send("/cancel")
    await chat.reply("nothing changed")


@pytest.mark.parametrize("choice", ["keep", "purge"])
async def test_delete_asks_first_then_deletes(deployed: Instance, chat: Chat, sessions, runtime, choice) -> None:
    await chat.send("/delete")
    question = await chat.reply("Delete your assistant?")
    await chat.press(question, "delete:no")
    await chat.reply("Nothing was deleted")
    assert await _instance(sessions) is not None

    await chat.send("/delete")
    await chat.press(await chat.reply("Delete your assistant?"), f"delete:{choice}:{deployed.id}")
    await chat.reply(lambda m: "Your assistant is deleted" in m.get("text", ""), timeout=15)
    assert await _instance(sessions) is None
    assert runtime.removed == {deployed.id: choice == "keep"}
    await chat.send("/status")
    await chat.reply("You have no assistant yet")


async def test_help_and_billing(platform, chat: Chat) -> None:
    await chat.send("/help")
    assert "/status" in (await chat.reply("What I can do"))["text"]
    await chat.send("/billing")
    await chat.reply("runs without billing")


async def test_the_platform_tells_the_owner_in_their_chat(deployed: Instance, chat: Chat, platform) -> None:
    manager = platform.app[PLATFORM].manager
    await manager.tell_owner(deployed.user_id, "Your assistant needs attention. <it says so>")
    told = await chat.reply("needs attention")
    assert told["text"] == "Your assistant needs attention. <it says so>"  # shown as written, not as markup

    chat.bot.block(chat.user.id)  # a blocked bot: nobody is told, nothing breaks
    await manager.tell_owner(deployed.user_id, "Nobody hears this")
    await manager.tell_owner(uuid.uuid4(), "No such user")
    chat.bot.unblock(chat.user.id)
    await chat.send("/help")
    await chat.reply("What I can do")


async def test_a_crash_loop_reaches_the_owner(deployed: Instance, chat: Chat, runtime, settings, sessions,
                                              platform) -> None:
    reconciler = platform.app[PLATFORM].reconciler
    runtime.exits_on_start = True
    await runtime.crash(deployed.id)
    manager = platform.app[PLATFORM].manager
    for _ in range(5):  # each pass: a crash counted, or a restart that fails, until it gives up
        async with sessions() as session:
            row = await session.get(Instance, deployed.id)
            row.next_attempt_at = None
            await session.commit()
        await reconciler.reconcile_once()
        await manager.wait_idle()
    told = await chat.reply("could not be restarted", timeout=10)
    assert "Check its model and key" in told["text"]


# Telegram refuses to delete (a message too old, say), or does not answer at all.
DELETE_FAILURES = [(400, "Bad Request: message can't be deleted for everyone"), (502, "Bad Gateway")]


@pytest.mark.parametrize(("status", "description"), DELETE_FAILURES)
async def test_a_secret_message_that_cannot_be_deleted_is_left_to_its_sender(
        deployed: Instance, chat: Chat, telegram, status, description) -> None:
    asked = "yourself</b>"  # the bold request, as the key step of the setup makes it
    await chat.send("/key")
    await chat.reply("new OpenAI API key")
    chat.bot.fail_next("deleteMessage", status, description)
    key_message = await chat.send(NEW_OPENAI_KEY)
    replaced = await chat.reply("Key replaced")
    assert "Please delete your message with the key yourself" in replaced["text"]
    assert not chat.bot.deleted(chat.user.id, key_message["message_id"])

    await chat.send("/token")
    await chat.reply("new bot token")
    chat.bot.fail_next("deleteMessage", status, description)
    await chat.send("123:nope")  # refused, and still said
    assert "Please delete your message with the bot token yourself" in (await chat.reply("Try again"))["text"]
    chat.bot.fail_next("deleteMessage", status, description)
    await chat.send(telegram.add_bot(username="kept_bot").token)
    assert "Please delete your message with the bot token yourself" in (await chat.reply("Bot token replaced"))["text"]

    await chat.send("/key")
    await chat.reply("new OpenAI API key")
    await chat.send(ANTHROPIC_KEY)  # deleted this time: nothing to ask
    assert asked not in (await chat.reply("Try again"))["text"]


async def test_pair_approves_a_code_the_assistants_bot_sent(deployed: Instance, chat: Chat, sessions,
                                                            runtime) -> None:
    runtime.pairing_requests[deployed.id] = {"HX7K2MQP": 987654321}
    await chat.send("/pair")
    assert "e.g. /pair HX7K2MQP" in collapse((await chat.reply("Send /pair"))["text"])
    await chat.send("/pair HX7K0MQP")
    await chat.reply("8 letters and digits")
    await chat.send("/pair ZZZZ2222")
    await chat.reply("No pending request has this code; codes expire after an hour")
    assert (await _instance(sessions)).telegram_allow_from == chat.user.id

    await chat.send("/pair hx7k2mqp")
    await chat.reply("Paired: your bot now answers Telegram user 987654321, and only them: message it again to begin.")
    assert (await _instance(sessions)).telegram_allow_from == 987654321
    assert runtime.owners[deployed.id] == 987654321

    await chat.send("/help")
    assert "/pair CODE" in (await chat.reply("What I can do"))["text"]
