"""Changing an assistant from chat: /model (provider and model), /key, /token. A change is
stored at once and applied by a restart, which the bot offers with a button."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.context import current_user, services
from bot.management import their_instance
from bot.replies import delete_secret, edit, escape
from db.errors import ServiceError
from provisioner.providers import PROVIDERS, get_provider
from provisioner.service import InstanceChanges
from db.status import Status

PICK_PROVIDER, PICK_MODEL, NEW_KEY, NEW_TOKEN = "pick_provider", "pick_model", "new_key", "new_token"
CHANGE = "change"  # user_data key: what is being changed (no secrets: those are applied at once)
END = ConversationHandler.END


def _restart_button(instance_id: object) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Restart now", callback_data=f"act:restart:{instance_id}")]])


async def _apply(update: Update, context: ContextTypes.DEFAULT_TYPE, changes: InstanceChanges, what: str,
                 note: str = "") -> bool:
    """Store the changes and say so; `note` (about a message holding a secret) goes with either answer."""
    user = current_user(context)
    try:
        updated = await services(context).instances.update_config(user, context.user_data[CHANGE]["id"], changes)
    except ServiceError as problem:
        await update.effective_chat.send_message(f"{escape(problem.message)}{note}\n\nTry again, or /cancel.")
        return False
    if updated.changed and updated.instance.status == Status.RUNNING:
        await update.effective_chat.send_message(f"{what} It takes effect when your assistant restarts.{note}",
                                                 reply_markup=_restart_button(updated.instance.id))
    else:
        said = f"{what} It takes effect the next time your assistant starts." if updated.changed else "Nothing changed."
        await update.effective_chat.send_message(f"{said}{note}")
    context.user_data.pop(CHANGE, None)
    return True


# -- /model -----------------------------------------------------------------------------------
async def model(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    _, instance = await their_instance(update, context)
    if instance is None:
        return END
    context.user_data[CHANGE] = {"id": str(instance.id), "provider": instance.model_provider}
    buttons = [[InlineKeyboardButton(("• " if p.id == instance.model_provider else "") + p.display_name,
                                     callback_data=f"chprovider:{p.id}")] for p in PROVIDERS]
    await update.effective_chat.send_message(
        f"Now: {escape(instance.model_provider)}/{escape(instance.model)}. Which provider?",
        reply_markup=InlineKeyboardMarkup(buttons))
    return PICK_PROVIDER


async def provider_picked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    query = update.callback_query
    await query.answer()
    try:
        provider = get_provider(query.data.removeprefix("chprovider:"))
    except ValueError:
        return PICK_PROVIDER
    context.user_data[CHANGE]["new_provider"] = provider.id
    buttons = [[InlineKeyboardButton(m, callback_data=f"chmodel:{m}")] for m in provider.models]
    await edit(query.message, f"{escape(provider.display_name)}: which model?", InlineKeyboardMarkup(buttons))
    return PICK_MODEL


async def model_picked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    query = update.callback_query
    await query.answer()
    change = context.user_data[CHANGE]
    provider = get_provider(change["new_provider"])
    chosen = query.data.removeprefix("chmodel:")
    if chosen not in provider.models:
        return PICK_MODEL
    change["new_model"] = chosen
    if provider.id == change["provider"]:
        await edit(query.message, f"Model: {escape(provider.display_name)}, {escape(chosen)}.")
        done = await _apply(update, context, InstanceChanges(model=chosen), "Model changed.")
        return END if done else PICK_MODEL
    await edit(query.message, f"Switching to {escape(provider.display_name)} needs its API key. Send it to me; "
                              f"I delete your message at once.\n\n<i>{escape(provider.key_hint)}</i>")
    return NEW_KEY


# -- /key -------------------------------------------------------------------------------------
async def key(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    _, instance = await their_instance(update, context)
    if instance is None:
        return END
    context.user_data[CHANGE] = {"id": str(instance.id), "provider": instance.model_provider}
    provider = get_provider(instance.model_provider)
    await update.effective_chat.send_message(
        f"Send me the new {escape(provider.display_name)} API key; I delete your message at once. /cancel to keep "
        "the current one.")
    return NEW_KEY


async def key_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    text = (update.effective_message.text or "").strip()
    note = await delete_secret(update.effective_message, "key")
    change = context.user_data[CHANGE]
    if "new_provider" in change:
        changes = InstanceChanges(model_provider=change["new_provider"], model=change["new_model"], api_key=text)
        what = f"Switched to {get_provider(change['new_provider']).display_name}, key ending in …{text[-4:]}."
    else:
        changes, what = InstanceChanges(api_key=text), f"Key replaced (ending in …{text[-4:]})."
    return END if await _apply(update, context, changes, escape(what), note) else NEW_KEY


# -- /token -----------------------------------------------------------------------------------
async def token(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    _, instance = await their_instance(update, context)
    if instance is None:
        return END
    context.user_data[CHANGE] = {"id": str(instance.id)}
    await update.effective_chat.send_message(
        "Send me the new bot token from @BotFather; I delete your message at once. /cancel to keep the current one.")
    return NEW_TOKEN


async def token_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    text = (update.effective_message.text or "").strip()
    note = await delete_secret(update.effective_message, "bot token")
    done = await _apply(update, context, InstanceChanges(telegram_bot_token=text), "Bot token replaced.", note)
    return END if done else NEW_TOKEN


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("Please send it as a plain text message (or /cancel).")


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data.pop(CHANGE, None)
    await update.effective_chat.send_message("Cancelled: nothing changed.")
    return END


def changes_handler(timeout_s: float) -> ConversationHandler:
    text = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[CommandHandler("model", model), CommandHandler("key", key), CommandHandler("token", token)],
        states={
            PICK_PROVIDER: [CallbackQueryHandler(provider_picked, pattern="^chprovider:")],
            PICK_MODEL: [CallbackQueryHandler(model_picked, pattern="^chmodel:")],
            NEW_KEY: [MessageHandler(text, key_received), MessageHandler(~filters.COMMAND, not_text)],
            NEW_TOKEN: [MessageHandler(text, token_received), MessageHandler(~filters.COMMAND, not_text)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        name="changes",
        persistent=True,
        conversation_timeout=timeout_s,
        allow_reentry=True,
    )
