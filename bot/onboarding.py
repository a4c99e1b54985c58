"""The onboarding conversation: provider → model → API key → bot token → deploy; with billing
on and no active subscription, a plan step comes before the summary, and deploying stores the
assistant (awaiting payment) and answers with a Stripe Checkout button (bot/billing.py).

One async function per step, returning the next step (python-telegram-bot's
conversationbot.py). States are strings so the database persistence stores them as they are.
Secrets are deleted from the chat as soon as they are read and kept sealed (bot/pending.py).
"""

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

from accounts.invites import CODE_PREFIX
from bot import progress
from bot.billing import checkout_reply, plan_label, plans_text
from bot.context import current_user, services
from bot.gate import refusal_text
from bot.pending import open_pending, seal_pending
from bot.replies import delete_secret, edit, escape
from db.errors import AccessDenied, ServiceError
from db.status import Status
from provisioner.providers import PROVIDERS, Provider, get_provider

PROVIDER, MODEL, API_KEY, BOT_TOKEN, PLAN, CONFIRM = "provider", "model", "api_key", "bot_token", "plan", "confirm"
SETUP = "setup"  # the key of the conversation's answers in user_data
END = ConversationHandler.END

WELCOME = (
    "<b>Welcome to ClawFleet.</b> In about two minutes you will have your own AI assistant, "
    "answering you on a Telegram bot of your own.\n\n"
    "You need:\n"
    "• an API key from a model provider (Anthropic, OpenAI or Kimi)\n"
    "• a bot token from @BotFather (I will show you how)\n"
    "{paying}\n"
    "Send /cancel at any time to stop, /back to go back one step.\n\n"
)
BOTFATHER_HOWTO = (
    "Now your assistant's own bot:\n"
    "1. Open @BotFather and send /newbot\n"
    "2. Choose a name and a username ending in <code>bot</code>\n"
    "3. BotFather answers with a token like <code>123456789:AAE…</code>: send it to me.\n\n"
    "I delete your message as soon as I have read it."
)
PROVIDER_QUESTION = "Which model provider do you have a key for?"


def _answers(context: ContextTypes.DEFAULT_TYPE) -> dict:
    return context.user_data.setdefault(SETUP, {})


def _step(answers: dict, number: int) -> str:
    """"Step N of M.": four steps, five with the plan step."""
    return f"<b>Step {number} of {5 if answers.get('needs_plan') else 4}.</b>"


def _welcome(answers: dict) -> str:
    paying = "• a card, to subscribe to a plan with Stripe before it starts\n" if answers.get("needs_plan") else ""
    return f"{WELCOME.format(paying=paying)}{_step(answers, 1)} {PROVIDER_QUESTION}"


def _howto(answers: dict) -> str:
    return f"{_step(answers, 4)} {BOTFATHER_HOWTO}"


