"""Billing in chat, played by a user against the fake Bot API, with billing on over the fake
Stripe (localstripe behind tests/fakes/stripe): the onboarding's plan step and Stripe Checkout,
the deploy once the payment went through, /billing and /plan. Stripe's webhooks reach the
platform's own endpoint. SQLite and PostgreSQL both; billing off: tests/bot/test_onboarding.py and
the end of this file."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clawfleet.platform import PLATFORM
from clawfleet.settings import Settings
from db.models import Instance, Subscription, User
from provisioner.providers import get_provider
from tests.support.billing import WEBHOOK_SECRET, with_example_prices
from tests.support.bot_chat import Chat, buttons, collapse, running_platform
from tests.support.waiting import eventually
from tests.support.model_keys import key_sent_for, keyring_of

OPENAI_KEY = "sk-proj-billingBILLING0123456789abcd"


@pytest.fixture
async def billed_settings(settings: Settings, stripe_fake) -> Settings:
    """The bot's settings with billing on: the example plans, at prices made in the fake Stripe."""
    return Settings(**{**settings.model_dump(), "_env_file": None, **await with_example_prices(stripe_fake)})


@pytest.fixture
async def billed(billed_settings, sessions, runtime, stripe_fake):
    """The platform with billing on, Stripe's events delivered to its webhook."""
    async with running_platform(billed_settings, runtime) as server:
        assert server.app[PLATFORM].billing is not None
        stripe_fake.configure_webhook(str(server.make_url("/api/webhooks/stripe")), WEBHOOK_SECRET)
        yield server


async def _instances(sessions) -> list[Instance]:
    async with sessions() as session:
        return list(await session.scalars(select(Instance).order_by(Instance.created_at)))


async def _user(sessions) -> User:
    async with sessions() as session:
        return await session.scalar(select(User))


async def _subscription(sessions) -> Subscription:
    async with sessions() as session:
        return await session.scalar(select(Subscription))


def _pay_url(message: dict) -> str:
    [url] = [data for data, label in buttons(message).items() if label == "Pay with Stripe"]
    return url


async def _to_token_step(chat: Chat) -> None:
    await chat.send("/start")
    welcome = await chat.reply("Welcome to ClawFleet")
    await chat.press(welcome, "provider:openai")
    await chat.press(await chat.reply("which model?"), f"model:{get_provider('openai').default_model}")
    await chat.send(OPENAI_KEY)
    await chat.reply("Key received")


async def _subscribe(chat: Chat, stripe_fake, plan: str = "personal") -> None:
    """/billing's plan buttons, then paying on the Checkout page; until billing says it is active."""
    await chat.send("/billing")
    offer = await chat.reply("Choose a plan")
    await chat.press(offer, f"checkout:{plan}")
    await stripe_fake.pay(_pay_url(await chat.reply("Pay with Stripe")))
    await chat.reply("plan is active")


async def _onboard_subscribed(chat: Chat, own_bot) -> dict:
    await _to_token_step(chat)
    await chat.send(own_bot.token)
    summary = await chat.reply("Ready to deploy")
    assert buttons(summary)["deploy"] == "Deploy"
    await chat.press(summary, "deploy")
    return await chat.reply("Write to your bot", timeout=15)


