"""Day-to-day management from chat: /status, /restart, /stop, /start_instance, /logs, /pair,
/delete, /help, and the buttons they show (/billing and /plan: bot/billing.py; /usage:
bot/usage.py). Each handler is a thin call into the service layer.
"""

from __future__ import annotations

import io
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from billing.closing import close_account
from bot import progress
from bot.context import current_user, services
from bot.replies import edit, escape
from db.errors import ServiceError
from db.models import Instance, User
from db.types import utcnow
from db.status import ACTIVE, Status

LOG_LINES = 40
INLINE_LOG_LIMIT = 3500  # longer logs go as a file (a message holds 4,096 characters)

HELP = (
    "<b>What I can do</b>\n\n"
    "/start: set up your assistant\n"
    "/status: how your assistant is doing\n"
    "/restart, /stop, /start_instance: control it\n"
    "/logs: its latest log lines\n"
    "/backups: its backups; back up now or restore the latest\n"
    "/pair CODE: approve the pairing code your bot sent someone\n"
    "/model: change the provider or model\n"
    "/key: replace the API key\n"
    "/token: replace the bot token\n"
    "/delete: delete it (keeping or erasing its data)\n"
    "/delete_account: delete your ClawFleet account, its assistants and their data\n"
    "/billing: your plan, payments and cancelling\n"
    "/plan: change your plan\n"
    "/usage: model spending this month and your monthly cap (/usage cap 20, /usage cap off)\n"
    "/dashboard: a one-time login link to the dashboard\n"
    "/link CODE: sign in to your web account from here (the code is on its dashboard)\n"
    "/cancel: stop what we are doing"
)

COMMANDS = [  # for setMyCommands: what Telegram's menu shows
    ("start", "Set up your assistant"),
    ("status", "How your assistant is doing"),
    ("restart", "Restart your assistant"),
    ("stop", "Stop your assistant"),
    ("start_instance", "Start your assistant again"),
    ("logs", "Latest log lines"),
    ("backups", "Back up or restore your assistant"),
    ("pair", "Approve a pairing code"),
    ("model", "Change provider or model"),
    ("key", "Replace the API key"),
    ("token", "Replace the bot token"),
    ("delete", "Delete your assistant"),
    ("delete_account", "Delete your account and everything in it"),
    ("billing", "Your plan and payments"),
    ("plan", "Change your plan"),
    ("usage", "Model spending and your monthly cap"),
    ("dashboard", "A one-time login link to the dashboard"),
    ("link", "Link this Telegram account to your web account"),
    ("help", "What I can do"),
    ("cancel", "Stop what we are doing"),
]

NO_ASSISTANT = "You have no assistant yet. Send /start to set one up."

_VERBS = {"start": "Starting your assistant", "stop": "Stopping your assistant",
          "restart": "Restarting your assistant"}


async def their_instance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> tuple[User, Instance | None]:
    """The sender and their assistant (the newest, when a plan allows several)."""
    user = current_user(context)
    owned = await services(context).instances.list(user)
    if not owned:
        await update.effective_chat.send_message(NO_ASSISTANT)
        return user, None
    return user, max(owned, key=lambda instance: instance.created_at)


