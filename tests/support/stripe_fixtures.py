"""Fixtures of the billing tests' Stripe: one localstripe process for the whole session, and
per test a fresh fake Stripe front over it (tests/fakes/stripe)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator

import pytest
import stripe

from tests.fakes.stripe import FakeStripe, LocalStripeProcess
from tests.support.services import service_missing

TEST_SECRET_KEY = "sk_test_clawfleet_tests"


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripeProcess]:
    """localstripe on a free loopback port; its output in localstripe.log under pytest's tmp dir.
    One per session: tests empty it instead of starting their own."""
    if importlib.util.find_spec("localstripe") is None:
        service_missing("localstripe is not installed (pip install -e '.[dev]')")
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    process = LocalStripeProcess()
    try:
        process.start(log)
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"localstripe could not start: {exc} (its log: {log})", pytrace=False)
    yield process
    process.stop()


@pytest.fixture
async def stripe_fake(localstripe: LocalStripeProcess) -> AsyncIterator[FakeStripe]:
    """The fake Stripe over an emptied localstripe; `stripe_fake.api_url` is the API base."""
    localstripe.reset()
    async with FakeStripe(localstripe.url, api_key=TEST_SECRET_KEY) as fake:
        yield fake


@pytest.fixture
async def stripe_client(stripe_fake: FakeStripe) -> AsyncIterator[stripe.StripeClient]:
    """The real stripe library pointed at the fake, on its aiohttp client (closed afterwards)."""
    http_client = stripe.AIOHTTPClient()
    yield stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": stripe_fake.api_url}, http_client=http_client)
    await http_client.close_async()
