"""Instance backups from chat: /backups lists the latest few of the owner's assistant (asking
which assistant first when they have several), with buttons to back up now, to restore the
latest after a confirmation that says what happens, and the instance's page for the rest.
Thin calls into provisioner.instance_backups.service.

Callback data (Telegram allows 64 bytes, so ids go as 22-character base64url):
`backups:show:<instance>`, `backups:now:<instance>`, `backups:ask:<instance>:<backup>` (the
confirmation), `backups:restore:<instance>:<backup>`, `backups:keep`."""

from __future__ import annotations

import base64
import binascii
import re
import uuid

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot import progress
from bot.context import BotServices, current_user, services
from bot.management import NO_ASSISTANT
from bot.replies import edit, escape
from db.errors import NotFound, ServiceError
from db.models import Instance, InstanceBackup, User
from provisioner.instance_backups.words import kind_text, size_text, when_text

SHOWN = 5  # the latest this many; the instance's page lists them all
NOT_HERE = "Backups are not available on this ClawFleet."
GONE = ("That backup or assistant is no longer there (deleted, or the backup let go for newer ones). "
        "Send /backups for the current list.")
UNKNOWN_BUTTON = "This button no longer works. Send /backups for a fresh list."
_DATA = re.compile(r"backups:(show|now|ask|restore)((?::[A-Za-z0-9_-]{22}){1,2})|backups:(keep)")
_TAKES_BACKUP = {"ask", "restore"}
Context = ContextTypes.DEFAULT_TYPE


