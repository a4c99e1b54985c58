"""The paid path in chat, end to end: a person onboards with ClawFleet's bot with billing on,
picks a plan, gets a Stripe Checkout link as a button, pays; the signed
`checkout.session.completed` reaches the platform's webhook, and their real OpenClaw gateway
(process runtime) deploys while the bot shows its progress; their own bot answers them. When the
subscription ends the gateway stops and the instance is `suspended`; a new subscription, paid
from /billing, brings the same instance back with its data.

Stripe is localstripe behind the fake front (tests/fakes/stripe), driven by the real `stripe`
library; Telegram and the model are loopback fakes: no traffic leaves the machine."""

from __future__ import annotations

import uuid

import pytest

from clawfleet.platform import PLATFORM
from clawfleet.settings import Settings
from db.models import Instance
from db.status import Status
from provisioner.providers import get_provider
from provisioner.runtimes import procfs
from tests.fakes.model import FakeModel
from tests.support.api_client import migrated
from tests.support.billing import WEBHOOK_SECRET, with_example_prices
from tests.support.bot_chat import Chat, buttons, running_platform
from tests.support.platform_process import kill_all
from tests.support.waiting import eventually

OPENAI_KEY = "sk-proj-paidPAID0123456789abcdefgh"
START_S = 240  # a gateway's start on a busy machine, and its first answer


@pytest.fixture
async def model():
    async with FakeModel() as fake:
        fake.reply = lambda text: f"the model heard: {text}"
        yield fake


@pytest.fixture
async def settings(tmp_path, openclaw_install, telegram, clawfleet_bot, model, stripe_fake) -> Settings:
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
        telegram_api_url=telegram.api_url, telegram_bot_token=clawfleet_bot.token, telegram_pacing=False,
        provider_urls={"openai": f"{model.url}/v1"}, start_timeout_s=150, lease_ttl_s=5,
        **await with_example_prices(stripe_fake),
    )


def pay_button(message: dict) -> str:
    urls = [data for data, label in buttons(message).items() if label == "Pay with Stripe"]
    assert urls, f"no Pay with Stripe button on {message.get('text')!r}: {buttons(message)}"
    return urls[0]


def gateway_pids(settings: Settings, home) -> list[int]:
    instances = settings.data_dir.resolve() / "instances"
    return procfs.processes_by_directory(instances).get(home.resolve(), [])


async def status_of(platform, instance_id: str, wanted: str) -> bool:
    async with platform.sessions() as session:
        return (await session.get(Instance, uuid.UUID(instance_id))).status == wanted


async def answered(own_bot, ada, text: str) -> dict:
    await own_bot.user_sends(ada, text)
    return await own_bot.wait_for_message(ada.id, lambda m: f"the model heard: {text}" in m.get("text", ""),
                                          timeout=START_S)


async def test_pay_in_chat_deploy_suspend_and_come_back_with_the_same_data(settings, telegram, clawfleet_bot,
                                                                           stripe_fake, model):
    own_bot = telegram.add_bot(username="ada_paid_bot")
    ada = telegram.user(first_name="Ada")
    chat = Chat(clawfleet_bot, ada)
    await migrated(settings)
    try:
        async with running_platform(settings) as server:
            stripe_fake.configure_webhook(str(server.make_url("/api/webhooks/stripe")), WEBHOOK_SECRET)
            await chat.send("/start")
            await chat.press(await chat.reply("Welcome"), "provider:openai")
            await chat.press(await chat.reply("which model?"), f"model:{get_provider('openai').default_model}")
            await chat.send(OPENAI_KEY)
            await chat.reply("Key received")
            await chat.send(own_bot.token)
            plans = await chat.reply("Choose a plan")
            assert {"pickplan:personal", "pickplan:team"} <= set(buttons(plans))
            await chat.press(plans, "pickplan:personal")
            summary = await chat.reply("Ready to deploy")
            assert buttons(summary)["deploy"] == "Subscribe and deploy"
            await chat.press(summary, "deploy")
            waiting = await chat.reply("Pay with Stripe")
            checkout = pay_button(waiting)
            [session] = [s for s in stripe_fake.checkout_sessions.values() if s["url"] == checkout]
            instances = settings.data_dir / "instances"
            assert not instances.exists() or list(instances.iterdir()) == []  # nothing starts before the payment

            paid = await stripe_fake.pay(session["id"])
            assert stripe_fake.deliveries[-1].event_type == "checkout.session.completed"
            assert stripe_fake.deliveries[-1].status == 200
            ready = await chat.reply(lambda m: "Write to your bot" in m.get("text", "") or "✗" in m.get("text", ""),
                                     timeout=START_S)
            assert "Write to your bot" in ready["text"], chat.transcript()
            assert "plan is active" in chat.transcript()
            [home] = (settings.data_dir / "instances").iterdir()
            assert "the model heard: hello" in (await answered(own_bot, ada, "hello"))["text"]
            kept = home / "state" / "workspace" / "kept-through-suspension.txt"
            kept.write_text("written before the subscription ended")

            await stripe_fake.cancel_subscription(paid["subscription"])
            assert stripe_fake.deliveries[-1].status == 200
            ended = await chat.reply("subscription has ended", timeout=60)
            assert "kept for 30 days" in ended["text"]
            instance_id = home.name
            await eventually(lambda: gateway_pids(settings, home) == [], timeout=60,
                             what=lambda: f"gateway still runs: {gateway_pids(settings, home)}")
            platform = server.app[PLATFORM]
            await eventually(lambda: status_of(platform, instance_id, Status.SUSPENDED), timeout=30)
            await chat.send("/status")
            status = await chat.reply(lambda m: "suspended: the subscription ended" in m.get("text", ""), timeout=20)
            assert buttons(status) == {"billing:show": "Choose a plan"}
            assert kept.exists()

            await chat.send("/billing")
            offer = await chat.reply("Choose a plan")
            await chat.press(offer, "checkout:personal")
            again = await chat.reply("Pay with Stripe", timeout=20)
            second = [s for s in stripe_fake.checkout_sessions.values() if s["url"] == pay_button(again)]
            await stripe_fake.pay(second[0]["id"])
            back = await chat.reply(lambda m: "Write to your bot" in m.get("text", "") and m is not ready,
                                    timeout=START_S)
            assert "Write to your bot" in back["text"]
            assert (settings.data_dir / "instances" / instance_id) == home and kept.read_text() == \
                "written before the subscription ended"
            assert "the model heard: welcome back" in (await answered(own_bot, ada, "welcome back"))["text"]
    finally:
        kill_all(settings.data_dir / "instances")