async def _needs_plan(context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Billing is on and the sender has no active subscription: they choose a plan and pay."""
    billing = services(context).billing
    return billing is not None and not (await billing.view(current_user(context))).entitled


def _provider_buttons() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(p.display_name, callback_data=f"provider:{p.id}")]
                                 for p in PROVIDERS])


def _model_buttons(provider: Provider) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(f"{model}{' (recommended)' if model == provider.default_model else ''}",
                                  callback_data=f"model:{model}")] for model in provider.models]
    return InlineKeyboardMarkup([*rows, [InlineKeyboardButton("« Back", callback_data="back")]])


# -- steps ----------------------------------------------------------------------------------
async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    user = current_user(context)
    instances = services(context).instances
    the = services(context)
    context.user_data.pop(SETUP, None)
    payload = context.args[0][:64] if context.args else None
    if payload and not payload.startswith(CODE_PREFIX):  # an invite code is the gate's (bot/gate.py)
        _answers(context)["payload"] = payload  # referral or plan pre-selection, kept
    try:
        await the.access.check(user)
    except AccessDenied as refused:
        await update.effective_message.reply_text(refusal_text(the.access.mode, user.telegram_user_id,
                                                               refused.message))
        return END
    owned = await instances.list(user)
    if any(instance.status == Status.AWAITING_PAYMENT for instance in owned):
        await update.effective_message.reply_text(
            "Your assistant is set up and waits for payment: /billing to choose a plan and pay. It deploys as "
            "soon as the payment goes through.")
        return END
    if owned:
        await update.effective_message.reply_text(
            "You already have an assistant. /status shows how it is doing, /help lists what I can do.")
        return END
    _answers(context)["needs_plan"] = await _needs_plan(context)
    await update.effective_message.reply_text(_welcome(_answers(context)), reply_markup=_provider_buttons())
    return PROVIDER


async def provider_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    query = update.callback_query
    await query.answer()
    try:
        provider = get_provider(query.data.removeprefix("provider:"))
    except ValueError:
        return PROVIDER
    _answers(context).update(provider=provider.id, model=provider.default_model)
    await edit(query.message, _model_question(_answers(context), provider), _model_buttons(provider))
    return MODEL


async def model_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    query = update.callback_query
    await query.answer()
    provider = get_provider(_answers(context)["provider"])
    model = query.data.removeprefix("model:")
    if model not in provider.models:
        return MODEL
    _answers(context)["model"] = model
    await edit(query.message, *await _key_step(context, provider, model))
    return API_KEY


def _model_question(answers: dict, provider: Provider) -> str:
    return f"{_step(answers, 2)} {escape(provider.display_name)}: which model?"


def _key_prompt(answers: dict, provider: Provider, model: str, platform_key: bool = False) -> str:
    included = ("\n\nOr use ClawFleet's key, with model usage included in your plan: no API key of your own "
                "needed." if platform_key else "")
    return (f"{_step(answers, 3)} {escape(provider.display_name)}, {escape(model)}.\n\n"
            f"Send me your {escape(provider.display_name)} API key. I delete your message as soon as I "
            f"have read it and store the key encrypted.\n\n<i>{escape(provider.key_hint)}</i>{included}")


async def _key_step(context: ContextTypes.DEFAULT_TYPE, provider: Provider,
                    model: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The key question, with the platform's key as a button when this user may use it."""
    offered = await services(context).instances.offers_platform_key(current_user(context), provider.id)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Use ClawFleet's key (included in your plan)",
                                                         callback_data="platformkey")]]) if offered else None
    return _key_prompt(_answers(context), provider, model, offered), markup


async def platform_key_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    query = update.callback_query
    await query.answer()
    answers = _answers(context)
    if not await services(context).instances.offers_platform_key(current_user(context), answers["provider"]):
        return API_KEY  # no longer offered (the operator's key removed meanwhile): the question stands
    answers.pop("api_key", None)
    answers.update(platform_key=True, key_tail=None)
    await edit(query.message, f"ClawFleet's key it is: usage counts against your plan.\n\n{_howto(answers)}")
    return BOT_TOKEN


async def api_key_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    message = update.effective_message
    key = (message.text or "").strip()
    note = await delete_secret(message, "key")
    try:
        await services(context).instances.check_api_key(_answers(context)["provider"], key)
    except ServiceError as problem:
        await message.chat.send_message(f"{escape(problem.message)}{note}\n\nSend the key again, or /cancel.")
        return API_KEY
    answers = _answers(context)
    answers["api_key"] = seal_pending(services(context).keyring, update.effective_user.id, "api_key", key)
    answers.update(key_tail=key[-4:], platform_key=False)
    await message.chat.send_message(f"Key received (ending in …{escape(key[-4:])}).{note}\n\n{_howto(answers)}")
    return BOT_TOKEN


async def bot_token_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    message = update.effective_message
    token = (message.text or "").strip()
    note = await delete_secret(message, "bot token")
    try:
        identity = await services(context).instances.check_bot_token(token)
    except ServiceError as problem:
        await message.chat.send_message(f"{escape(problem.message)}{note}\n\nSend the token again, or /cancel.")
        return BOT_TOKEN
    answers = _answers(context)
    answers["bot_token"] = seal_pending(services(context).keyring, update.effective_user.id, "bot_token", token)
    answers["bot_username"] = identity.username
    answers["needs_plan"] = await _needs_plan(context)  # again: they may have subscribed meanwhile
    if answers["needs_plan"]:
        await message.chat.send_message(f"Bot @{escape(identity.username)} checked.{note}\n\n{_plan_question(context)}",
                                        reply_markup=_plan_buttons(context))
        return PLAN
    answers.pop("plan", None)
    await message.chat.send_message(f"{_summary(context)}{note}", reply_markup=_confirm_buttons(answers))
    return CONFIRM


