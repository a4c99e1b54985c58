"""The operator's plans, from the TOML file CLAWFLEET_PLANS_FILE names (plans.example.toml shows
the format). Read and checked once at start: a mistake stops the platform with a message that
names the file, the line and the field, instead of surfacing as a refused payment later."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PLAN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # kept in subscriptions.plan (32 characters)
FIELDS = {"name", "stripe_price", "price_label", "instances", "memory_mb", "cpus", "trial_days",
          "included_usage_usd", "overage", "overage_price", "spend_cap_ceiling_usd", "backup_every_hours",
          "backups_kept"}
# Fields a plan no longer has, and what says the same now.
REPLACED = {"backup_retention_days": "backups_kept (how many backups each assistant keeps) with backup_every_hours "
                                     "(how often one is taken): together they bound how far back backups go"}
# What happens once a plan's included usage is spent: "stop": calls on the platform's key stop;
# "bill": they go on, and what they cost beyond it is billed through Stripe metered usage
# (billing.overage) on the plan's `overage_price`.
OVERAGE = ("stop", "bill")
REQUIRED = ("name", "stripe_price", "instances", "memory_mb", "cpus")


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    stripe_price: str  # the Stripe Price (or Plan) id subscriptions to it are made with
    instances: int  # how many assistants a subscriber may have
    memory_mb: int  # given to each assistant's gateway
    cpus: float
    trial_days: int = 0
    price_label: str = ""  # what people read next to the name ("€9 / month"); Stripe bills the price
    # The most a subscriber's monthly model spending cap may be (model_gateway.caps); 0: no ceiling.
    spend_cap_ceiling_usd: float = 0.0
    # Model usage a month on the operator's keys (CLAWFLEET_PLATFORM_KEYS) the plan includes; 0:
    # subscribers bring their own key. Past it, `overage` ("stop": calls on the platform's key stop;
    # "bill": they go on, billed in cents on `overage_price`, a metered Stripe price).
    included_usage_usd: float = 0.0
    overage: str = "stop"
    overage_price: str | None = None  # with overage "bill" only
    # Instance backups: every how many hours each running assistant is backed up (0: only when
    # its owner asks), and how many each keeps, the newest.
    backup_every_hours: int = 24
    backups_kept: int = 7

    @property
    def bills_overage(self) -> bool:
        return self.overage == "bill"


class PlansError(ValueError):
    """The plans file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Plans:
    plans: tuple[Plan, ...]
    default: str  # offered first, and used when a front end does not say which

    def get(self, plan_id: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.id == plan_id), None)

    def by_price(self, price_id: str | None) -> Plan | None:
        return next((plan for plan in self.plans if plan.stripe_price == price_id), None)

    def __iter__(self):
        return iter(self.plans)


def load_plans(path: Path) -> Plans:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlansError(f"{path}: cannot be read ({exc})") from None
    return parse_plans(text, str(path))


def parse_plans(text: str, where: str = "plans file") -> Plans:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message names the line and column
        raise PlansError(f"{where}: not valid TOML: {exc}") from None
    lines = text.splitlines()

    def fail(message: str, plan_id: str | None = None, key: str | None = None) -> PlansError:
        line = _line_of(lines, plan_id, key)
        return PlansError(f"{where}{f', line {line}' if line else ''}: {message}")

    unknown = set(document) - {"plans", "default"}
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"unknown setting {key!r} (a file holds `default` and [plans.<id>] tables)", None, key)
    tables = document.get("plans")
    if not isinstance(tables, dict) or not tables:
        raise fail("no plans: add at least one [plans.<id>] table")
    plans = tuple(_plan(plan_id, fields, fail) for plan_id, fields in tables.items())
    seen: set[str] = set()
    for plan in plans:  # a subscription's price must name one plan
        if plan.stripe_price in seen:
            raise fail(f"stripe_price {plan.stripe_price!r} is used by more than one plan", plan.id, "stripe_price")
        seen.add(plan.stripe_price)
    prices = {plan.stripe_price for plan in plans}
    for plan in plans:  # a metered item must never be taken for the plan's own price
        if plan.overage_price in prices:
            raise fail(f"plans.{plan.id}.overage_price {plan.overage_price!r} is a plan's stripe_price; it must "
                       "be a separate metered price", plan.id, "overage_price")
    default = document.get("default", plans[0].id)
    if not isinstance(default, str) or default not in tables:
        raise fail(f"default must name one of the plans ({', '.join(tables)})", None, "default")
    return Plans(plans, default)