# -- onboarding --------------------------------------------------------------------------------
async def test_onboarding_chooses_a_plan_pays_with_stripe_and_then_deploys(
        billed, chat: Chat, telegram, sessions, runtime, stripe_fake, settings) -> None:
    own_bot = telegram.add_bot(username="billed_bot")
    await chat.send("/start")
    welcome = await chat.reply("Welcome to ClawFleet")
    assert "Step 1 of 5." in welcome["text"] and "a card, to subscribe to a plan" in welcome["text"]
    await chat.press(welcome, "provider:openai")
    assert "Step 2 of 5." in (models := await chat.reply("which model?"))["text"]
    await chat.press(models, f"model:{get_provider('openai').default_model}")
    assert "Step 3 of 5." in (await chat.reply("API key"))["text"]
    await chat.send(OPENAI_KEY)
    assert "Step 4 of 5." in (await chat.reply("Key received"))["text"]

    await chat.send(own_bot.token)
    step = await chat.reply("Choose a plan")
    text = collapse(step["text"])
    assert "Step 5 of 5." in text and "Bot @billed_bot checked." in text
    assert "Personal · $9 / month: 1 assistant, 1536 MB and 1 CPU each" in text
    assert "Team · $29 / month: 3 assistants, 2048 MB and 2 CPU each, the first 7 days free" in text
    assert buttons(step) == {"pickplan:personal": "Personal · $9 / month", "pickplan:team": "Team · $29 / month",
                             "back": "« Back"}

    await chat.press(step, "pickplan:team")
    summary = await chat.reply("Ready to deploy")
    assert summary["message_id"] == step["message_id"] and "Plan: Team · $29 / month" in summary["text"]
    assert buttons(summary) == {"deploy": "Subscribe and deploy", "back": "« Back"}

    await chat.press(summary, "deploy")
    pay = await chat.reply("Pay with Stripe")
    assert "Your assistant is set up and waits for payment" in pay["text"]
    url = _pay_url(pay)
    [checkout] = stripe_fake.checkout_sessions.values()
    assert checkout["url"] == url and checkout["amount_total"] == 2900 and checkout["metadata"]["plan"] == "team"
    assert parse_qs(urlsplit(checkout["success_url"]).query)["via"] == ["bot"]
    [instance] = await _instances(sessions)
    assert instance.status == "awaiting_payment" and runtime.starts == []
    assert OPENAI_KEY not in chat.transcript() and own_bot.token not in chat.transcript()

    await stripe_fake.pay(url)
    await chat.reply("Your Team plan is active")  # the notice and the progress message, in either order
    ready = await chat.reply(lambda m: m.get("text", "").startswith("Deploying your assistant\n")
                             and "Write to your bot" in m["text"], timeout=15)
    assert ready["message_id"] != pay["message_id"] and "✓ Your assistant is running" in ready["text"]
    assert buttons(ready) == {"https://t.me/billed_bot": "Open @billed_bot"}
    [instance] = await _instances(sessions)
    assert instance.status == "running"
    assert await key_sent_for(sessions, keyring_of(settings), runtime.starts[0]) == OPENAI_KEY


async def test_back_from_and_to_the_plan_step(billed, chat: Chat, telegram) -> None:
    own_bot = telegram.add_bot(username="undecided_bot")
    await _to_token_step(chat)
    await chat.send(own_bot.token)
    step = await chat.reply("Choose a plan")
    await chat.press(step, "back")
    assert "Step 4 of 5. Now your assistant's own bot" in collapse((await chat.reply("@BotFather"))["text"])
    await chat.send(own_bot.token)
    await chat.press(await chat.reply("Choose a plan"), "pickplan:team")
    await chat.reply("Plan: Team")
    await chat.send("/back")
    again = await chat.reply("Choose a plan")
    assert "Step 5 of 5." in again["text"]
    await chat.press(again, "pickplan:personal")
    summary = await chat.reply("Plan: Personal")
    assert buttons(summary)["deploy"] == "Subscribe and deploy"


async def test_stripe_down_at_checkout_keeps_the_assistant_and_try_again_asks_again(
        billed, chat: Chat, telegram, sessions, stripe_fake, runtime, settings) -> None:
    await _to_token_step(chat)
    await chat.send(telegram.add_bot(username="patient_bot").token)
    await chat.press(await chat.reply("Choose a plan"), "pickplan:personal")
    summary = await chat.reply("Ready to deploy")
    for _ in range(3):  # the first try and the library's two retries
        stripe_fake.fail_next("/v1/checkout/sessions", 500)
    await chat.press(summary, "deploy")
    down = await chat.reply("could not make the payment link")
    assert "Payments are not answering right now" in down["text"]
    assert buttons(down) == {"checkout:personal": "Try again"}
    [instance] = await _instances(sessions)
    assert instance.status == "awaiting_payment"

    await chat.press(down, "checkout:personal")
    pay = await chat.reply("Pay with Stripe")
    assert pay["message_id"] == down["message_id"]
    assert _pay_url(pay) == next(iter(stripe_fake.checkout_sessions.values()))["url"]
    await chat.send("/start")  # the setup is over: what was entered lives on the waiting assistant
    assert "/billing" in (await chat.reply("waits for payment"))["text"]
    await stripe_fake.pay(_pay_url(pay))
    await chat.reply("Write to your bot", timeout=15)
    assert await key_sent_for(sessions, keyring_of(settings), runtime.starts[0]) == OPENAI_KEY


