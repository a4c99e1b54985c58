"""What the platform shows an owner on its own initiative, through the bot's Notifier: notices
with buttons for what they offer, and a deploy billing started (once a payment went through)
followed in a progress message, as onboarding follows its own. The real platform and
python-telegram-bot against the fake Bot API, over the in-memory runtime; billing is off here,
so the deploy is billing's own effect (billing.effects.EffectHandlers.start_paid) run directly."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from billing.effects import EffectHandlers
from billing.plans import load_plans
from clawfleet.platform import PLATFORM
from db.models import Instance, OutboxEffect, User
from db.status import Status
from provisioner.notify import Offer
from tests.support.bot_chat import Chat, buttons, onboard
from tests.support.waiting import eventually

OPENAI_KEY = "sk-proj-noticesNOTICES0123456789abcd"


async def _instance(sessions) -> Instance:
    async with sessions() as session:
        return await session.scalar(select(Instance))


async def _owner(sessions, instance: Instance) -> User:
    async with sessions() as session:
        return await session.get(User, instance.user_id)


async def _awaiting_payment(platform, chat: Chat, telegram, sessions) -> Instance:
    """An owner with a chat whose assistant was stopped and now waits for payment, as one
    does between Subscribe and deploy and the payment."""
    ready = await onboard(chat, telegram.add_bot(username="paid_bot"), OPENAI_KEY)
    assert "Write to your bot" in ready["text"], ready["text"]
    instance = await _instance(sessions)
    user = await _owner(sessions, instance)
    await platform.app[PLATFORM].instances.stop(user, instance.id)
    await platform.app[PLATFORM].manager.wait_idle()
    async with sessions() as session:
        row = await session.get(Instance, instance.id)
        row.status = Status.AWAITING_PAYMENT
        await session.commit()
    return instance


def _effects(platform, repo_root) -> EffectHandlers:
    the = platform.app[PLATFORM]
    return EffectHandlers(the.instances, the.bot.notifier, load_plans(repo_root / "plans.example.toml"))


async def test_a_deploy_after_payment_is_followed_in_the_owners_chat_without_waiting(
        platform, chat: Chat, telegram, sessions, runtime, repo_root) -> None:
    instance = await _awaiting_payment(platform, chat, telegram, sessions)
    runtime.ready_after = 2.0  # a deploy that takes a while: the caller must not wait for it
    began = time.monotonic()
    await _effects(platform, repo_root).start_paid(OutboxEffect(user_id=instance.user_id))
    assert time.monotonic() - began < 1.5

    first = await chat.reply("Deploying your assistant…")
    assert first["text"] == "Deploying your assistant…"
    ready = await chat.reply(lambda m: m["message_id"] == first["message_id"] and "Write to your bot" in m["text"],
                             timeout=15)  # the same message, edited to its end
    assert "✓" in ready["text"] and f"Dashboard: http://{instance.subdomain}.localhost:8080" in ready["text"]
    assert buttons(ready) == {"https://t.me/paid_bot": "Open @paid_bot"}
    assert (await _instance(sessions)).status == "running"


async def test_a_failed_deploy_after_payment_ends_with_retry(platform, chat: Chat, telegram, sessions, runtime,
                                                             repo_root) -> None:
    instance = await _awaiting_payment(platform, chat, telegram, sessions)
    runtime.exits_on_start = True
    await _effects(platform, repo_root).start_paid(OutboxEffect(user_id=instance.user_id))
    failed = await chat.reply(lambda m: "Deploying your assistant" in m.get("text", "") and "✗" in m["text"],
                              timeout=15)
    assert buttons(failed) == {f"act:start:{instance.id}": "Retry"}


async def test_following_what_cannot_be_shown_neither_raises_nor_waits(platform, chat: Chat, telegram, sessions,
                                                                       runtime) -> None:
    ready = await onboard(chat, telegram.add_bot(username="quiet_bot"), OPENAI_KEY)
    assert "Write to your bot" in ready["text"]
    instance = await _instance(sessions)
    notifier = platform.app[PLATFORM].bot.notifier
    await notifier.follow(uuid.uuid4(), instance.id, "Deploying your assistant")  # nobody
    await notifier.follow(instance.user_id, uuid.uuid4(), "Deploying your assistant")  # not theirs: logged
    chat.bot.block(chat.user.id)
    user = await _owner(sessions, instance)
    await platform.app[PLATFORM].instances.restart(user, instance.id)
    await notifier.follow(instance.user_id, instance.id, "Restarting your assistant")  # blocked: logged
    await eventually(lambda: not notifier._following, timeout=10)
    chat.bot.unblock(chat.user.id)
    await chat.send("/help")
    await chat.reply("What I can do")
    assert "Restarting your assistant" not in chat.transcript()


async def test_offers_are_buttons_that_do_what_they_say(platform, chat: Chat, telegram, sessions) -> None:
    ready = await onboard(chat, telegram.add_bot(username="offered_bot"), OPENAI_KEY)
    assert "Write to your bot" in ready["text"]
    instance = await _instance(sessions)
    notifier = platform.app[PLATFORM].bot.notifier
    await notifier.notify(instance.user_id, "Your plan is now <Team>.", [
        Offer("Restart @offered_bot", "restart", instance.id), Offer("Stop @offered_bot", "stop", instance.id),
        Offer("Start @offered_bot", "start", instance.id), Offer("Choose a plan", "billing"),
        Offer("See the plans", "plan"), Offer("Dance", "dance"), Offer("Restart what?", "restart")])
    told = await chat.reply("Your plan is now")
    assert told["text"] == "Your plan is now <Team>."  # as written, not as markup
    assert buttons(told) == {f"act:restart:{instance.id}": "Restart @offered_bot",
                             f"act:stop:{instance.id}": "Stop @offered_bot",
                             f"act:start:{instance.id}": "Start @offered_bot",
                             "billing:show": "Choose a plan", "plan:show": "See the plans"}

    await chat.press(told, f"act:restart:{instance.id}")
    await chat.reply(lambda m: "Restarting your assistant" in m.get("text", "") and "Write to your bot" in m["text"],
                     timeout=15)
    await chat.press(told, "billing:show")  # billing is off here: there is nothing to pay
    await chat.reply("runs without billing")
    await chat.press(told, "plan:show")
    await chat.reply("runs without billing")

    await notifier.notify(instance.user_id, "Nothing to do about this.")
    assert buttons(await chat.reply("Nothing to do about this")) == {}
