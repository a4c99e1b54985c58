"""The instance page's "Model usage" section over the real app, its usage made by model calls
through the platform's model gateway to a fake model: today and the month, the last 30 days'
chart (one bar a day, tall where calls cost), the cap's bar in its three states, and the cap
form (errors next to the field with the value kept; saved with a notice). Seen in a real
Chromium at desktop and phone widths, checked with axe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from model_gateway.reports import money_text, utc_today
from tests.fakes.model import FakeModel
from tests.support.browser import assert_accessible, screenshot
from tests.support.model_calls import calls_dated, cost_of, model_calls
from tests.support.web_client import WebUser, serving_pages
from tests.web.pages.owned_instances import created, signed_up

BAR = re.compile(r'<rect class="bar( bar-today)?" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)">'
                 r"<title>([^<]*)</title>")


@pytest.fixture
async def site(settings_for, sessions):
    async with FakeModel() as model:
        model.reply = "word " * 8000  # about $0.10 a call at the shipped price
        async with serving_pages(settings_for(provider_urls={"openai": f"{model.url}/v1"})) as api:
            yield api


async def _spent_three_days(site, user, monkeypatch) -> tuple[str, int, int]:
    """An assistant with one call three days ago and two today: its id, and today's cost and the
    earlier day's."""
    instance = await created(site, user)
    with calls_dated(monkeypatch, utc_today() - timedelta(days=3)):
        earlier = await model_calls(site.platform, instance.id)
    today = await model_calls(site.platform, instance.id, 2)
    return str(instance.id), cost_of(today), cost_of(earlier)


async def _month_spent(site, user) -> int:
    return (await site.platform.model_gateway.caps.standing(user.id)).spent_micro_usd


async def _set_cap(person: WebUser, instance_id: str, value: str):
    page = f"/instances/{instance_id}"
    return await person.submit(page, {"spend_cap_usd": value}, action=f"{page}/spend-cap")


async def test_today_the_month_and_a_bar_for_each_of_the_last_30_days(browser_for, site, monkeypatch) -> None:
    person, user = await signed_up(browser_for)
    instance_id, today_cost, earlier_cost = await _spent_three_days(site, user, monkeypatch)
    page = await person.get(f"/instances/{instance_id}")
    assert page.status == 200 and 'id="model-usage"' in page.text
    bars = BAR.findall(page.text)
    assert len(bars) == 30
    tall = [(index, float(height)) for index, (_, height, _) in enumerate(bars) if float(height) > 0]
    assert [index for index, _ in tall] == [26, 29]  # three days ago, and today
    assert bars[29][0] == " bar-today" and tall[1][1] > tall[0][1]  # today's two calls cost more
    assert bars[29][2].endswith(money_text(today_cost)) and bars[26][2].endswith(money_text(earlier_cost))
    assert page.has("<title id=\"cost-chart-title\">Cost per day from")
    assert page.has(f"{money_text(today_cost + earlier_cost)} in all over 2 of the 30 days")
    assert re.search(r'<div class="visually-hidden">[^<]*<table id="cost-table">', page.text)
    today_figure = page.text[page.text.index('data-period="today"'):page.text.index('data-period="this-month"')]
    assert money_text(today_cost) in today_figure and "2 requests" in today_figure
    assert page.has("No cap: nothing stops their model calls.") and 'id="cap-bar"' not in page.text


async def test_the_cap_form_keeps_a_refused_value_and_the_bar_warns_then_stops(browser_for, site,
                                                                              monkeypatch) -> None:
    person, user = await signed_up(browser_for)
    instance_id, _, _ = await _spent_three_days(site, user, monkeypatch)
    spent = await _month_spent(site, user)

    refused = await _set_cap(person, instance_id, "twenty")
    assert refused.status == 400
    assert re.search(r'<input id="spend_cap_usd"[^>]*value="twenty"[^>]*aria-invalid="true"', refused.text)
    assert refused.has('<p class="field-error" id="spend_cap_usd-error">Give the cap in US dollars')
    assert (await _set_cap(person, instance_id, "-4")).has("more than $0")
    assert (await site.platform.model_gateway.caps.standing(user.id)).own_cap_micro_usd is None

    saved = await _set_cap(person, instance_id, "20")
    assert saved.status == 200 and saved.url.endswith(f"/instances/{instance_id}?notice=cap_saved")
    assert saved.has("Saved: your monthly spending cap") and saved.has('value="20"')
    assert saved.has('data-state="ok"') and saved.has("of $20.00 spent this month")

    near = await _set_cap(person, instance_id, f"{spent * 10 // 9 / 1_000_000:.6f}")  # 90% spent
    assert near.has('data-state="warn"') and near.has("(90%)") and near.has("Over 80% of the cap")
    assert re.search(r'<rect class="cap-fill" x="0" y="0" width="90"', near.text)

    reached = await _set_cap(person, instance_id, f"{spent / 2 / 1_000_000:.6f}")
    assert reached.has('data-state="reached"') and reached.has("The cap is reached")
    assert re.search(r'<rect class="cap-fill" x="0" y="0" width="100"', reached.text)  # full, not 200%

    removed = await _set_cap(person, instance_id, "")
    assert removed.url.endswith("notice=cap_removed") and removed.has("No cap: nothing stops")


async def test_another_persons_cap_form_is_a_404(browser_for, site) -> None:
    owner, owner_user = await signed_up(browser_for)
    instance = await created(site, owner_user)
    stranger, stranger_user = await signed_up(browser_for)
    page = await stranger.get("/dashboard")
    answer = await stranger.post(f"/instances/{instance.id}/spend-cap", {"spend_cap_usd": "5"}, csrf=page.csrf)
    assert answer.status == 404
    assert (await site.platform.model_gateway.caps.standing(stranger_user.id)).own_cap_micro_usd is None


async def test_the_section_in_a_real_browser_at_both_widths(browser_for, site, monkeypatch, page,
                                                           phone_page) -> None:
    person, user = await signed_up(browser_for)
    instance_id, _, _ = await _spent_three_days(site, user, monkeypatch)
    spent = await _month_spent(site, user)
    await _set_cap(person, instance_id, f"{spent / 0.85 / 1_000_000:.2f}")
    cookie = {"name": "clawfleet_session", "value": person.cookie("clawfleet_session"),
              "url": site.url("/")}
    for each, name in ((page, "instance-usage"), (phone_page, "instance-usage")):
        await each.context.add_cookies([cookie])
        await each.goto(site.url(f"/instances/{instance_id}"))
        section = each.locator("#model-usage")
        await section.scroll_into_view_if_needed()
        assert await each.locator("#cost-chart rect.bar").count() == 30
        assert await each.locator("#cap-bar").get_attribute("data-state") == "warn"
        box = await each.locator("#cost-chart").bounding_box()
        assert box["width"] <= each.viewport_size["width"] and box["height"] > 100
        assert await each.evaluate("document.documentElement.scrollWidth") <= each.viewport_size["width"]
        await assert_accessible(each)
        await screenshot(each, name)

    # a refused value, as a phone shows it
    await phone_page.fill("#spend_cap_usd", "lots")
    await phone_page.click("#cap-form button[type=submit]")
    await phone_page.wait_for_selector("#spend_cap_usd-error")
    assert await phone_page.input_value("#spend_cap_usd") == "lots"
    await assert_accessible(phone_page)
    await screenshot(phone_page, "instance-usage-cap-error")
