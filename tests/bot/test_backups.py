"""/backups from chat, against the fake Bot API with the real python-telegram-bot application
(in-memory runtime, the real backup keeper): the latest backups in words, back up now with its
progress message, restore the latest after a confirmation, stale and unknown buttons answered."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.backups import short_id
from clawfleet.platform import PLATFORM
from bot.management import COMMANDS
from db.models import Instance, InstanceBackup
from tests.support.bot_chat import Chat, buttons, collapse, onboard

OPENAI_KEY = "sk-proj-backupsBACKUPS0123456789abcdef"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"max_instances_per_user": 2})


@pytest.fixture
async def deployed(platform, chat: Chat, telegram, sessions) -> Instance:
    ready = await onboard(chat, telegram.add_bot(username="kept_bot"), OPENAI_KEY)
    assert "Write to your bot" in ready["text"], ready["text"]
    async with sessions() as session:
        return await session.scalar(select(Instance))


async def _backups_of(sessions, instance_id) -> list[InstanceBackup]:
    async with sessions() as session:
        return list(await session.scalars(select(InstanceBackup).where(InstanceBackup.instance_id == instance_id)
                                          .order_by(InstanceBackup.created_at.desc())))


async def _ended(chat: Chat, title: str) -> dict:
    """The progress message titled so, once it has its outcome."""
    return await chat.reply(lambda m: title in m.get("text", "") and ("✗" in m["text"] or "✓ " in
                            m["text"].splitlines()[-1] and "…" not in m["text"].splitlines()[-1]), timeout=15)


async def test_backups_is_in_the_command_menu_and_help(deployed, chat: Chat, clawfleet_bot) -> None:
    assert ("backups", "Back up or restore your assistant") in COMMANDS
    assert "backups" in [command["command"] for command in clawfleet_bot.commands()]
    await chat.send("/help")
    assert "/backups" in (await chat.reply("What I can do"))["text"]


async def test_no_backups_yet_then_back_up_now_with_its_progress(deployed: Instance, chat: Chat, sessions,
                                                               runtime) -> None:
    runtime.states[deployed.id] = b"what it knows"
    await chat.send("/backups")
    listing = await chat.reply("Backups of @kept_bot")
    assert "No backups yet." in listing["text"]
    assert f"/instances/{deployed.id}#backups" in listing["text"]  # the page, for the rest
    assert set(buttons(listing)) == {f"backups:now:{short_id(deployed.id)}"}

    await chat.press(listing, f"backups:now:{short_id(deployed.id)}")
    done = await _ended(chat, "Backing up your assistant")
    assert "Archiving your assistant's state" in done["text"] and "✓ Backed up (" in done["text"]
    (backup,) = await _backups_of(sessions, deployed.id)
    assert backup.kind == "manual"

    await chat.send("/backups")
    listing = await chat.reply(lambda m: "Backups of @kept_bot" in m.get("text", "") and "by you" in m["text"])
    assert "• today at " in listing["text"] and " bytes · by you" in listing["text"]
    assert f"backups:ask:{short_id(deployed.id)}:{short_id(backup.id)}" in buttons(listing)


async def test_a_failed_backup_says_why_and_offers_to_try_again(deployed: Instance, chat: Chat, runtime) -> None:
    runtime.backups_fail = True
    await chat.send("/backups")
    await chat.press(await chat.reply("No backups yet."), f"backups:now:{short_id(deployed.id)}")
    failed = await _ended(chat, "Backing up your assistant")
    assert "✗" in failed["text"] and "disk full" in failed["text"]
    assert set(buttons(failed)) == {f"backups:now:{short_id(deployed.id)}"}


async def test_restore_the_latest_after_a_confirmation(deployed: Instance, chat: Chat, sessions, runtime) -> None:
    runtime.states[deployed.id] = b"older"
    await chat.send("/backups")
    await chat.press(await chat.reply("No backups yet."), f"backups:now:{short_id(deployed.id)}")
    await _ended(chat, "Backing up your assistant")
    runtime.states[deployed.id] = b"newer"
    (backup,) = await _backups_of(sessions, deployed.id)

    await chat.send("/backups")
    listing = await chat.reply(lambda m: "by you" in m.get("text", ""))
    ask = f"backups:ask:{short_id(deployed.id)}:{short_id(backup.id)}"
    await chat.press(listing, ask)
    confirm = await chat.reply("Restore the backup of today at")
    text = collapse(confirm["text"])
    assert "into @kept_bot?" in text
    assert "A backup of its current state is taken first (kept as “before a restore”)." in text
    assert "Then your assistant stops, its conversations, memory and files are replaced with the backup's" in text
    assert set(buttons(confirm)) == {f"backups:restore:{short_id(deployed.id)}:{short_id(backup.id)}",
                                     "backups:keep"}

    await chat.press(confirm, "backups:keep")
    await chat.reply("Nothing was restored.")
    assert runtime.states[deployed.id] == b"newer"

    await chat.send("/backups")
    await chat.press(await chat.reply(lambda m: "by you" in m.get("text", "")), ask)
    confirm = await chat.reply(lambda m: "Restore the backup of" in m.get("text", "") and "backups:keep" in buttons(m))
    await chat.press(confirm, f"backups:restore:{short_id(deployed.id)}:{short_id(backup.id)}")
    done = await _ended(chat, "Restoring the backup of today at")
    assert "✓ Restored the backup of" in done["text"], done["text"]
    assert runtime.states[deployed.id] == b"older"
    kinds = [each.kind for each in await _backups_of(sessions, deployed.id)]
    assert sorted(kinds) == ["manual", "pre-restore"]


async def test_a_stale_button_says_the_backup_is_gone(deployed: Instance, chat: Chat, sessions) -> None:
    await chat.send("/backups")
    await chat.press(await chat.reply("No backups yet."), f"backups:now:{short_id(deployed.id)}")
    await _ended(chat, "Backing up your assistant")
    await chat.send("/backups")
    listing = await chat.reply(lambda m: "by you" in m.get("text", ""))
    (backup,) = await _backups_of(sessions, deployed.id)
    async with sessions() as session:  # deleted meanwhile (on the dashboard, say)
        await session.delete(await session.get(InstanceBackup, backup.id))
        await session.commit()
    await chat.press(listing, f"backups:ask:{short_id(deployed.id)}:{short_id(backup.id)}")
    gone = await chat.reply("That backup or assistant is no longer there")
    assert "Send /backups for the current list." in gone["text"] and not buttons(gone)


async def test_a_button_of_another_shape_is_answered_not_acted_on(deployed: Instance, chat: Chat, clawfleet_bot,
                                                                  sessions) -> None:
    await chat.send("/backups")
    listing = await chat.reply("No backups yet.")
    for data in ("backups:now:not-an-id", f"backups:restore:{short_id(deployed.id)}",
                 f"backups:now:{deployed.id}", "backups:"):
        query = await chat.press(listing, data, offered=False)
        async with asyncio.timeout(10):
            while query["id"] not in clawfleet_bot.callback_answers:
                await asyncio.sleep(0.05)
        answer = clawfleet_bot.callback_answers[query["id"]]
        assert answer["text"] == "This button no longer works. Send /backups for a fresh list.", data
    assert await _backups_of(sessions, deployed.id) == []


async def test_with_two_assistants_it_asks_which(deployed: Instance, chat: Chat, platform) -> None:
    the = platform.app[PLATFORM]
    user = await the.accounts.user_by_id(deployed.user_id)
    second = await the.instances.create(user, model_provider="openai", api_key=OPENAI_KEY,
                                        telegram_user_id=chat.user.id)
    await chat.send("/backups")
    which = await chat.reply("Which assistant's backups?")
    assert set(buttons(which)) == {f"backups:show:{short_id(deployed.id)}", f"backups:show:{short_id(second.id)}"}
    assert set(buttons(which).values()) == {"@kept_bot", second.subdomain}
    await chat.press(which, f"backups:show:{short_id(second.id)}")
    shown = await chat.reply(f"Backups of {second.subdomain}")
    assert f"backups:now:{short_id(second.id)}" in buttons(shown)