def _plan(plan_id: str, fields: object, fail) -> Plan:
    if not PLAN_ID.fullmatch(plan_id):
        raise fail(f"plan id {plan_id!r} must be 1-32 lowercase letters, digits, - or _", plan_id)
    if not isinstance(fields, dict):
        raise fail(f"plans.{plan_id} must be a table ([plans.{plan_id}])", plan_id)
    for key in fields:
        if key in REPLACED:
            raise fail(f"plans.{plan_id}.{key} is replaced by {REPLACED[key]}", plan_id, key)
        if key not in FIELDS:
            raise fail(f"plans.{plan_id}: unknown field {key!r} (known: {', '.join(sorted(FIELDS))})", plan_id, key)
    for key in REQUIRED:
        if key not in fields:
            raise fail(f"plans.{plan_id}: {key} is missing", plan_id)

    def text(key: str, *, required: bool = True) -> str:
        value = fields.get(key, "")
        if not isinstance(value, str) or (required and not value.strip()):
            raise fail(f"plans.{plan_id}.{key} must be a non-empty string", plan_id, key)
        return value.strip()

    def whole(key: str, low: int, high: int, default: int = 0) -> int:
        value = fields.get(key, default)
        if type(value) is not int or not low <= value <= high:
            raise fail(f"plans.{plan_id}.{key} must be a whole number from {low} to {high}", plan_id, key)
        return value

    def number(key: str, low: float, high: float, default: float = 0.0) -> float:
        value = fields.get(key, default)
        if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
            raise fail(f"plans.{plan_id}.{key} must be a number from {low:g} to {high:g}", plan_id, key)
        return float(value)

    def overage() -> str:
        value = fields.get("overage", "stop")
        if value not in OVERAGE:
            raise fail(f'plans.{plan_id}.overage must be "stop" or "bill"', plan_id, "overage")
        return value

    policy = overage()
    overage_price = None
    if policy == "bill":
        if "overage_price" not in fields:
            raise fail(f'plans.{plan_id}: overage = "bill" needs overage_price (the id of a metered Stripe price)',
                       plan_id, "overage")
        overage_price = text("overage_price")
    elif "overage_price" in fields:
        raise fail(f'plans.{plan_id}.overage_price is only used with overage = "bill"', plan_id, "overage_price")
    ceiling = number("spend_cap_ceiling_usd", 0, 1e6)
    included = number("included_usage_usd", 0, 1e6)
    if policy == "bill" and not included:
        raise fail(f'plans.{plan_id}: overage = "bill" bills usage beyond included_usage_usd; set it above 0',
                   plan_id, "included_usage_usd" if "included_usage_usd" in fields else "overage")
    # A billed plan must bound what a month can cost: without a ceiling, a subscriber with no cap
    # of their own (or an assistant in a loop) would run up a bill with no limit, found only on
    # the invoice. The ceiling is every subscriber's cap unless they set a lower one.
    if policy == "bill" and not ceiling:
        raise fail(f'plans.{plan_id}: overage = "bill" needs spend_cap_ceiling_usd above 0, so no month\'s bill '
                   "is unbounded", plan_id, "spend_cap_ceiling_usd" if "spend_cap_ceiling_usd" in fields else "overage")
    if policy == "bill" and ceiling <= included:
        raise fail(f"plans.{plan_id}.spend_cap_ceiling_usd must be above included_usage_usd for overage to be "
                   "billed", plan_id, "spend_cap_ceiling_usd")
    cpus = number("cpus", 0.1, 64)
    return Plan(id=plan_id, name=text("name"), stripe_price=text("stripe_price"),
                price_label=text("price_label", required=False), instances=whole("instances", 1, 1000),
                memory_mb=whole("memory_mb", 256, 1 << 20), cpus=cpus, trial_days=whole("trial_days", 0, 730),
                included_usage_usd=included, overage=policy, overage_price=overage_price,
                spend_cap_ceiling_usd=ceiling, backup_every_hours=whole("backup_every_hours", 0, 8760, 24),
                backups_kept=whole("backups_kept", 1, 1000, 7))


def _line_of(lines: list[str], plan_id: str | None, key: str | None) -> int | None:
    """The line a mistake is on: the key inside its plan's table (or at the top), else the table's
    header. tomllib keeps no positions, so the text is searched (headers and `key =` lines only)."""
    start, end = 0, len(lines)
    if plan_id is not None:
        header = re.compile(rf"\s*\[\s*plans\s*\.\s*\"?{re.escape(plan_id)}\"?\s*\]")
        start = next((n for n, line in enumerate(lines) if header.match(line)), None)
        if start is None:
            return None
        end = next((n for n in range(start + 1, len(lines)) if lines[n].lstrip().startswith("[")), len(lines))
    elif key is not None:  # a top-level key sits before the first table
        end = next((n for n, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    if key is not None:
        assignment = re.compile(rf"\s*\"?{re.escape(key)}\"?\s*=")
        for n in range(start, end):
            if assignment.match(lines[n]):
                return n + 1
    return start + 1 if plan_id is not None else None

