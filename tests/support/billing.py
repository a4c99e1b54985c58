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
