"""The instance page's "Model usage" section: today and this month for the assistant, the month's
spending against the owner's cap (which covers all their assistants) as a bar, the last 30 days'
cost per day as a chart drawn here as SVG (no script; the page's policy allows no inline style
either, so geometry goes in SVG attributes), and the value and error of the form that sets or
removes the cap (posted to /instances/{id}/spend-cap: web.pages.instance)."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from db.models import Instance, User
from model_gateway.caps import Standing, next_month_start
from model_gateway.reports import DayUsage, money_text, share_of_cap, utc_today
from web.keys import SERVICES
from web.pages.charts import bar_chart

CHART_DAYS = 30


def day_text(day: date) -> str:
    return f"{day:%b} {day.day}"


def cost_chart(days: list[DayUsage], today: date) -> dict:
    """A bar for each of `days` (zero-cost days flat), the numbers they stand for, and the words
    a screen reader gets instead."""
    costs = [day.tally.cost_micro_usd for day in days]
    highest = max(costs, default=0)
    chart = bar_chart(costs, [f"{day_text(day.day)}: {money_text(cost) if cost else '$0'}"
                              for day, cost in zip(days, costs, strict=True)],
                      top=highest, current=next((i for i, day in enumerate(days) if day.day == today), None))
    spent = [day for day in days if day.tally.cost_micro_usd]
    total = sum(costs)
    if spent:
        peak = max(spent, key=lambda day: day.tally.cost_micro_usd)
        summary = (f"{money_text(total)} in all over {len(spent)} of the {len(days)} days; the most on "
                   f"{day_text(peak.day)}, {money_text(peak.tally.cost_micro_usd)}.")
    else:
        summary = f"No model calls in these {len(days)} days."
    return chart | {"highest": money_text(highest), "first": day_text(days[0].day), "last": day_text(days[-1].day),
                    "summary": summary,
                    "rows": [(day_text(day.day), money_text(day.tally.cost_micro_usd), day.tally.requests)
                             for day in spent]}


def cap_meter(standing: Standing, today: date) -> dict:
    """The month against the cap: how full the bar is and in which state (ok, warn from 80%,
    reached once it is)."""
    share = share_of_cap(standing.spent_micro_usd, standing.cap_micro_usd)
    state = "reached" if standing.reached else "warn" if standing.near else "ok"
    return {
        "spent": money_text(standing.spent_micro_usd),
        "cap": money_text(standing.cap_micro_usd) if standing.cap_micro_usd is not None else None,
        "own": standing.own_cap_micro_usd is not None,
        "ceiling": money_text(standing.ceiling_micro_usd) if standing.ceiling_micro_usd is not None else None,
        "share": share,
        "fill": min(share, 100) if share is not None else 0,
        "state": state,
        "resets": f"{next_month_start(today):%B} 1",
        "included": standing.included_text(),
    }


def cap_input(standing: Standing) -> str:
    """The cap as the form shows it: dollars without trailing zeros (20, 12.5)."""
    if standing.own_cap_micro_usd is None:
        return ""
    return f"{standing.own_cap_micro_usd / 1_000_000:.6f}".rstrip("0").rstrip(".")


async def usage_panel(request: web.Request, user: User, instance: Instance, *, typed: str | None = None,
                      error: str | None = None) -> dict | None:
    """What the section shows (None: no usage is recorded here); `typed` and `error`: the cap
    form's value and its error after a refused post."""
    services = request.app[SERVICES]
    if services.usage is None or services.caps is None:
        return None
    today = utc_today()
    period = await services.usage.instance_period(instance.id, today)
    days = await services.usage.daily(instance.id, today - timedelta(days=CHART_DAYS - 1), today)
    standing = await services.caps.standing(user.id, today)
    return {
        "today": period.today, "month": period.month, "money": money_text,
        "chart": cost_chart(days, today),
        "cap": cap_meter(standing, today),
        "form": {"value": cap_input(standing) if typed is None else typed, "error": error},
    }
