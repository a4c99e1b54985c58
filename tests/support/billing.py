"""Billing on, for tests: the example plans' prices made in the fake Stripe, the settings that
point the platform at it, and a little endpoint standing in for Stripe's side of a webhook."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.stripe import FakeStripe
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


# A plan whose usage past the included amount is billed (a metered price on a meter), beside one
# that stops there: $1 included, a $3 ceiling.
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
