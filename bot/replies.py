"""Sending and editing messages without letting Telegram's everyday refusals end a
conversation: an edit that changes nothing, a message already gone, a user who blocked us.
Flood control (pacing, 429 retry_after) is the rate limiter's job (bot/pacing.py)."""

from __future__ import annotations

import html

import structlog
from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError

log = structlog.get_logger(__name__)


def escape(text: object) -> str:
    return html.escape(str(text), quote=False)


async def edit(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        await message.edit_text(text, reply_markup=markup)  # HTML, no previews: the application's defaults
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


async def delete_secret(message: Message, what: str) -> str:
    """Delete a message that holds a secret (`what`: "key", "bot token"). Returns what to add to
    the next reply: nothing once it is gone, else a request to delete it themselves (Telegram
    would not: too old, already gone, or it did not answer)."""
    try:
        if await message.delete():
            return ""
    except TelegramError as exc:
        log.warning("could not delete a message holding a secret", reason=exc.message)
    return f"\n\n<b>Please delete your message with the {escape(what)} yourself</b>: I could not."