def _uptime(since: datetime | None) -> str:
    if since is None:
        return ""
    minutes = int((utcnow() - since).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


# Statuses said in words where the bare word would puzzle (the rest read as they are).
STATUS_WORDS = {Status.AWAITING_PAYMENT: "waiting for payment (/billing)",
                Status.SUSPENDED: "suspended: the subscription ended (/billing brings it back)",
                Status.HIBERNATED: "asleep; it wakes on your next message"}


OPERATOR_SUSPENDED = "suspended by the platform's operator: it stays stopped, with its data, until they resume it"


def _held_by_operator(instance: Instance) -> bool:
    return instance.status == Status.SUSPENDED and instance.admin_suspended_at is not None


def status_text(instance: Instance, url: str) -> str:
    word = OPERATOR_SUSPENDED if _held_by_operator(instance) else STATUS_WORDS.get(instance.status, instance.status)
    lines = [f"<b>{'@' + escape(instance.telegram_bot_username) if instance.telegram_bot_username else 'Your assistant'}"
             f"</b>: {escape(word)}"]
    if instance.status == Status.RUNNING and instance.running_since:
        lines.append(f"Up for {_uptime(instance.running_since)}")
    lines.append(f"Model: {escape(instance.model_provider)}/{escape(instance.model)}")
    lines.append(f"Dashboard: {escape(url)}")
    if instance.restart_count:
        lines.append(f"Restarted after a crash: {instance.restart_count} time(s)")
    if instance.memory_restarts:
        lines.append(f"Restarted at a quiet moment to free memory: {instance.memory_restarts} time(s)")
    if instance.status_reason:
        lines.append(f"\n{escape(instance.status_reason)}")
    return "\n".join(lines)


def status_buttons(instance: Instance) -> InlineKeyboardMarkup | None:
    if _held_by_operator(instance):  # neither paying nor starting lifts it: nothing to press
        return None
    if instance.status in (Status.AWAITING_PAYMENT, Status.SUSPENDED):  # paying, not starting, is the way on
        return InlineKeyboardMarkup([[InlineKeyboardButton("Choose a plan", callback_data="billing:show")]])
    if instance.status in ACTIVE:
        row = [InlineKeyboardButton("Restart", callback_data=f"act:restart:{instance.id}"),
               InlineKeyboardButton("Stop", callback_data=f"act:stop:{instance.id}")]
    else:
        row = [InlineKeyboardButton("Start", callback_data=f"act:start:{instance.id}")]
    return InlineKeyboardMarkup([row])


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    _, instance = await their_instance(update, context)
    if instance is not None:
        url = services(context).instances.public_url(instance)
        await update.effective_chat.send_message(status_text(instance, url), reply_markup=status_buttons(instance))


async def _act(update: Update, context: ContextTypes.DEFAULT_TYPE, verb: str, instance_id: str | None) -> None:
    """Run start/stop/restart and follow it in one message."""
    the = services(context)
    user = current_user(context)
    if instance_id is None:
        _, instance = await their_instance(update, context)
        if instance is None:
            return
        instance_id = str(instance.id)
    try:
        instance = await getattr(the.instances, verb)(user, instance_id)
    except ServiceError as problem:
        await update.effective_chat.send_message(escape(problem.message))
        return
    message = await update.effective_chat.send_message(f"<b>{_VERBS[verb]}…</b>")
    events = await the.instances.progress(user, instance.id)
    if events is not None:
        context.application.create_task(
            progress.follow(message, _VERBS[verb], events, instance, the.instances.public_url(instance)),
            update=update)


async def restart(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _act(update, context, "restart", None)


async def stop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _act(update, context, "stop", None)


async def start_instance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _act(update, context, "start", None)


async def act_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    _, verb, instance_id = query.data.split(":", 2)
    if verb in _VERBS:
        await _act(update, context, verb, instance_id)


async def logs(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user, instance = await their_instance(update, context)
    if instance is None:
        return
    lines = [line.rstrip("\n") async for line in
             await services(context).instances.logs(user, instance.id, tail=LOG_LINES, follow=False)]
    text = "\n".join(lines).strip()  # redacted by the instance service
    chat = update.effective_chat
    if not text:
        await chat.send_message("Its log is empty so far.")
    elif len(text) <= INLINE_LOG_LIMIT:
        await chat.send_message(f"<pre>{escape(text)}</pre>")
    else:
        await chat.send_document(io.BytesIO(text.encode()), filename="assistant.log",
                                 caption=f"The last {LOG_LINES} log lines (secrets masked).")


async def pair(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/pair CODE: the sender of the code (who messaged the assistant's bot) becomes its owner."""
    user, instance = await their_instance(update, context)
    if instance is None:
        return
    chat = update.effective_chat
    if len(context.args or []) != 1:
        await chat.send_message("Send /pair and the code your bot answered with, e.g. <code>/pair HX7K2MQP</code>. "
                                "No code yet? Message your bot; it answers with one.")
        return
    try:
        instance = await services(context).instances.approve_pairing(user, instance.id, context.args[0])
    except ServiceError as problem:
        await chat.send_message(escape(problem.message))
        return
    await chat.send_message(f"Paired: your bot now answers Telegram user {instance.telegram_allow_from}, "
                            "and only them: message it again to begin.")


async def delete(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    _, instance = await their_instance(update, context)
    if instance is None:
        return
    buttons = InlineKeyboardMarkup([
        [InlineKeyboardButton("Delete, keep its data", callback_data=f"delete:keep:{instance.id}")],
        [InlineKeyboardButton("Delete and erase everything", callback_data=f"delete:purge:{instance.id}")],
        [InlineKeyboardButton("Cancel", callback_data="delete:no")],
    ])
    await update.effective_chat.send_message(
        "Delete your assistant? Its bot stops answering. Keeping its data lets the operator restore it; "
        "erasing cannot be undone.", reply_markup=buttons)


async def delete_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    choice, _, instance_id = query.data.removeprefix("delete:").partition(":")
    if choice == "no":
        await edit(query.message, "Nothing was deleted.")
        return
    user = current_user(context)
    the = services(context)
    try:
        instance = await the.instances.delete(user, instance_id, purge=choice == "purge")
    except ServiceError as problem:
        await edit(query.message, escape(problem.message))
        return
    await edit(query.message, "<b>Deleting your assistant…</b>")
    events = await the.instances.progress(user, instance.id)
    if events is not None:
        context.application.create_task(
            progress.follow(query.message, "Deleting your assistant", events, instance, ""), update=update)


async def delete_account(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The whole account, after a confirmation: their Telegram identity is how they log in here."""
    buttons = InlineKeyboardMarkup([
        [InlineKeyboardButton("Delete my account and everything in it", callback_data="account:delete")],
        [InlineKeyboardButton("Cancel", callback_data="account:keep")],
    ])
    await update.effective_chat.send_message(
        "Delete your ClawFleet account? Every assistant of yours stops and its data is erased, your "
        "subscription (if any) ends now, and this cannot be undone.", reply_markup=buttons)


async def delete_account_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    if query.data != "account:delete":
        await edit(query.message, "Nothing was deleted.")
        return
    the = services(context)
    await edit(query.message, "<b>Deleting your account…</b>")
    try:
        await close_account(current_user(context), accounts=the.accounts, instances=the.instances,
                            billing=the.billing)
    except ServiceError as problem:
        await edit(query.message, f"<b>Nothing was deleted:</b> {escape(problem.message)}")
        return
    context.user_data.clear()
    await edit(query.message, "Your account is deleted, with its assistants and their data. Send /start "
                              "if you ever want a new one.")


async def show_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_chat.send_message(HELP)


async def nothing_to_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_chat.send_message("There is nothing to cancel. /help lists what I can do.")


def management_handlers() -> list:
    return [
        CommandHandler("status", status),
        CommandHandler("restart", restart),
        CommandHandler("stop", stop),
        CommandHandler("start_instance", start_instance),
        CommandHandler("logs", logs),
        CommandHandler("pair", pair),
        CommandHandler("delete", delete),
        CommandHandler("delete_account", delete_account),
        CommandHandler("help", show_help),
        CommandHandler("cancel", nothing_to_cancel),
        CallbackQueryHandler(act_button, pattern="^act:"),
        CallbackQueryHandler(delete_button, pattern="^delete:"),
        CallbackQueryHandler(delete_account_button, pattern="^account:"),
    ]
