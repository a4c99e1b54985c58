"""The Notifier the platform tells owners things through, when the bot runs: a message in
the owner's chat with ClawFleet's bot."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot
from telegram.error import Forbidden, TelegramError

from bot.replies import escape
from db.models import User
from provisioner.notify import Offer

log = structlog.get_logger(__name__)


class TelegramNotifier:
    """Made before the bot starts (the provisioner needs it first); attached once it runs.
    Messages before that, or to someone with no chat, are logged and dropped."""

    def __init__(self) -> None:
        self.bot: Bot | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None

    def attach(self, bot: Bot | None, sessions: async_sessionmaker[AsyncSession] | None) -> None:
        self.bot, self.sessions = bot, sessions

    async def notify(self, user_id: uuid.UUID, text: str, offers: Sequence[Offer] = ()) -> None:
        if self.bot is None or self.sessions is None:
            log.info("owner not told: the bot is not running", user_id=str(user_id))
            return
        async with self.sessions() as session:
            user = await session.get(User, user_id)
        if user is None or user.telegram_chat_id is None:
            log.info("owner not told: no Telegram chat", user_id=str(user_id))
            return
        try:
            await self.bot.send_message(user.telegram_chat_id, escape(text))
        except Forbidden:
            log.info("owner not told: they blocked the bot", user_id=str(user_id))
        except TelegramError as exc:
            log.warning("owner not told", user_id=str(user_id), reason=str(exc))

    async def follow(self, user_id: uuid.UUID, instance_id: uuid.UUID, title: str) -> None:
        return None  # shown by the bot's own progress messages for now
