"""Billing on, for tests: the example plans' prices made in the fake Stripe, the settings that
point the platform at it, and a little endpoint standing in for Stripe's side of a webhook."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from db.models import KEY_PLATFORM, ModelUsage, Subscription, User
from db.types import utcnow

from tests.fakes.stripe import FakeStripe
from tests.support.builders import new_user
from tests.support.stripe_fixtures import TEST_SECRET_KEY

WEBHOOK_SECRET = "whsec_clawfleet_tests_0123456789"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLANS = ROOT / "plans.example.toml"  # prices price_personal and price_team


async def with_example_prices(stripe_fake: FakeStripe) -> dict[str, object]:
    """Make the example file's prices in the fake; the settings overrides that turn billing on."""
    await stripe_fake.create_price("Personal", 900, price_id="price_personal")
    await stripe_fake.create_price("Team", 2900, price_id="price_team")
    return {"stripe_secret_key": TEST_SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_url": stripe_fake.api_url, "plans_file": EXAMPLE_PLANS, "stripe_timeout_s": 5}


# Plans whose usage past the included amount is billed (a metered price each, on one meter): Pro
# ($1 included, a $3 ceiling) and Max; and Basic, which stops there ($1 included, a $3 ceiling).
BILLED_PLANS = """\
default = "pro"

[plans.pro]
name = "Pro"
stripe_price = "price_pro"
instances = 2
memory_mb = 1024
cpus = 1
included_usage_usd = 1.0
overage = "bill"
overage_price = "price_pro_overage"
spend_cap_ceiling_usd = 3.0

[plans.max]
name = "Max"
stripe_price = "price_max"
instances = 3
memory_mb = 1024
cpus = 1
included_usage_usd = 2.0
overage = "bill"
overage_price = "price_max_overage"
spend_cap_ceiling_usd = 10.0

[plans.basic]
name = "Basic"
stripe_price = "price_basic"
instances = 1
memory_mb = 1024
cpus = 1
included_usage_usd = 1.0
spend_cap_ceiling_usd = 3.0
"""
OVERAGE_EVENT = "clawfleet_model_overage"


async def with_billed_overage_prices(stripe_fake: FakeStripe, directory: Path) -> dict[str, object]:
    """BILLED_PLANS in a file under `directory` and its prices in the fake (the overage one
    metered, a cent a unit, on a meter of OVERAGE_EVENT); the settings overrides for it."""
    meter = await stripe_fake.create_meter(OVERAGE_EVENT)
    await stripe_fake.create_price("Pro", 4900, currency="usd", price_id="price_pro")
    await stripe_fake.create_price("Basic", 900, currency="usd", price_id="price_basic")
    await stripe_fake.create_price("Max", 9900, currency="usd", price_id="price_max")
    await stripe_fake.create_metered_price("Model usage", 1, meter["id"], price_id="price_pro_overage")
    await stripe_fake.create_metered_price("Model usage (Max)", 1, meter["id"], price_id="price_max_overage")
    plans = directory / "plans.toml"
    plans.write_text(BILLED_PLANS, encoding="utf-8")
    return {"stripe_secret_key": TEST_SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_url": stripe_fake.api_url, "plans_file": plans, "stripe_timeout_s": 5,
            "stripe_meter_event": OVERAGE_EVENT}


async def subscriber(sessions, plan: str, customer: str | None = None) -> User:
    """A user with an active subscription to `plan` (of BILLED_PLANS), as billing records one."""
    async with sessions() as session:
        user = new_user(stripe_customer_id=customer)
        session.add(user)
        await session.flush()
        session.add(Subscription(user_id=user.id, stripe_subscription_id=f"sub_{user.id.hex[:12]}", status="active",
                                 plan=plan, stripe_price_id=f"price_{plan}", created_at=utcnow()))
        await session.commit()
        return user


async def spend(sessions, user: User, usd: float, key_source: str = KEY_PLATFORM, model: str = "gpt-5.5") -> None:
    """Model usage of `usd` today, as the model gateway writes it (a row of an instance of theirs)."""
    async with sessions() as session:
        session.add(ModelUsage(user_id=user.id, instance_id=uuid.uuid4(), day=datetime.now(UTC).date(), provider="openai",
                               model=model, key_source=key_source, requests=1, cost_micro_usd=round(usd * 1e6)))
        await session.commit()
