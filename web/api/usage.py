"""GET /api/instances/{id}/usage, GET /api/me/usage and PUT /api/me/spend-cap: what the model
gateway recorded (model_gateway.reports) and the monthly spending cap (model_gateway.caps)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from aiohttp import web

from db.errors import InvalidInput, Unavailable
from model_gateway.caps import MICRO, SpendCaps, Standing, next_month_start
from model_gateway.reports import Tally, UsageReports, user_total, utc_today
from web.api.bodies import json_body
from web.api.operations import Parameter, operation
from web.api.schemas import (
    AccountUsage,
    InstanceMonthUsage,
    InstanceUsage,
    ModelUsageNumbers,
    SpendCapChange,
    SpendStanding,
    UsageDay,
    UsageNumbers,
)
from web.auth import current_user
from web.keys import SERVICES

routes = web.RouteTableDef()

DEFAULT_DAYS = 30
MAX_DAYS = 366
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
FROM = Parameter("from", "query", {"type": "string", "format": "date"},
                 f"The first UTC day, YYYY-MM-DD (default: {DEFAULT_DAYS - 1} days before `to`).")
TO = Parameter("to", "query", {"type": "string", "format": "date"}, "The last UTC day, YYYY-MM-DD (default: today).")
NOT_RECORDED = "Model usage is not recorded on this server."


def usd(micro_usd: int | None) -> float | None:
    return None if micro_usd is None else round(micro_usd / MICRO, 6)


def numbers(tally: Tally) -> dict:
    return {"input_tokens": tally.input_tokens, "output_tokens": tally.output_tokens,
            "cache_read_tokens": tally.cache_read_tokens, "cache_write_tokens": tally.cache_write_tokens,
            "requests": tally.requests, "errors": tally.errors, "cost_usd": usd(tally.cost_micro_usd)}


def standing_body(standing: Standing, today: date) -> SpendStanding:
    return SpendStanding(spent_usd=usd(standing.spent_micro_usd), cap_usd=usd(standing.cap_micro_usd),
                         own_cap_usd=usd(standing.own_cap_micro_usd), ceiling_usd=usd(standing.ceiling_micro_usd),
                         near=standing.near, reached=standing.reached, resets_on=next_month_start(today),
                         included_usd=usd(standing.included_micro_usd),
                         included_spent_usd=usd(standing.platform_spent_micro_usd),
                         overage_billed=standing.overage_billed, overage_usd=usd(standing.overage_micro_usd))


def _usage_services(request: web.Request) -> tuple[UsageReports, SpendCaps]:
    services = request.app[SERVICES]
    if services.usage is None or services.caps is None:
        raise Unavailable(NOT_RECORDED)
    return services.usage, services.caps


def _day(request: web.Request, name: str) -> date | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a day written YYYY-MM-DD, like 2026-01-31.", field=name) from None


def days_asked(request: web.Request, today: date) -> tuple[date, date]:
    first, last = _day(request, "from"), _day(request, "to")
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("from must be on or before to.", field="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"Ask for {MAX_DAYS} days at most: move from closer to to.", field="from")
    return first, last


@routes.get("/api/instances/{id}/usage")
@operation("An instance's model usage and cost per day", tag="usage", responses={200: InstanceUsage},
           errors=(400, 404, 503), parameters=(FROM, TO),
           description=f"Per UTC day from `from` to `to` (by default the last {DEFAULT_DAYS} days, today included; "
                       f"{MAX_DAYS} days at most), each with its models. Every day of the range is in `days`, days "
                       "without calls with zeros, so a chart needs no gaps filled. `month` is this month's "
                       "spending across all your instances against your cap. Costs are US dollars as numbers, to "
                       "the micro-dollar. Calls of the last second or so may not be counted yet.")
async def instance_usage(request: web.Request) -> web.Response:
    user = current_user(request)
    instance = await request.app[SERVICES].instances.view(user, request.match_info["id"])
    reports, caps = _usage_services(request)
    today = utc_today()
    first, last = days_asked(request, today)
    days = await reports.daily(instance.id, first, last)
    answer = InstanceUsage(
        instance_id=instance.id, first=first, last=last,
        days=[UsageDay(day=each.day, **numbers(each.tally),
                       models=[ModelUsageNumbers(model=m.model, **numbers(m.tally)) for m in each.models])
              for each in days],
        totals=UsageNumbers(**numbers(sum((each.tally for each in days), Tally()))),
        month=standing_body(await caps.standing(user.id, today), today))
    return web.json_response(answer.model_dump(mode="json", by_alias=True))


@routes.get("/api/me/usage")
@operation("Your model usage this month, across your instances, and your spending cap", tag="usage",
           responses={200: AccountUsage}, errors=(503,),
           description="Today and this calendar month so far (UTC), in all and per instance. The cap resets on the "
                       "1st; `cap.spent_usd` also counts the very latest calls.")
async def account_usage(request: web.Request) -> web.Response:
    user = current_user(request)
    reports, caps = _usage_services(request)
    today = utc_today()
    periods = await reports.user_periods(user.id, today)
    total = user_total(periods)
    costliest = sorted(periods.items(), key=lambda pair: -pair[1].month.cost_micro_usd)
    answer = AccountUsage(
        month_start=today.replace(day=1), today=UsageNumbers(**numbers(total.today)),
        month=UsageNumbers(**numbers(total.month)),
        instances=[InstanceMonthUsage(instance_id=instance_id, today=UsageNumbers(**numbers(period.today)),
                                      month=UsageNumbers(**numbers(period.month)))
                   for instance_id, period in costliest],
        cap=standing_body(await caps.standing(user.id, today), today))
    return web.json_response(answer.model_dump(mode="json"))


@routes.put("/api/me/spend-cap")
@operation("Set or remove your monthly spending cap", tag="usage", body=SpendCapChange,
           responses={200: SpendStanding}, errors=(503,),
           description="`spend_cap_usd` in US dollars (more than 0, within your plan's ceiling when it has one: "
                       "400, field spend_cap_usd, beyond it), or null for no cap of your own. Model calls that "
                       "would start at or past the cap are refused until the month ends (UTC) or the cap is "
                       "raised; you are told in chat at 80%. Answers with the new standing.")
async def set_spend_cap(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_body(request, SpendCapChange)
    _, caps = _usage_services(request)
    standing = await caps.set_cap(user, body.spend_cap_usd)
    return web.json_response(standing_body(standing, utc_today()).model_dump(mode="json"))