def _plan_question(context: ContextTypes.DEFAULT_TYPE) -> str:
    return (f"{_step(_answers(context), 5)} Choose a plan. You pay with Stripe after the summary; your "
            f"assistant starts as soon as the payment goes through.\n\n{plans_text(services(context).billing)}")


def _offered_plans(context: ContextTypes.DEFAULT_TYPE) -> list:
    """Every plan; only those that include usage for an assistant on ClawFleet's key."""
    plans = list(services(context).billing.plans)
    return [plan for plan in plans if plan.included_usage_usd] if _answers(context).get("platform_key") else plans


def _plan_buttons(context: ContextTypes.DEFAULT_TYPE) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(plan_label(plan)[:64], callback_data=f"pickplan:{plan.id}")]
            for plan in _offered_plans(context)]
    return InlineKeyboardMarkup([*rows, [InlineKeyboardButton("« Back", callback_data="back")]])


async def plan_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    query = update.callback_query
    await query.answer()
    billing = services(context).billing
    plan = billing.plans.get(query.data.removeprefix("pickplan:")) if billing is not None else None
    if plan is None or plan not in _offered_plans(context):
        return PLAN
    answers = _answers(context)
    answers["plan"] = plan.id
    await edit(query.message, _summary(context), _confirm_buttons(answers))
    return CONFIRM


def _summary(context: ContextTypes.DEFAULT_TYPE) -> str:
    answers = _answers(context)
    provider = get_provider(answers["provider"])
    billing = services(context).billing
    plan = billing.plans.get(answers["plan"]) if billing is not None and answers.get("plan") else None
    paying = f"Plan: {escape(plan_label(plan))}\n" if plan is not None else ""
    return ("<b>Ready to deploy.</b>\n\n"
            f"Provider: {escape(provider.display_name)}\nModel: {escape(answers['model'])}\n"
            f"API key: {_key_shown(answers)}\nBot: @{escape(answers['bot_username'])}\n{paying}\n"
            "Only you will be able to talk to it.")


def _key_shown(answers: dict) -> str:
    return "ClawFleet's, included in your plan" if answers.get("platform_key") else f"…{escape(answers['key_tail'])}"


def _confirm_buttons(answers: dict) -> InlineKeyboardMarkup:
    label = "Subscribe and deploy" if answers.get("plan") else "Deploy"
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data="deploy")],
                                 [InlineKeyboardButton("« Back", callback_data="back")]])


async def deploy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    query = update.callback_query
    await query.answer()
    user = current_user(context)
    the = services(context)
    answers = _answers(context)
    sender = update.effective_user.id
    platform_key = bool(answers.get("platform_key"))
    api_key = None if platform_key else open_pending(the.keyring, sender, "api_key", answers.get("api_key"))
    bot_token = open_pending(the.keyring, sender, "bot_token", answers.get("bot_token"))
    if (api_key is None and not platform_key) or bot_token is None:  # sealed under a key since dropped: ask again
        await edit(query.message, "I no longer have your key and token. Send /start to enter them again.")
        context.user_data.pop(SETUP, None)
        return END
    try:
        instance = await the.instances.create(
            user, model_provider=answers["provider"], model=answers["model"],
            api_key=api_key.get_secret_value() if api_key is not None else None, use_platform_key=platform_key,
            telegram_bot_token=bot_token.get_secret_value(), telegram_user_id=sender,
        )
    except ServiceError as problem:
        await edit(query.message, f"{_summary(context)}\n\n<b>Not deployed:</b> {escape(problem.message)}",
                   _confirm_buttons(answers))
        return CONFIRM
    context.user_data.pop(SETUP, None)  # the secrets now live sealed on the instance's row
    if instance.status == Status.AWAITING_PAYMENT:  # billing deploys it once paid (bot/notifier.py follows)
        text, markup = await checkout_reply(the, user, answers.get("plan"))
        await edit(query.message, text, markup)
        return END
    await edit(query.message, "<b>Deploying your assistant…</b>")
    events = await the.instances.progress(user, instance.id)
    if events is not None:
        context.application.create_task(
            progress.follow(query.message, "Deploying your assistant", events, instance,
                            the.instances.public_url(instance)),
            update=update,
        )
    return END


