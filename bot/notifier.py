"""The Notifier the platform tells owners things through, when the bot runs: a message in
the owner's chat with ClawFleet's bot, with buttons for what it offers, and progress messages
that follow an action the platform started (a deploy once a payment went through)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, TelegramError

from bot import progress
from bot.replies import escape
from db.errors import ServiceError
from db.models import User
from provisioner.notify import Offer
from provisioner.service import InstanceService

log = structlog.get_logger(__name__)

INSTANCE_ACTIONS = ("restart", "stop", "start")  # bot/management.py's act:<action>:<id> buttons
PAGES = {"billing": "billing:show", "plan": "plan:show",  # bot/billing.py's buttons
         "usage": "usage:show"}  # bot/usage.py's


def offer_buttons(offers: Sequence[Offer]) -> InlineKeyboardMarkup | None:
    """One button a row per offer the bot knows how to carry out; any other is left out (logged)."""
    rows = []
    for offer in offers:
        if offer.action in INSTANCE_ACTIONS and offer.instance_id is not None:
            data = f"act:{offer.action}:{offer.instance_id}"
        elif offer.action in PAGES:
            data = PAGES[offer.action]
        else:
            log.warning("offer not shown: the bot does not know it", action=offer.action)
            continue
        rows.append([InlineKeyboardButton(offer.label[:64], callback_data=data)])
    return InlineKeyboardMarkup(rows) if rows else None


class TelegramNotifier:
    """Made before the bot starts (the provisioner needs it first); attached once it runs.
    Messages before that, or to someone with no chat, are logged and dropped."""

    def __init__(self) -> None:
        self.bot: Bot | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.instances: InstanceService | None = None
        self._following: set[asyncio.Task[None]] = set()  # referenced until done, or the loop may drop them

    def attach(self, bot: Bot | None, sessions: async_sessionmaker[AsyncSession] | None,
               instances: InstanceService | None = None) -> None:
        self.bot, self.sessions, self.instances = bot, sessions, instances

    async def close(self) -> None:
        """Stop following (the bot stops): the actions themselves go on."""
        self.attach(None, None)
        tasks = list(self._following)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _chat_of(self, user_id: uuid.UUID) -> User | None:
        """The owner, when they can be told something in chat now (else logged: why not)."""
        if self.bot is None or self.sessions is None:
            log.info("owner not told: the bot is not running", user_id=str(user_id))
            return None
        async with self.sessions() as session:
            user = await session.get(User, user_id)
        if user is None or user.telegram_chat_id is None:
            log.info("owner not told: no Telegram chat", user_id=str(user_id))
            return None
        return user

    async def notify(self, user_id: uuid.UUID, text: str, offers: Sequence[Offer] = ()) -> None:
        await self._send(user_id, text, offers)

    async def deliver(self, user_id: uuid.UUID, text: str) -> str | None:
        """Through the bot, so paced as all its messages are (bot/pacing.py)."""
        return await self._send(user_id, text, ())

    async def _send(self, user_id: uuid.UUID, text: str, offers: Sequence[Offer]) -> str | None:
        user = await self._chat_of(user_id)
        if user is None:
            return "no Telegram chat, or the bot is not running"
        try:
            await self.bot.send_message(user.telegram_chat_id, escape(text), reply_markup=offer_buttons(offers))
        except Forbidden:
            log.info("owner not told: they blocked the bot", user_id=str(user_id))
            return "they blocked the bot"
        except TelegramError as exc:
            log.warning("owner not told", user_id=str(user_id), reason=str(exc))
            return f"Telegram refused it: {exc}"
        return None

    async def follow(self, user_id: uuid.UUID, instance_id: uuid.UUID, title: str) -> None:
        """A progress message for the instance's current action, edited as it goes, in a task of
        its own: the caller (the outbox worker) does not wait for the action."""
        user = await self._chat_of(user_id)
        if user is None or self.instances is None:
            return
        task = asyncio.create_task(self._follow(user, instance_id, title), name=f"follow-{instance_id}")
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _follow(self, user: User, instance_id: uuid.UUID, title: str) -> None:
        bot, instances = self.bot, self.instances
        try:
            instance = await instances.get(user, instance_id)
            events = await instances.progress(user, instance_id)
            if events is None:
                return  # no action recorded: nothing to follow
            message = await bot.send_message(user.telegram_chat_id, f"<b>{escape(title)}…</b>")
            await progress.follow(message, title, events, instance, instances.public_url(instance))
        except asyncio.CancelledError:
            raise
        except Forbidden:
            log.info("progress not shown: the owner blocked the bot", user_id=str(user.id))
        except (TelegramError, ServiceError) as exc:
            log.warning("progress not shown", user_id=str(user.id), instance_id=str(instance_id), reason=str(exc))
        except Exception:
            log.exception("progress not shown", user_id=str(user.id), instance_id=str(instance_id))
