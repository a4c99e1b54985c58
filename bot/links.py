"""Linking a Telegram account to a web account, and signing in to the dashboard from chat:
`/start link-…` (what the dashboard's t.me link sends) and `/link CODE` link the sender to the
account that made the code; `/dashboard` hands out a one-time login link. The gate
(bot/gate.py) lets link codes through for anyone: the web account decides access then."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import CommandHandler, filters

from accounts.login_links import CODE_PREFIX, LIFETIMES, LOGIN
from accounts.telegram_entry import Sender
from bot.context import BotContext, current_user, services
from bot.replies import delete_secret, escape
from db.errors import ServiceError

LINK_USAGE = "Send /link followed by the code the dashboard shows you, like /link link-abcd234efg."
DASHBOARD_MINUTES = int(LIFETIMES[LOGIN].total_seconds() // 60)


def link_code(update: Update) -> str | None:
    """The code of a `/start link-…` or `/link …` message ("" for a bare /link), else None."""
    words = (update.message.text or "").split() if update.message else []
    if not words:
        return None
    command = words[0].partition("@")[0]
    if command == "/link":
        return words[1][:64] if len(words) >= 2 else ""
    if command == "/start" and len(words) >= 2 and words[1].startswith(CODE_PREFIX):
        return words[1][:64]
    return None


async def link(update: Update, context: BotContext) -> None:
    code = link_code(update)
    chat = update.effective_chat
    if not code:
        await chat.send_message(LINK_USAGE)
        return
    unseen = await delete_secret(update.message, "link code")
    sender = update.effective_user
    try:
        user = await services(context).account_links.link_telegram(
            Sender(sender.id, chat.id, sender.username), code)
    except ServiceError as problem:
        await chat.send_message(escape(problem.message) + unseen)
        return
    await chat.send_message(f"Linked: this Telegram account now signs in to {escape(user.email)}.{unseen}")


async def dashboard(update: Update, context: BotContext) -> None:
    url = await services(context).account_links.dashboard_link(current_user(context))
    text = (f"Your login link to the dashboard. It works once, within {DASHBOARD_MINUTES} minutes; "
            "send /dashboard again for a new one.")
    try:
        await update.effective_chat.send_message(
            text, reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Open the dashboard", url=url)]]))
    except BadRequest:  # Telegram takes no button to a host it cannot reach (localhost): the link as text
        await update.effective_chat.send_message(f"{text}\n\n{escape(url)}")


def link_handlers() -> list:
    """Before the onboarding conversation's /start: a link code is not a setup."""
    return [
        CommandHandler("start", link, filters=filters.Regex(rf"^/start(@\w+)?\s+{CODE_PREFIX}")),
        CommandHandler("link", link),
        CommandHandler("dashboard", dashboard),
    ]