# -- going back, wrong kinds of input, cancel, timeout ----------------------------------------
async def back(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    """One step back, from a button or /back."""
    state = context.user_data.get("_state")  # kept by `track` below
    if update.callback_query:
        await update.callback_query.answer()
    answers = _answers(context)
    chat = update.effective_chat
    if state in (MODEL, API_KEY, BOT_TOKEN, PLAN, CONFIRM) and "provider" in answers:
        provider = get_provider(answers["provider"])
        if state == API_KEY:
            await chat.send_message(_model_question(answers, provider), reply_markup=_model_buttons(provider))
            return MODEL
        if state == BOT_TOKEN:
            text, markup = await _key_step(context, provider, answers["model"])
            await chat.send_message(text, reply_markup=markup)
            return API_KEY
        if state == CONFIRM and answers.get("plan") and services(context).billing is not None:
            answers.pop("plan")
            await chat.send_message(_plan_question(context), reply_markup=_plan_buttons(context))
            return PLAN
        if state in (PLAN, CONFIRM):
            await chat.send_message(_howto(answers))
            return BOT_TOKEN
    await chat.send_message(f"{_step(answers, 1)} {PROVIDER_QUESTION}", reply_markup=_provider_buttons())
    return PROVIDER


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("Please send it as a plain text message (or /cancel).")


async def use_buttons(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("Please choose with the buttons above (or /cancel, /back).")


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data.pop(SETUP, None)
    context.user_data.pop("_state", None)
    await update.effective_chat.send_message("Setup cancelled; I kept nothing you sent. Send /start to begin again.")
    return END


async def timed_out(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    context.user_data.pop(SETUP, None)
    context.user_data.pop("_state", None)
    # Runs from a timer, not an update: say that this user's data changed, or it stays stored.
    context.application.mark_data_for_update_persistence(user_ids=update.effective_user.id)
    await update.effective_chat.send_message(
        "Your setup waited too long, so I forgot what you sent (keys included). Send /start to begin again.")


def _tracked(state: str, handler):
    """Remember the current step in user_data, so /back knows where it is."""
    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE):
        next_state = await handler(update, context)
        if next_state == END:
            context.user_data.pop("_state", None)
        else:
            context.user_data["_state"] = next_state if isinstance(next_state, str) else state
        return next_state
    return run


def onboarding_handler(timeout_s: float) -> ConversationHandler:
    text = filters.TEXT & ~filters.COMMAND
    back_button = CallbackQueryHandler(_tracked(PROVIDER, back), pattern="^back$")
    return ConversationHandler(
        entry_points=[CommandHandler("start", _tracked(PROVIDER, start))],
        states={
            PROVIDER: [CallbackQueryHandler(_tracked(PROVIDER, provider_chosen), pattern="^provider:"),
                       MessageHandler(~filters.COMMAND, use_buttons)],
            MODEL: [CallbackQueryHandler(_tracked(MODEL, model_chosen), pattern="^model:"), back_button,
                    MessageHandler(~filters.COMMAND, use_buttons)],
            API_KEY: [MessageHandler(text, _tracked(API_KEY, api_key_received)),
                      CallbackQueryHandler(_tracked(API_KEY, platform_key_chosen), pattern="^platformkey$"),
                      MessageHandler(~filters.COMMAND, not_text)],
            BOT_TOKEN: [MessageHandler(text, _tracked(BOT_TOKEN, bot_token_received)),
                        MessageHandler(~filters.COMMAND, not_text)],
            PLAN: [CallbackQueryHandler(_tracked(PLAN, plan_chosen), pattern="^pickplan:"), back_button,
                   MessageHandler(~filters.COMMAND, use_buttons)],
            CONFIRM: [CallbackQueryHandler(_tracked(CONFIRM, deploy), pattern="^deploy$"), back_button,
                      MessageHandler(~filters.COMMAND, use_buttons)],
            ConversationHandler.TIMEOUT: [MessageHandler(filters.ALL, timed_out),
                                          CallbackQueryHandler(timed_out)],
        },
        fallbacks=[CommandHandler("cancel", cancel), CommandHandler("back", _tracked(PROVIDER, back)),
                   CommandHandler("start", _tracked(PROVIDER, start))],
        name="onboarding",
        persistent=True,
        conversation_timeout=timeout_s,
        allow_reentry=True,
    )
