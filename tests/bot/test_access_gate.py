"""Who gets past the bot's door: a stranger the access policy keeps out leaves no account and no
audit row, only a bounded record the operator can read; an account is made once access is
granted; the bot answers in private chats only. Through the real python-telegram-bot
application against the fake Bot API (in-memory runtime), SQLite and PostgreSQL both."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from accounts.invites import Invites
from db.models import AccessRefusal, AuditLog, User
from tests.support.bot_chat import Chat, running_platform
from tests.support.builders import saved_user
from tests.support.waiting import eventually


async def _all(sessions, model) -> list:
    async with sessions() as session:
        return list(await session.scalars(select(model)))


async def _handled_everything(bot) -> None:
    """Every update sent so far was fetched: leaving `running_platform` then handles them all."""
    await eventually(lambda: not bot.pending_updates, timeout=10)


async def test_a_refused_stranger_leaves_no_account_only_one_record_and_hears_it_once(
        settings, sessions, runtime, telegram, clawfleet_bot) -> None:
    async with running_platform(settings.model_copy(update={"access": "invite"}), runtime):
        stranger = Chat(clawfleet_bot, telegram.user(first_name="Stranger", username="curious_one"))
        await stranger.send("/start")
        refusal = await stranger.reply("invite-only")
        assert "Send /start followed by the code" in refusal["text"]
        for text in ("hello?", "/status", "/key", "/start"):
            await stranger.send(text)
        await stranger.send("/start inv-made-up")  # a code is always answered: all before it are handled
        await stranger.reply("That invite code is not valid")
    assert await _all(sessions, User) == [] and await _all(sessions, AuditLog) == []
    [record] = await _all(sessions, AccessRefusal)
    assert (record.telegram_user_id, record.telegram_username) == (stranger.user.id, "curious_one")
    assert record.count == 1  # the rest this minute were counted in memory, not written
    transcript = stranger.transcript()
    assert transcript.count("invite-only") == 1, transcript  # told once this minute, not once a message


async def test_a_stranger_off_the_allowlist_leaves_no_account_and_learns_their_id(
        settings, sessions, runtime, telegram, clawfleet_bot) -> None:
    listed = telegram.user(first_name="Listed")
    allowlist = settings.model_copy(update={"access": "allowlist", "allowed_telegram_ids": [listed.id]})
    async with running_platform(allowlist, runtime):
        stranger = Chat(clawfleet_bot, telegram.user(first_name="Stranger"))
        await stranger.send("/start")
        refusal = await stranger.reply("ask its operator to add you to the allowlist")
        await stranger.send("/help")
        await _handled_everything(clawfleet_bot)
    assert await _all(sessions, User) == [] and await _all(sessions, AuditLog) == []
    assert [record.telegram_user_id for record in await _all(sessions, AccessRefusal)] == [stranger.user.id]
    assert f"Your Telegram id is {stranger.user.id}" in refusal["text"]  # what to tell the operator

    async with running_platform(allowlist, runtime):  # someone listed gets an account at first contact
        friend = Chat(clawfleet_bot, listed)
        await friend.send("/start")
        await friend.reply("Welcome to ClawFleet")
    [user] = await _all(sessions, User)
    assert user.telegram_user_id == listed.id
    assert [row.action for row in await _all(sessions, AuditLog)] == ["user.register"]


async def test_an_invite_code_makes_the_account_with_it(settings, sessions, runtime, telegram,
                                                        clawfleet_bot) -> None:
    [code] = await Invites(sessions).create(1, None)
    async with running_platform(settings.model_copy(update={"access": "invite"}), runtime):
        newcomer = Chat(clawfleet_bot, telegram.user(first_name="Newcomer"))
        await newcomer.send("/start inv-wrong")
        await newcomer.reply("That invite code is not valid")
        await _handled_everything(clawfleet_bot)
        assert await _all(sessions, User) == []  # a wrong code makes nothing
        await newcomer.send(f"/start {code}")
        await newcomer.reply("Invite accepted")
        await newcomer.reply("Welcome to ClawFleet")
        await newcomer.send("/help")  # in for good now
        await newcomer.reply("What I can do")
    [user] = await _all(sessions, User)
    assert user.telegram_user_id == newcomer.user.id
    actions = [row.action for row in await _all(sessions, AuditLog) if row.user_id == user.id]
    assert sorted(actions) == ["user.invite_redeemed", "user.register"]


async def test_an_account_from_before_is_still_served_and_may_redeem_a_code(
        settings, sessions, runtime, telegram, clawfleet_bot) -> None:
    person = telegram.user(first_name="Early")
    await saved_user(sessions, email=None, password_hash=None, telegram_user_id=person.id,
                     telegram_chat_id=person.id)  # made while the platform was open
    [code] = await Invites(sessions).create(1, None)
    async with running_platform(settings.model_copy(update={"access": "invite"}), runtime):
        early = Chat(clawfleet_bot, person)
        await early.send("/status")  # what they have, they may still see
        await early.reply("You have no assistant yet")
        await early.send("/start")
        await early.reply("invite-only")
        await early.send(f"/start {code}")
        await early.reply("Invite accepted")
        await early.reply("Welcome to ClawFleet")
    assert len(await _all(sessions, User)) == 1 and await _all(sessions, AccessRefusal) == []


@pytest.mark.parametrize("access", ["open", "allowlist", "invite"])
async def test_the_bot_answers_in_private_chats_only(settings, sessions, runtime, telegram, clawfleet_bot,
                                                     access) -> None:
    member = telegram.user(first_name="Member")
    allowed = settings.model_copy(update={"access": access, "allowed_telegram_ids": [member.id]})
    async with running_platform(allowed, runtime):
        group = await clawfleet_bot.user_sends_in_group(member, "/start")
        await clawfleet_bot.user_sends_in_group(member, "/status@clawfleet_bot", chat_type="group")
        channel = await clawfleet_bot.channel_posts("/start")
        await _handled_everything(clawfleet_bot)
        private = Chat(clawfleet_bot, member)
        await private.send("/help")  # the same person, in private: answered
        await private.reply("What I can do" if access != "invite" else "invite-only")
    elsewhere = {group["chat"]["id"], channel["chat"]["id"]}
    assert not [call for call in clawfleet_bot.calls if call.params.get("chat_id") in elsewhere]
    users, refused = await _all(sessions, User), await _all(sessions, AccessRefusal)
    if access != "invite":
        [user] = users
        assert user.telegram_chat_id == member.id and refused == []  # never a group's id
    else:
        assert users == [] and [row.count for row in refused] == [1]  # the private refusal only
