"""Model spending from chat: /usage (this month and today across the owner's assistants, each
of them when there are several, and where they stand against their monthly cap), `/usage cap
AMOUNT` and `/usage cap off`. Thin calls into model_gateway.reports and model_gateway.caps.

Callback data: `usage:show` (the notices of model_gateway.caps offer it: "Usage and cap")."""

from __future__ import annotations

import uuid
from datetime import date

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.context import BotServices, current_user, services
from bot.replies import escape
from db.errors import InvalidInput
from db.models import Instance, User
from model_gateway.caps import Standing, next_month_start
from model_gateway.reports import Period, Tally, money_text, share_of_cap, user_total, utc_today

NOT_TRACKED = "Model spending is not tracked on this ClawFleet."
HOW_TO_CHANGE = "Set a monthly cap: /usage cap 20 (in US dollars) · remove yours: /usage cap off"
CLEARING = {"off", "none", "remove", "no"}
HOW_TO_ASK = ("Send /usage to see your spending, /usage cap 20 to cap a month's spending at $20, "
              "or /usage cap off to remove your cap.")


def _day(day: date) -> str:
    return f"{day:%B} {day.day}"


def _tally_line(tally: Tally) -> str:
    calls = f"{tally.requests:,} request{'' if tally.requests == 1 else 's'}"
    return f"{money_text(tally.cost_micro_usd)} · {calls} · {tally.tokens:,} tokens"


def standing_lines(standing: Standing, today: date) -> list[str]:
    included = standing.included_text()
    return _cap_lines(standing, today) + ([included] if included else [])


def _cap_lines(standing: Standing, today: date) -> list[str]:
    resets = _day(next_month_start(today))
    if standing.cap_micro_usd is None:
        return ["No monthly cap: nothing stops your assistants' model calls."]
    share = share_of_cap(standing.spent_micro_usd, standing.cap_micro_usd)
    whose = "your own" if standing.own_cap_micro_usd == standing.cap_micro_usd else "your plan's ceiling"
    lines = [f"Cap: {money_text(standing.spent_micro_usd)} of {money_text(standing.cap_micro_usd)} "
             f"({share}%, {whose}); it resets on {resets}."]
    if standing.reached:
        lines.append(f"<b>The cap is reached:</b> your assistants stop answering until {resets}, or until you "
                     "raise the cap.")
    elif standing.near:
        lines.append("<b>Over 80% of the cap.</b> At the cap your assistants stop answering until it resets or "
                     "you raise it.")
    if standing.ceiling_micro_usd is not None and standing.own_cap_micro_usd != standing.cap_micro_usd:
        lines.append(f"Your plan allows a cap of at most {money_text(standing.ceiling_micro_usd)}.")
    return lines


def _label(instance_id: uuid.UUID, owned: dict[uuid.UUID, Instance]) -> str:
    instance = owned.get(instance_id)
    if instance is None:
        return "a deleted assistant"
    return f"@{escape(instance.telegram_bot_username)}" if instance.telegram_bot_username else escape(
        instance.subdomain)


async def usage_text(the: BotServices, user: User, lead: str = "") -> str:
    today = utc_today()
    periods = await the.usage.user_periods(user.id, today)
    total = user_total(periods)
    standing = await the.caps.standing(user.id, today)
    lines = [lead] if lead else []
    lines += [f"<b>Model spending in {today:%B}</b> (UTC)",
              f"This month: {_tally_line(total.month)}",
              f"Today: {_tally_line(total.today)}"]
    owned = {instance.id: instance for instance in await the.instances.list(user)}
    if len(periods) > 1 or (periods and len(owned) > 1):
        lines.append("")
        lines += [f"• {_label(instance_id, owned)}: {_per_instance(period)}"
                  for instance_id, period in sorted(periods.items(), key=lambda pair: -pair[1].month.cost_micro_usd)]
    lines += ["", *standing_lines(standing, today), "", HOW_TO_CHANGE]
    return "\n".join(lines)


def _per_instance(period: Period) -> str:
    return f"{money_text(period.month.cost_micro_usd)} this month, {money_text(period.today.cost_micro_usd)} today"


async def set_cap_text(the: BotServices, user: User, amount: str) -> str:
    clearing = amount.lower() in CLEARING
    try:
        standing = await the.caps.set_cap(user, None if clearing else amount)
    except InvalidInput as problem:
        return f"{escape(problem.message)} Send it like /usage cap 20, or /usage cap off to remove your cap."
    if clearing:
        lead = "Your own cap is removed."
        if standing.cap_micro_usd is not None:
            lead += f" Your plan's ceiling of {money_text(standing.cap_micro_usd)} still applies."
    else:
        lead = f"Your monthly cap is now {money_text(standing.own_cap_micro_usd or 0)}."
    return await usage_text(the, user, lead + "\n")


async def usage(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query:
        await update.callback_query.answer()
    the = services(context)
    chat = update.effective_chat
    if the.usage is None or the.caps is None:
        await chat.send_message(NOT_TRACKED)
        return
    user = current_user(context)
    args = [] if update.callback_query else list(context.args or [])
    if not args:
        await chat.send_message(await usage_text(the, user))
    elif args[0].lower() == "cap" and len(args) == 2:
        await chat.send_message(await set_cap_text(the, user, args[1]))
    elif args[0].lower() == "cap":
        await chat.send_message("Send the cap with it, in US dollars: /usage cap 20. To remove yours: "
                                "/usage cap off.")
    else:
        await chat.send_message(HOW_TO_ASK)


def usage_handlers() -> list:
    return [
        CommandHandler("usage", usage),
        CallbackQueryHandler(usage, pattern="^usage:show$"),
    ]