async def test_a_subscriber_onboards_as_without_billing(billed, chat: Chat, telegram, sessions,
                                                        stripe_fake) -> None:
    await _subscribe(chat, stripe_fake)
    await chat.send("/start")
    assert "Step 1 of 4." in (await chat.reply("Welcome to ClawFleet"))["text"]
    ready = await _onboard_subscribed(chat, telegram.add_bot(username="subscriber_bot"))
    assert "Choose a plan" not in chat.transcript().split("Welcome to ClawFleet")[-1]
    assert buttons(ready) == {"https://t.me/subscriber_bot": "Open @subscriber_bot"}
    [instance] = await _instances(sessions)
    assert instance.status == "running"


# -- /billing ------------------------------------------------------------------------------------
async def test_billing_without_a_subscription_offers_the_plans(billed, chat: Chat, stripe_fake) -> None:
    await chat.send("/billing")
    offer = await chat.reply("Choose a plan")
    assert "You have no subscription yet." in offer["text"]
    assert buttons(offer) == {"checkout:personal": "Personal · $9 / month", "checkout:team": "Team · $29 / month"}
    await chat.press(offer, "checkout:team")
    pay = await chat.reply("Pay with Stripe")
    assert "send /start to set up your assistant" in pay["text"]
    assert _pay_url(pay) == next(iter(stripe_fake.checkout_sessions.values()))["url"]

    await chat.send("/plan")  # not subscribed: the same offer
    assert set(buttons(await chat.reply("Choose a plan"))) == {"checkout:personal", "checkout:team"}


async def test_billing_shows_the_plan_and_cancels_at_period_end_after_asking(
        billed, chat: Chat, sessions, stripe_fake) -> None:
    await _subscribe(chat, stripe_fake)
    await chat.send("/billing")
    page = await chat.reply("Your plan: Personal")
    text = collapse(page["text"])
    assert "Your plan: Personal ($9 / month)" in text and "Status: active" in text
    row = await _subscription(sessions)
    renews = f"{row.current_period_end.day} {row.current_period_end:%B %Y}"
    assert f"Renews on {renews}." in text
    [portal] = stripe_fake.portal_sessions.values()
    assert buttons(page) == {portal["url"]: "Manage billing", "plan:show": "Change plan",
                             "billing:cancel": "Cancel at period end"}

    await chat.press(page, "billing:cancel")
    question = await chat.reply("Cancel your subscription at the end of the period?")
    assert f"keeps running until {renews}" in question["text"]
    assert buttons(question) == {"billing:cancel:yes": "Yes, cancel at period end", "billing:back": "No, keep it"}
    await chat.press(question, "billing:back")
    await chat.reply(lambda m: m["message_id"] == page["message_id"] and "Renews on" in m.get("text", ""))
    assert not (await _subscription(sessions)).cancel_at_period_end

    await chat.press(question, "billing:cancel")
    await chat.press(await chat.reply("Cancel your subscription at the end"), "billing:cancel:yes")
    cancelled = await chat.reply("Cancelled: your subscription ends")
    assert f"Ends on {renews}: your assistant runs until then." in cancelled["text"]
    assert buttons(cancelled)["billing:keep"] == "Keep my subscription" and "billing:cancel" not in buttons(cancelled)
    assert (await _subscription(sessions)).cancel_at_period_end

    await chat.press(cancelled, "billing:keep")
    kept = await chat.reply("Your subscription continues")
    assert f"Renews on {renews}." in kept["text"] and buttons(kept)["billing:cancel"] == "Cancel at period end"
    assert not (await _subscription(sessions)).cancel_at_period_end


