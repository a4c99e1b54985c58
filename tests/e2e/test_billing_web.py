"""The paid path through the web wizard in a real Chromium, end to end: sign up, the wizard's
plan step, Stripe's Checkout page (the fake's, paid in the browser), back to ClawFleet, the
assistant's progress live as the signed `checkout.session.completed` starts its real OpenClaw
gateway (process runtime), and their own bot answering. Then the subscription is cancelled on
Stripe's Customer Portal page: the gateway stops, the instance is `suspended`; subscribing again
from /billing brings the same instance back with its data.

Stripe is localstripe behind the fake front (tests/fakes/stripe); Telegram and the model are
loopback fakes: no traffic leaves the machine."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from clawfleet.settings import Settings
from provisioner.runtimes import procfs
from tests.fakes.model import FakeModel
from tests.support.api_client import migrated
from tests.support.billing import WEBHOOK_SECRET, with_example_prices
from tests.support.bot_chat import running_platform
from tests.support.browser import screenshot
from tests.support.platform_process import free_port, kill_all
from tests.support.waiting import eventually

OPENAI_KEY = "sk-proj-webpaidWEBPAID0123456789ab"
START_MS = 240_000  # a gateway's start on a busy machine


@pytest.fixture
async def model():
    async with FakeModel() as fake:
        fake.reply = lambda text: f"the model heard: {text}"
        yield fake


def gateway_pids(settings: Settings, instance_id: str) -> list[int]:
    instances = settings.data_dir.resolve() / "instances"
    return procfs.processes_by_directory(instances).get(instances / instance_id, [])


async def test_pay_in_the_wizard_deploy_cancel_on_the_portal_and_come_back(tmp_path, openclaw_install, telegram,
                                                                           stripe_fake, model, new_page):
    port = free_port()
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
        telegram_api_url=telegram.api_url, provider_urls={"openai": f"{model.url}/v1"}, start_timeout_s=150,
        public_url=f"http://127.0.0.1:{port}", lease_ttl_s=5, **await with_example_prices(stripe_fake))
    own_bot = telegram.add_bot(username="ada_web_paid_bot")
    ada = telegram.user(first_name="Ada")
    await migrated(settings)
    try:
        async with running_platform(settings, port=port):
            url = f"http://127.0.0.1:{port}"
            stripe_fake.configure_webhook(f"{url}/api/webhooks/stripe", WEBHOOK_SECRET)
            page = await new_page("desktop")
            await page.goto(f"{url}/signup")
            await page.get_by_label("Email").fill("ada@example.com")
            await page.get_by_label("Password").fill("correct horse battery")
            await page.get_by_role("button", name="Create account").click()
            await expect(page).to_have_url(re.compile(r"/onboard"))
            await page.get_by_label("OpenAI", exact=True).check()
            await page.get_by_role("button", name="Continue").click()
            await page.get_by_label("OpenAI API key").fill(OPENAI_KEY)
            await page.get_by_role("button", name="Check the key and continue").click()
            await page.get_by_label("Bot token").fill(own_bot.token)
            await page.get_by_label("I know my numeric Telegram id").check()
            await page.get_by_label("Your Telegram id").fill(str(ada.id))
            await page.get_by_role("button", name="Check and continue").click()

            await expect(page).to_have_url(re.compile(r"/onboard/review$"))
            await page.locator("#plan-personal").check()
            await screenshot(page, "paid-path-plan-step")
            await page.get_by_role("button", name="Subscribe and deploy").click()

            await page.wait_for_url(f"{stripe_fake.api_url.rstrip('/')}/checkout/**")  # Stripe's Checkout page
            assert not (settings.data_dir / "instances").exists()  # nothing runs before the payment
            await page.get_by_role("button", name="Subscribe").click()
            await expect(page).to_have_url(re.compile(r"/billing/done\?via=web"))
            await expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
            await page.get_by_role("link", name="Follow your assistant's start").click()
            await expect(page).to_have_url(re.compile(r"/onboard/deploying/[0-9a-f-]+$"))
            instance_id = page.url.rsplit("/", 1)[1]
            await expect(page.get_by_role("heading", name="Your assistant is running")).to_be_visible(timeout=START_MS)

            await own_bot.user_sends(ada, "hello from the web")
            answer = await own_bot.wait_for_message(
                ada.id, lambda m: "the model heard: hello from the web" in m.get("text", ""), timeout=240)
            assert answer
            kept = settings.data_dir / "instances" / instance_id / "state" / "workspace" / "kept.txt"
            kept.write_text("still here")

            await page.goto(f"{url}/billing")
            await page.get_by_role("button", name="Manage billing").first.click()
            await page.wait_for_url(f"{stripe_fake.api_url.rstrip('/')}/portal/**")
            await page.get_by_role("button", name="Cancel subscription").click()
            await expect(page).to_have_url(re.compile(r"/billing$"))
            await eventually(lambda: gateway_pids(settings, instance_id) == [], timeout=60,
                             what=lambda: "the gateway still runs after the subscription ended")
            await page.goto(f"{url}/instances/{instance_id}")
            await expect(page.locator("#status-badge")).to_have_text(re.compile("Suspended"), timeout=30_000)
            await screenshot(page, "paid-path-suspended")
            assert kept.read_text() == "still here"

            await page.goto(f"{url}/billing")
            await page.get_by_role("button", name="Subscribe to Personal").click()
            await page.wait_for_url(f"{stripe_fake.api_url.rstrip('/')}/checkout/**")
            await page.get_by_role("button", name="Subscribe").click()
            await expect(page).to_have_url(re.compile(r"/billing/done\?via=web"))
            await page.goto(f"{url}/instances/{instance_id}")
            await expect(page.locator("#status-badge")).to_have_text("Running", timeout=START_MS)
            assert kept.read_text() == "still here"
            await own_bot.user_sends(ada, "back again")
            assert await own_bot.wait_for_message(
                ada.id, lambda m: "the model heard: back again" in m.get("text", ""), timeout=240)
    finally:
        kill_all(settings.data_dir / "instances")