def short_id(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def long_id(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


def parse(data: str) -> tuple[str, list[uuid.UUID]] | None:
    """The verb and ids a button of ours carries; None for anything else (an older release's)."""
    found = _DATA.fullmatch(data or "")
    if found is None:
        return None
    if found.group(3):
        return "keep", []
    verb, ids = found.group(1), found.group(2).split(":")[1:]
    if len(ids) != (2 if verb in _TAKES_BACKUP else 1):
        return None
    try:
        return verb, [long_id(each) for each in ids]
    except (binascii.Error, ValueError):
        return None


def _label(instance: Instance) -> str:
    return f"@{instance.telegram_bot_username}" if instance.telegram_bot_username else instance.subdomain


def _line(backup: InstanceBackup) -> str:
    return f"• {when_text(backup.created_at)} · {size_text(backup.size)} · {kind_text(backup.kind)}"


def page_url(the: BotServices, instance: Instance) -> str:
    return f"{the.instances.urls.public_url.rstrip('/')}/instances/{instance.id}#backups"


async def listing(the: BotServices, user: User, instance: Instance) -> tuple[str, InlineKeyboardMarkup]:
    found = await the.backups.list(user, instance.id)
    lines = [f"<b>Backups of {escape(_label(instance))}</b>", ""]
    lines += [escape(_line(backup)) for backup in found[:SHOWN]] or ["No backups yet."]
    if len(found) > SHOWN:
        lines.append(f"…and {len(found) - SHOWN} older.")
    url = page_url(the, instance)
    lines += ["", f"Download, restore into a new assistant or delete on its page: {escape(url)}"]
    rows = [[InlineKeyboardButton("Back up now", callback_data=f"backups:now:{short_id(instance.id)}")]]
    if found:
        rows.append([InlineKeyboardButton(
            "Restore the latest…", callback_data=f"backups:ask:{short_id(instance.id)}:{short_id(found[0].id)}")])
    if url.startswith("https://"):  # Telegram opens no other link from a button
        rows.append([InlineKeyboardButton("All backups", url=url)])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def backups(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    the, chat = services(context), update.effective_chat
    if the.backups is None:
        await chat.send_message(NOT_HERE)
        return
    user = current_user(context)
    owned = sorted(await the.instances.list(user), key=lambda instance: instance.created_at)
    if not owned:
        await chat.send_message(NO_ASSISTANT)
    elif len(owned) == 1:
        text, markup = await listing(the, user, owned[0])
        await chat.send_message(text, reply_markup=markup)
    else:
        await chat.send_message("Which assistant's backups?", reply_markup=InlineKeyboardMarkup([
            [InlineKeyboardButton(_label(each), callback_data=f"backups:show:{short_id(each.id)}")]
            for each in owned]))


def _confirmation(instance: Instance, backup: InstanceBackup) -> tuple[str, InlineKeyboardMarkup]:
    ids = f"{short_id(instance.id)}:{short_id(backup.id)}"
    text = (f"<b>Restore the backup of {escape(when_text(backup.created_at))}</b> "
            f"({escape(size_text(backup.size))}, {escape(kind_text(backup.kind))}) into "
            f"{escape(_label(instance))}?\n\n"
            "A backup of its current state is taken first (kept as “before a restore”). Then your assistant "
            "stops, its conversations, memory and files are replaced with the backup's, and it starts again.")
    return text, InlineKeyboardMarkup([
        [InlineKeyboardButton("Restore it", callback_data=f"backups:restore:{ids}")],
        [InlineKeyboardButton("Cancel", callback_data="backups:keep")],
    ])


async def backups_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    parsed = parse(query.data)
    if parsed is None:
        await query.answer(UNKNOWN_BUTTON, show_alert=True)
        return
    await query.answer()
    verb, ids = parsed
    the = services(context)
    if verb == "keep":
        await edit(query.message, "Nothing was restored.")
        return
    if the.backups is None:
        await edit(query.message, NOT_HERE)
        return
    try:
        await _ACTIONS[verb](update, context, the, current_user(context), *ids)
    except NotFound:  # the instance or backup went since the buttons were made
        await edit(query.message, GONE)
    except ServiceError as problem:
        await update.effective_chat.send_message(escape(problem.message))


async def _show(update: Update, context: Context, the: BotServices, user: User, instance_id: uuid.UUID) -> None:
    text, markup = await listing(the, user, await the.instances.get(user, instance_id))
    await edit(update.callback_query.message, text, markup)


async def _back_up_now(update: Update, context: Context, the: BotServices, user: User, instance_id: uuid.UUID) -> None:
    instance = await the.backups.back_up(user, instance_id)
    message = await update.effective_chat.send_message("<b>Backing up your assistant…</b>")
    again = InlineKeyboardMarkup([[InlineKeyboardButton("Try again",
                                                        callback_data=f"backups:now:{short_id(instance.id)}")]])
    await _follow(update, context, the, user, instance, message, "Backing up your assistant", again)


async def _ask(update: Update, context: Context, the: BotServices, user: User, instance_id: uuid.UUID,
               backup_id: uuid.UUID) -> None:
    instance = await the.instances.get(user, instance_id)
    text, markup = _confirmation(instance, await the.backups.get(user, instance.id, backup_id))
    await edit(update.callback_query.message, text, markup)


async def _restore(update: Update, context: Context, the: BotServices, user: User, instance_id: uuid.UUID,
                   backup_id: uuid.UUID) -> None:
    backup = await the.backups.get(user, instance_id, backup_id)
    instance = await the.backups.restore(user, instance_id, backup.id, "same")
    title = f"Restoring the backup of {when_text(backup.created_at)}"
    message = update.callback_query.message
    await edit(message, f"<b>{escape(title)}…</b>")
    listed = InlineKeyboardMarkup([[InlineKeyboardButton("See the backups",
                                                         callback_data=f"backups:show:{short_id(instance.id)}")]])
    await _follow(update, context, the, user, instance, message, title, listed)


async def _follow(update: Update, context: Context, the: BotServices, user: User, instance: Instance, message: Message,
                  title: str, on_failure: InlineKeyboardMarkup) -> None:
    events = await the.instances.progress(user, instance.id)
    if events is not None:
        context.application.create_task(progress.follow(
            message, title, events, instance, the.instances.public_url(instance), retry=on_failure), update=update)


_ACTIONS = {"show": _show, "now": _back_up_now, "ask": _ask, "restore": _restore}


def backup_handlers() -> list:
    return [CommandHandler("backups", backups), CallbackQueryHandler(backups_button, pattern="^backups:")]