async def test_a_failed_payment_is_told_and_shown(billed, chat: Chat, sessions, stripe_fake) -> None:
    await _subscribe(chat, stripe_fake)
    await stripe_fake.fail_payment((await _subscription(sessions)).stripe_subscription_id)
    told = await chat.reply("Your last payment did not go through")
    assert buttons(told) == {"billing:show": "Update payment"}
    await chat.press(told, "billing:show")
    page = await chat.reply("Your plan: Personal")
    assert "Your last payment did not go through." in collapse(page["text"])
    assert "Manage billing" in buttons(page).values()


async def test_the_portal_that_does_not_answer_leaves_the_rest_of_the_page(
        billed, chat: Chat, stripe_fake) -> None:
    await _subscribe(chat, stripe_fake)
    for _ in range(3):
        stripe_fake.fail_next("/v1/billing_portal/sessions", 500)
    await chat.send("/billing")
    page = await chat.reply("Your plan: Personal")
    assert "Manage billing is not available right now: Payments are not answering" in collapse(page["text"])
    assert set(buttons(page)) == {"plan:show", "billing:cancel"}


# -- /plan -----------------------------------------------------------------------------------------
async def test_plan_changes_from_the_next_restart_and_offers_it(billed, chat: Chat, telegram,
                                                                sessions, stripe_fake, runtime) -> None:
    await _subscribe(chat, stripe_fake)
    await _onboard_subscribed(chat, telegram.add_bot(username="growing_bot"))
    [instance] = await _instances(sessions)
    await chat.send("/plan")
    plans = await chat.reply("Plans")
    assert "Personal · $9 / month: 1 assistant, 1536 MB and 1 CPU each (your plan)" in collapse(plans["text"])
    assert buttons(plans) == {"plan:set:team": "Switch to Team · $29 / month"}

    await chat.press(plans, "plan:set:team")
    changed = await chat.reply(lambda m: m["message_id"] == plans["message_id"] and "Your plan is now" in m["text"])
    assert collapse(changed["text"]) == ("Your plan is now Team: 3 assistants, 2048 MB and 2 CPU each, from each "
                                         "assistant's next restart. Restart now to use it:")
    assert buttons(changed) == {f"act:restart:{instance.id}": "Restart @growing_bot"}
    assert (await _subscription(sessions)).plan == "team"
    await chat.press(changed, f"act:restart:{instance.id}")
    await chat.reply(lambda m: "Restarting your assistant" in m.get("text", "") and "Write to your bot" in m["text"],
                     timeout=15)
    assert runtime.starts[-1].memory_mb == 2048

    await chat.send("/billing")
    assert "Your plan: Team" in (await chat.reply("Your plan: Team"))["text"]
    await chat.send("/plan")
    assert buttons(await chat.reply("Plans")) == {"plan:set:personal": "Switch to Personal · $9 / month"}


async def test_a_downgrade_below_what_runs_asks_which_to_stop(billed, chat: Chat, telegram,
                                                              sessions, stripe_fake) -> None:
    await _subscribe(chat, stripe_fake, "team")
    await _onboard_subscribed(chat, telegram.add_bot(username="first_bot"))
    the = billed.app[PLATFORM]
    second = await the.instances.create(await _user(sessions), model_provider="openai", api_key=OPENAI_KEY,
                                        telegram_bot_token=telegram.add_bot(username="second_bot").token)
    await the.manager.wait_idle()
    first = (await _instances(sessions))[0]
    await chat.send("/plan")
    plans = await chat.reply("Plans")
    await chat.press(plans, "plan:set:personal")
    asked = await chat.reply(lambda m: m["message_id"] == plans["message_id"] and "Choose which" in m["text"])
    assert "Your plan is now Personal: 1 assistant, 1536 MB and 1 CPU each" in collapse(asked["text"])
    assert "Your Personal plan runs 1 assistant; 2 of yours run. Choose which to stop: nothing stops until you do." \
        in collapse(asked["text"])
    assert buttons(asked) == {f"act:stop:{first.id}": "Stop @first_bot", f"act:stop:{second.id}": "Stop @second_bot"}
    assert {i.status for i in await _instances(sessions)} == {"running"}

    await chat.send("/billing")
    page = await chat.reply("Your plan: Personal")
    assert "nothing stops until you do" in collapse(page["text"])
    assert {f"act:stop:{first.id}", f"act:stop:{second.id}"} <= set(buttons(page))
    await chat.press(page, f"act:stop:{second.id}")
    await chat.reply(lambda m: "Stopping your assistant" in m.get("text", "") and "✓" in m["text"]
                     and "…" not in m["text"].splitlines()[-1], timeout=15)
    await chat.send("/billing")
    page = await chat.reply("Your plan: Personal")
    assert "nothing stops until you do" not in page["text"]
    assert not any(data.startswith("act:stop:") for data in buttons(page))


