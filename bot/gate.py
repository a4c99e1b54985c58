"""The bot's door, before any handler: only private chats, and only people with an account or
whom the access policy lets in (accounts/telegram_entry.py), get further.

Groups and channels are ignored: no answer, nothing stored (the bot has nothing to say there,
and an answer in a group would tell its members about someone's assistant). A stranger the
policy keeps out is told why once a minute at most (the refusal record's pace), and whoever
tries an invite code always hears how it went. A link code (bot/links.py) goes through for
anyone: the web account it links to decides access from then on."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, TypeHandler

from accounts.invites import CODE_PREFIX
from accounts.telegram_entry import Refused, Sender
from bot.context import BotContext, services
from bot.links import link_code
from bot.replies import escape

GATE_GROUP = -1  # handler groups run in order: this one before the conversations (group 0)


def gate_handler() -> TypeHandler:
    return TypeHandler(Update, let_in)


async def let_in(update: Update, context: BotContext) -> None:
    chat, sender = update.effective_chat, update.effective_user
    if chat is None or chat.type != ChatType.PRIVATE or sender is None:
        raise ApplicationHandlerStop  # a group or a channel
    if update.effective_message is None and update.callback_query is None:
        raise ApplicationHandlerStop  # membership changes and the like: nobody asked anything
    if link_code(update) is not None:
        return  # the web account that made the code decides access, once linked (bot/links.py)
    the = services(context)
    outcome = await the.entry.enter(Sender(sender.id, chat.id, sender.username), invite_code(update))
    if isinstance(outcome, Refused):
        if update.callback_query:
            await update.callback_query.answer()  # or its button spins
        if outcome.first_in_a_while and (update.message or update.callback_query):
            await chat.send_message(refusal_text(the.access.mode, sender.id, outcome.reason))
        raise ApplicationHandlerStop
    context.account = outcome.user
    if outcome.invited:
        await chat.send_message("Invite accepted: welcome in.")


def invite_code(update: Update) -> str | None:
    """The code of a `/start inv-…` message (what an invite link sends), if that is what came."""
    words = (update.message.text or "").split() if update.message else []
    if len(words) >= 2 and words[0].partition("@")[0] == "/start" and words[1].startswith(CODE_PREFIX):
        return words[1][:64]
    return None


def refusal_text(mode: str, telegram_user_id: int, reason: str) -> str:
    """A refusal, with what this person can do about it from here."""
    if mode == "invite":
        hint = "Got an invite code? Send /start followed by the code."
    else:
        hint = f"Your Telegram id is <code>{telegram_user_id}</code>: give it to the operator."
    return f"Sorry: {escape(reason)}\n\n{hint}"
