"""A broadcast goes through the provisioning bot (python-telegram-bot, paced by bot/pacing.py) to
the fake Bot API: every chat gets it exactly once, also when the platform is stopped half-way and
started again, and a chat that blocked the bot counts as failed."""

from __future__ import annotations

import asyncio

import pytest

from sqlalchemy import update

from admin.broadcast_sender import INTERRUPTED, BroadcastSender, SenderConfig
from admin.broadcasts import Broadcasts
from clawfleet.platform import PLATFORM
from db.models import BroadcastDelivery, User
from tests.support.bot_chat import running_platform
from tests.support.waiting import RecordingNotifier

TEXT = "Maintenance tonight at 22:00 UTC: your assistant may be away for ten minutes."
PEOPLE = 150  # at Telegram's 30 messages a second, about five seconds: the stop lands half-way


@pytest.fixture
def paced(settings):
    return settings.model_copy(update={"telegram_pacing": True})


async def _recipients(sessions, telegram, clawfleet_bot) -> list[int]:
    ids = []
    async with sessions() as session:
        for n in range(PEOPLE):
            person = telegram.user(first_name=f"Person {n}")
            clawfleet_bot.open_chat(person)
            session.add(User(telegram_user_id=person.id, telegram_chat_id=person.id))
            ids.append(person.id)
        session.add(User(email="web-only@example.com", password_hash="x"))  # no chat: not a recipient
        await session.commit()
    return ids


def _got(clawfleet_bot, chat_id: int) -> int:
    return sum(1 for message in clawfleet_bot.sent_messages(chat_id) if message.get("text") == TEXT)


async def test_a_broadcast_reaches_every_chat_once_across_a_restart(paced, sessions, runtime, telegram,
                                                                     clawfleet_bot) -> None:
    chats = await _recipients(sessions, telegram, clawfleet_bot)
    clawfleet_bot.block(chats[-1])
    async with running_platform(paced, runtime) as server:
        tools = server.app[PLATFORM].admin
        broadcast = await tools.broadcasts.queue(TEXT, actor="admin:root@example.com")
        assert broadcast.recipients == PEOPLE
        async with asyncio.timeout(20):
            while (await tools.broadcasts.progress(broadcast.id)).delivered < 20:
                await asyncio.sleep(0.05)
    halfway = await tools.broadcasts.progress(broadcast.id)
    assert 0 < halfway.delivered < PEOPLE - 1 and not halfway.done  # stopped half-way, the batch let finish
    assert sum(_got(clawfleet_bot, chat) for chat in chats) == halfway.delivered

    async with running_platform(paced, runtime) as server:
        async with asyncio.timeout(30):
            while not (progress := await tools.broadcasts.progress(broadcast.id)).done:
                await asyncio.sleep(0.1)
    assert (progress.delivered, progress.failed, progress.waiting) == (PEOPLE - 1, 1, 0)
    assert [chat for chat in chats[:-1] if _got(clawfleet_bot, chat) != 1] == []
    assert _got(clawfleet_bot, chats[-1]) == 0


async def test_a_delivery_a_dead_sender_had_claimed_is_failed_not_sent_again(sessions) -> None:
    async with sessions() as session:
        people = [User(telegram_user_id=n, telegram_chat_id=n) for n in (11, 12, 13)]
        session.add_all(people)
        await session.commit()
    broadcasts = Broadcasts(sessions)
    broadcast = await broadcasts.queue(TEXT, actor="cli:ops")
    async with sessions() as session:  # claimed, then its sender died before it recorded the outcome
        await session.execute(update(BroadcastDelivery).where(BroadcastDelivery.user_id == people[0].id)
                              .values(state="sending"))
        await session.commit()
    told = RecordingNotifier()
    sender = BroadcastSender(sessions, told, SenderConfig(), holder="test")
    assert await sender.fail_interrupted() == 1
    assert await sender.send_batch() == 2 and await sender.send_batch() == 0
    assert sorted(user_id for user_id, _ in told.sent) == sorted([people[1].id, people[2].id])
    progress = await broadcasts.progress(broadcast.id)
    assert (progress.delivered, progress.failed, progress.done) == (2, 1, True)
    async with sessions() as session:
        failed = await session.get(BroadcastDelivery, (await session.execute(
            BroadcastDelivery.__table__.select().where(BroadcastDelivery.state == "failed"))).first().id)
    assert failed.error == INTERRUPTED