# -- billing off -------------------------------------------------------------------------------------
async def test_without_billing_the_steps_are_four_and_nothing_is_paid(platform, chat: Chat, telegram) -> None:
    await chat.send("/start")
    welcome = await chat.reply("Welcome to ClawFleet")
    assert "Step 1 of 4." in welcome["text"] and "card" not in welcome["text"]
    await chat.press(welcome, "provider:openai")
    models = await chat.reply("which model?")
    assert "Step 2 of 4." in models["text"]
    await chat.press(models, f"model:{get_provider('openai').default_model}")
    assert "Step 3 of 4." in (await chat.reply("API key"))["text"]
    await chat.send(OPENAI_KEY)
    assert "Step 4 of 4." in (await chat.reply("Key received"))["text"]
    await chat.send(telegram.add_bot(username="free_bot").token)
    summary = await chat.reply("Ready to deploy")
    assert "Plan:" not in summary["text"]
    assert buttons(summary) == {"deploy": "Deploy", "back": "« Back"}
    await chat.send("/back")
    assert "Step 4 of 4." in (await chat.reply("@BotFather"))["text"]

    for command in ("/billing", "/plan"):
        await chat.send(command)
        assert (await chat.reply("runs without billing"))["text"] == \
            "There is nothing to pay on this ClawFleet: it runs without billing."
    await chat.send("/help")
    assert "/plan: change your plan" in (await chat.reply("What I can do"))["text"]


async def test_plan_is_among_the_commands(platform, clawfleet_bot) -> None:
    await eventually(lambda: clawfleet_bot.commands(), timeout=5)
    assert {"billing", "plan"} <= {command["command"] for command in clawfleet_bot.commands()}



# -- closing the account -----------------------------------------------------------------------
async def test_deleting_the_account_in_chat_ends_the_subscription_first(billed, chat: Chat, telegram, sessions,
                                                                        stripe_fake, stripe_client) -> None:
    await _subscribe(chat, stripe_fake)
    await _onboard_subscribed(chat, telegram.add_bot(username="closing_bot"))
    subscription = await _subscription(sessions)

    await chat.send("/delete_account")
    asked = await chat.reply("Delete your ClawFleet account?")
    await chat.press(asked, "account:keep")
    assert (await chat.reply("Nothing was deleted"))["text"] == "Nothing was deleted."
    assert await _user(sessions) is not None

    for _ in range(3):  # the request and the library's two retries
        stripe_fake.fail_next(f"/v1/subscriptions/{subscription.stripe_subscription_id}", 503)
    await chat.send("/delete_account")
    await chat.press(await chat.reply("Delete your ClawFleet account?"), "account:delete")
    refused = await chat.reply("Nothing was deleted:")
    assert "Payments are not answering" in refused["text"]
    assert await _user(sessions) is not None and len(await _instances(sessions)) == 1

    await chat.send("/delete_account")
    await chat.press(await chat.reply("Delete your ClawFleet account?"), "account:delete")
    await chat.reply("Your account is deleted", timeout=30)
    assert await _user(sessions) is None and await _instances(sessions) == []
    ended = await stripe_client.v1.subscriptions.retrieve_async(subscription.stripe_subscription_id)
    assert ended.status == "canceled"
