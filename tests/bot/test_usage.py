"""/usage in chat, played by a user against the fake Bot API: spending made by model calls sent
through the platform's model gateway to a fake model, /usage cap to set and remove the monthly
cap (and bad amounts answered with what to send), and the "Usage and cap" button under the
model gateway's own 80% notice. SQLite and PostgreSQL both."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clawfleet.platform import PLATFORM
from clawfleet.settings import Settings
from db.models import Instance, User
from model_gateway.reports import money_text
from tests.fakes.model import FakeModel
from tests.support.bot_chat import Chat, buttons, collapse, onboard, running_platform
from tests.support.model_calls import cost_of, model_calls

OPENAI_KEY = "sk-proj-usageUSAGEusage0123456789abcd"


@pytest.fixture
async def fake_model():
    async with FakeModel() as model:
        model.reply = "word " * 8000  # about $0.10 a call at the shipped price: cents show
        yield model


@pytest.fixture
async def metered(settings: Settings, fake_model, sessions, runtime):
    """The bot's platform, its model gateway in front of the fake model."""
    with_model = Settings(**{**settings.model_dump(), "_env_file": None,
                             "provider_urls": {"openai": f"{fake_model.url}/v1"}, "max_instances_per_user": 2})
    async with running_platform(with_model, runtime) as server:
        yield server


async def _instances(sessions) -> list[Instance]:
    async with sessions() as session:
        return list(await session.scalars(select(Instance).order_by(Instance.created_at)))


async def _own_cap(sessions) -> int | None:
    async with sessions() as session:
        return (await session.scalar(select(User))).spend_cap_micro_usd


async def test_usage_shows_the_month_today_and_the_cap_and_sets_it(metered, chat: Chat, telegram, sessions) -> None:
    await chat.send("/usage")
    empty = collapse((await chat.reply("Model spending in"))["text"])
    assert "This month: $0.00 · 0 requests · 0 tokens" in empty and "No monthly cap" in empty
    assert "/usage cap 20" in empty and "/usage cap off" in empty

    await onboard(chat, telegram.add_bot(username="spending_bot"), OPENAI_KEY)
    [instance] = await _instances(sessions)
    platform = metered.app[PLATFORM]
    answers = await model_calls(platform, instance.id, 2)
    spent = cost_of(answers)
    tokens = sum(answer["usage"]["total_tokens"] for answer in answers)

    await chat.send("/usage")
    shown = collapse((await chat.reply("Model spending in"))["text"])
    assert f"This month: {money_text(spent)} · 2 requests · {tokens:,} tokens" in shown, shown
    assert f"Today: {money_text(spent)} · 2 requests" in shown
    assert "@spending_bot" not in shown  # one assistant: no list of them

    await chat.send("/usage cap 20")
    capped = collapse((await chat.reply("Your monthly cap is now $20.00"))["text"])
    share = spent * 100 // 20_000_000
    assert f"Cap: {money_text(spent)} of $20.00 ({share}%, your own)" in capped and "it resets on" in capped
    assert await _own_cap(sessions) == 20_000_000

    await chat.send("/usage cap lots")
    assert "like 20 or 12.50" in (refused := (await chat.reply("/usage cap 20"))["text"]) and "/usage cap off" in refused
    await chat.send("/usage cap -3")
    await chat.reply("more than $0")
    await chat.send("/usage cap")
    await chat.reply("Send the cap with it")
    await chat.send("/usage everything")
    await chat.reply("Send /usage to see your spending")
    assert await _own_cap(sessions) == 20_000_000  # none of those changed it

    await chat.send("/usage cap off")
    removed = collapse((await chat.reply("Your own cap is removed"))["text"])
    assert "No monthly cap" in removed
    assert await _own_cap(sessions) is None


async def test_several_assistants_are_listed_and_the_notice_button_opens_usage(
        metered, chat: Chat, telegram, sessions) -> None:
    await onboard(chat, telegram.add_bot(username="first_spender_bot"), OPENAI_KEY)
    platform = metered.app[PLATFORM]
    async with sessions() as session:  # a second one, as the dashboard makes it (/start makes one)
        user = await session.scalar(select(User))
    await platform.instances.create(user, model_provider="openai", api_key=OPENAI_KEY,
                                    telegram_bot_token=telegram.add_bot(username="second_spender_bot").token)
    first, second = await _instances(sessions)
    one_call = cost_of(await model_calls(platform, first.id))
    await model_calls(platform, second.id, 2)

    await chat.send("/usage")
    shown = collapse((await chat.reply("Model spending in"))["text"])
    assert "This month: " + money_text(3 * one_call) in shown
    assert (f"• @second_spender_bot: {money_text(2 * one_call)} this month" in shown
            and f"• @first_spender_bot: {money_text(one_call)} this month" in shown), shown
    assert shown.index("@second_spender_bot") < shown.index("@first_spender_bot")  # the costliest first

    # a cap the next call takes past 80%: the model gateway's notice offers this view
    await chat.send(f"/usage cap {one_call * 4.5 / 1_000_000:.6f}")
    await chat.reply("Your monthly cap is now")
    await model_calls(platform, first.id)
    notice = await chat.reply("Heads-up")
    assert buttons(notice) == {"usage:show": "Usage and cap"}
    await chat.press(notice, "usage:show")
    opened = collapse((await chat.reply(lambda m: "Model spending in" in m.get("text", "")
                                        and "Over 80%" in m["text"]))["text"])
    assert "(88%, your own)" in opened
