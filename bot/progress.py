"""One chat message that follows an action on an instance: edited as progress events arrive
(step, elapsed seconds), ending with what the owner can do next."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import TelegramError

from bot.replies import edit, escape
from db.models import Instance
from provisioner.progress import ProgressEvent

log = structlog.get_logger(__name__)

MIN_EDIT_INTERVAL_S = 1.0  # Telegram allows about one edit per second in a chat


def retry_button(instance: Instance) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Retry", callback_data=f"act:start:{instance.id}")]])


def ready_buttons(instance: Instance, instance_url: str) -> InlineKeyboardMarkup | None:
    """Their bot, and their instance's own page as a button when it is a public HTTPS address
    (Telegram opens nothing else; a laptop's http://…localhost stays text in the message)."""
    rows = []
    if instance.telegram_bot_username:
        username = instance.telegram_bot_username
        rows.append([InlineKeyboardButton(f"Open @{username}", url=f"https://t.me/{username}")])
    if instance_url.startswith("https://"):
        rows.append([InlineKeyboardButton("Open its dashboard", url=instance_url)])
    return InlineKeyboardMarkup(rows) if rows else None


def render(title: str, events: list[ProgressEvent]) -> str:
    lines = [f"<b>{escape(title)}</b>", ""]
    for event in events:
        mark = "✗" if event.failed else "✓" if event is not events[-1] or event.done else "…"
        lines.append(f"{mark} {escape(event.message)} <i>({event.elapsed_ms / 1000:.0f} s)</i>")
    return "\n".join(lines)


async def follow(message: Message, title: str, events: AsyncIterator[ProgressEvent], instance: Instance,
                 dashboard_url: str, *, retry: InlineKeyboardMarkup | None = None) -> ProgressEvent | None:
    """Edit `message` as the action goes; returns its last event (None if the stream ended early).
    `retry`: what a failure offers (by default, starting the instance again)."""
    seen: list[ProgressEvent] = []
    last_edit = 0.0
    try:
        async for event in events:
            seen.append(event)
            if event.final:
                break
            if time.monotonic() - last_edit >= MIN_EDIT_INTERVAL_S:
                await edit(message, render(title, seen))
                last_edit = time.monotonic()
        if not seen:
            return None
        final = seen[-1]
        text = render(title, seen)
        if final.failed:
            await edit(message, f"{text}\n\n{escape(final.reason or final.message)}", retry or retry_button(instance))
        elif final.step == "ready":
            await edit(message, f"{text}\n\nWrite to your bot: it answers you now.\n"
                                f"Dashboard: {escape(dashboard_url)}", ready_buttons(instance, dashboard_url))
        else:
            await edit(message, text)
        return final
    except TelegramError as exc:  # the chat went away (blocked, deleted): the action goes on regardless
        log.warning("could not show progress", reason=str(exc))
        return seen[-1] if seen else None
