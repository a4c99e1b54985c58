"""Every update the bot takes in, counted by kind (clawfleet_bot_updates: message,
callback_query, ...), in a handler group before the gate, so refused and ignored ones count too."""

from __future__ import annotations

from telegram import Update
from telegram.ext import TypeHandler

from bot.gate import GATE_GROUP
from metrics import Metrics

COUNT_GROUP = GATE_GROUP - 1  # groups run in order, each whatever an earlier one did (unless it stops them)


def update_kind(update: Update) -> str:
    """The update's kind: the one field of Telegram's update types it carries."""
    return next((kind for kind in Update.ALL_TYPES if getattr(update, kind, None) is not None), "other")


def counting_handler(metrics: Metrics) -> TypeHandler:
    async def count(update: Update, _context: object) -> None:
        metrics.bot_updates.labels(update_kind(update)).inc()

    return TypeHandler(Update, count)
