"""Billing from chat: /billing (plan, status, renewal, the Customer Portal, cancelling at the
end of the period and taking that back), /plan (changing plan), and paying with Stripe
Checkout, as URL buttons. Thin calls into billing.service.Billing; with billing off, both
commands say there is nothing to pay.

Callback data: `checkout:<plan>` (a Checkout link for that plan; also "Try again" after
Stripe did not answer), `billing:show|back|cancel|cancel:yes|keep`, `plan:show`, `plan:set:<plan>`."""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from billing.plans import Plan
from billing.service import Billing, BillingView
from bot.context import BotServices, current_user, services
from bot.replies import edit, escape
from db.errors import ServiceError, Unavailable
from db.models import User
from db.status import Status

NO_BILLING = "There is nothing to pay on this ClawFleet: it runs without billing."
STATUS_WORDS = {  # Stripe's word for a subscription, as a person reads it
    "active": "active",
    "trialing": "in its free trial",
    "past_due": "active, but the last payment failed",
    "unpaid": "unpaid",
    "canceled": "ended",
    "incomplete": "waiting for its first payment",
    "incomplete_expired": "never paid",
    "paused": "paused",
}

Reply = tuple[str, InlineKeyboardMarkup | None]


def _date(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _assistants(count: int) -> str:
    return f"{count} assistant{'' if count == 1 else 's'}"


def plan_label(plan: Plan) -> str:
    """A plan on a button (plain text): its name and price."""
    return f"{plan.name} · {plan.price_label}" if plan.price_label else plan.name


def plan_line(plan: Plan) -> str:
    """A plan in a message (HTML): name, price and what it gives."""
    price = f" · {escape(plan.price_label)}" if plan.price_label else ""
    trial = f", the first {plan.trial_days} days free" if plan.trial_days else ""
    return (f"<b>{escape(plan.name)}</b>{price}: {_assistants(plan.instances)}, {plan.memory_mb} MB and "
            f"{plan.cpus:g} CPU each{trial}")


def plans_text(billing: Billing, current: str | None = None) -> str:
    return "\n".join(f"• {plan_line(plan)}{' <i>(your plan)</i>' if plan.id == current else ''}"
                     for plan in billing.plans)


def plan_rows(billing: Billing, prefix: str, *, skip: str | None = None, verb: str = "") -> list:
    return [[InlineKeyboardButton(f"{verb}{plan_label(plan)}"[:64], callback_data=f"{prefix}{plan.id}")]
            for plan in billing.plans if plan.id != skip]


# -- paying ------------------------------------------------------------------------------------
async def checkout_reply(the: BotServices, user: User, plan_id: str | None) -> Reply:
    """A "Pay with Stripe" button to a Checkout page for the plan; when Stripe does not answer,
    why, and a "Try again" button that asks for a new link."""
    plan = the.billing.plans.get(plan_id or "") or the.billing.plan(None)  # a plan since removed: the default
    waiting = any(instance.status == Status.AWAITING_PAYMENT for instance in await the.instances.list(user))
    what = (f"Your assistant is set up and waits for payment ({plan_line(plan)})." if waiting
            else f"You chose {plan_line(plan)}.")
    then = ("As soon as the payment goes through I deploy it and show you its progress here." if waiting
            else "As soon as the payment goes through, your plan is active; send /start to set up your assistant.")
    try:
        url = await the.billing.checkout_url(user, plan.id, via="bot")
    except Unavailable as problem:
        return (f"{what}\n\n<b>I could not make the payment link:</b> {escape(problem.message)}",
                InlineKeyboardMarkup([[InlineKeyboardButton("Try again", callback_data=f"checkout:{plan.id}")]]))
    except ServiceError as problem:
        return escape(problem.message), None
    return (f"{what}\n\nPay with Stripe below. {then}",
            InlineKeyboardMarkup([[InlineKeyboardButton("Pay with Stripe", url=url)]]))


def subscribe_reply(billing: Billing, view: BillingView) -> Reply:
    if view.status and view.plan:
        lead = f"Your {escape(view.plan.name)} subscription is {STATUS_WORDS.get(view.status, escape(view.status))}."
    else:
        lead = "You have no subscription yet."
    return (f"{lead} Choose a plan:\n\n{plans_text(billing)}",
            InlineKeyboardMarkup(plan_rows(billing, "checkout:")))


# -- /billing ------------------------------------------------------------------------------------
async def billing_reply(the: BotServices, user: User, lead: str = "") -> Reply:
    billing = the.billing
    view = await billing.view(user)
    if not view.entitled or view.plan is None:
        return subscribe_reply(billing, view)
    plan = view.plan
    lines = [lead] if lead else []
    lines += [f"<b>Your plan: {escape(plan.name)}</b>{f' ({escape(plan.price_label)})' if plan.price_label else ''}",
              f"Status: {STATUS_WORDS.get(view.status, escape(view.status))}"]
    if view.current_period_end is not None:
        lines.append(f"Ends on {_date(view.current_period_end)}: your assistant runs until then."
                     if view.cancel_at_period_end else f"Renews on {_date(view.current_period_end)}.")
    if view.payment_failed:
        lines.append("\n<b>Your last payment did not go through.</b> Stripe tries again; update your card "
                     "with Manage billing so your assistant keeps running.")
    rows = []
    try:
        rows.append([InlineKeyboardButton("Manage billing", url=await billing.portal_url(user))])
    except ServiceError as problem:
        lines.append(f"\nManage billing is not available right now: {escape(problem.message)}")
    rows.append([InlineKeyboardButton("Change plan", callback_data="plan:show")])
    rows.append([InlineKeyboardButton("Keep my subscription", callback_data="billing:keep")]
                if view.cancel_at_period_end else
                [InlineKeyboardButton("Cancel at period end", callback_data="billing:cancel")])
    if view.over_limit:
        text, stops = await over_limit_reply(the, user, plan)
        lines.append(f"\n{text}")
        rows += stops
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def over_limit_reply(the: BotServices, user: User, plan: Plan) -> tuple[str, list]:
    """More run than the plan allows (after a downgrade): a Stop button for each; nothing stops
    until the owner chooses."""
    running = await the.instances.running_of(user.id)
    text = (f"<b>Your {escape(plan.name)} plan runs {_assistants(plan.instances)}; {len(running)} of yours "
            "run.</b> Choose which to stop: nothing stops until you do.")
    return text, [[InlineKeyboardButton(f"Stop {label}"[:64], callback_data=f"act:stop:{instance_id}")]
                  for instance_id, label in running]


def _with_billing(handler):
    """A handler of /billing's or /plan's, given the services and the sender once billing is
    known to be on (a button's spinner stopped first); with billing off, there is nothing to pay."""
    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query:
            await update.callback_query.answer()
        the = services(context)
        if the.billing is None:
            await update.effective_chat.send_message(NO_BILLING)
            return
        await handler(update, the, current_user(context))
    return run


async def _say(update: Update, make, *, replace: bool = False) -> None:
    """Send (or, `replace`, edit the pressed button's message into) the reply `make` builds; a
    ServiceError's message is for the person, so it is what they read when one comes."""
    try:
        text, markup = await make()
    except ServiceError as problem:
        text, markup = escape(problem.message), None
    if replace:
        await edit(update.callback_query.message, text, markup)
    else:
        await update.effective_chat.send_message(text, reply_markup=markup)


@_with_billing
async def show_billing(update: Update, the: BotServices, user: User) -> None:
    await _say(update, lambda: billing_reply(the, user), replace=update.callback_query is not None
               and update.callback_query.data == "billing:back")


@_with_billing
async def checkout_button(update: Update, the: BotServices, user: User) -> None:
    plan_id = update.callback_query.data.removeprefix("checkout:")
    await _say(update, lambda: checkout_reply(the, user, plan_id), replace=True)


@_with_billing
async def cancel_button(update: Update, the: BotServices, user: User) -> None:
    """Cancelling asks first."""
    async def question() -> Reply:
        view = await the.billing.view(user)
        until = f"until {_date(view.current_period_end)}" if view.current_period_end else "until the period ends"
        return (f"Cancel your subscription at the end of the period? Your assistant keeps running {until}, "
                "then stops; its data is kept for a while, and subscribing again brings it back.",
                InlineKeyboardMarkup([[InlineKeyboardButton("Yes, cancel at period end",
                                                            callback_data="billing:cancel:yes")],
                                      [InlineKeyboardButton("No, keep it", callback_data="billing:back")]]))
    await _say(update, question, replace=True)


@_with_billing
async def cancel_confirmed(update: Update, the: BotServices, user: User) -> None:
    async def cancelled() -> Reply:
        view = await the.billing.cancel(user)
        until = f" on {_date(view.current_period_end)}" if view.current_period_end else ""
        return await billing_reply(the, user, f"Cancelled: your subscription ends{until}. Until then "
                                              "everything runs as before.\n")
    await _say(update, cancelled, replace=True)


@_with_billing
async def keep_button(update: Update, the: BotServices, user: User) -> None:
    async def kept() -> Reply:
        await the.billing.keep(user)
        return await billing_reply(the, user, "Your subscription continues: nothing ends.\n")
    await _say(update, kept, replace=True)


# -- /plan ---------------------------------------------------------------------------------------
async def plan_reply(the: BotServices, user: User) -> Reply:
    billing = the.billing
    view = await billing.view(user)
    if not view.entitled or view.plan is None:
        return subscribe_reply(billing, view)
    return (f"<b>Plans</b>\n\n{plans_text(billing, view.plan.id)}\n\nA new plan applies to each assistant from "
            "its next restart; Stripe charges or credits the difference for the rest of this period.",
            InlineKeyboardMarkup(plan_rows(billing, "plan:set:", skip=view.plan.id, verb="Switch to ")))


async def changed_reply(the: BotServices, user: User, plan_id: str) -> Reply:
    view = await the.billing.change_plan(user, plan_id)
    plan = view.plan or the.billing.plan(plan_id)
    text = (f"Your plan is now <b>{escape(plan.name)}</b>: {_assistants(plan.instances)}, {plan.memory_mb} MB and "
            f"{plan.cpus:g} CPU each, from each assistant's next restart.")
    if view.over_limit:
        more, rows = await over_limit_reply(the, user, plan)
        return f"{text}\n\n{more}", InlineKeyboardMarkup(rows)
    running = await the.instances.running_of(user.id)
    if not running:
        return text, None
    return (f"{text} Restart now to use it:",
            InlineKeyboardMarkup([[InlineKeyboardButton(f"Restart {label}"[:64],
                                                        callback_data=f"act:restart:{instance_id}")]
                                  for instance_id, label in running]))


@_with_billing
async def show_plan(update: Update, the: BotServices, user: User) -> None:
    await _say(update, lambda: plan_reply(the, user))


@_with_billing
async def set_plan_button(update: Update, the: BotServices, user: User) -> None:
    plan_id = update.callback_query.data.removeprefix("plan:set:")
    await _say(update, lambda: changed_reply(the, user, plan_id), replace=True)


def billing_handlers() -> list:
    return [
        CommandHandler("billing", show_billing),
        CommandHandler("plan", show_plan),
        CallbackQueryHandler(show_billing, pattern="^billing:(show|back)$"),
        CallbackQueryHandler(cancel_button, pattern="^billing:cancel$"),
        CallbackQueryHandler(cancel_confirmed, pattern="^billing:cancel:yes$"),
        CallbackQueryHandler(keep_button, pattern="^billing:keep$"),
        CallbackQueryHandler(checkout_button, pattern="^checkout:"),
        CallbackQueryHandler(show_plan, pattern="^plan:show$"),
        CallbackQueryHandler(set_plan_button, pattern="^plan:set:"),
    ]
