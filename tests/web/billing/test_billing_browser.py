"""/billing, the plan step and /billing/done in a real Chromium, desktop and phone: accessible,
and Subscribe really leads to the (fake) Stripe Checkout page despite the page's form-action policy."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import select

from db.models import Instance
from tests.support.browser import assert_accessible, screenshot
from tests.web.billing.test_billing_pages import _to_review


async def test_billing_pages_in_a_browser(api, browser_for, telegram, stripe_fake, new_page) -> None:
    person = browser_for()
    await _to_review(person, telegram, "shots@example.com")
    for kind in ("desktop", "phone"):
        page = await new_page(kind)
        await page.context.add_cookies([{"name": c.key, "value": c.value, "url": api.url("/")}
                                        for c in person.http.cookie_jar])
        await page.goto(api.url("/billing"))
        assert await page.locator("h3#plan-team").inner_text() == "Team"
        await assert_accessible(page)
        await screenshot(page, "billing-plans")
        await page.goto(api.url("/onboard/review"))
        assert await page.get_by_role("button", name="Subscribe and deploy").count() == 1
        assert await page.locator("#plan-personal").is_checked()
        await assert_accessible(page)
        await screenshot(page, "onboard-plan-step")
        await page.goto(api.url("/billing/done?via=bot&session_id=cs_test"))
        await assert_accessible(page)
        await screenshot(page, "billing-done")
    page = await new_page("desktop")
    await page.context.add_cookies([{"name": c.key, "value": c.value, "url": api.url("/")}
                                    for c in person.http.cookie_jar])
    await page.goto(api.url("/billing"))
    await page.get_by_role("button", name="Subscribe to Personal").click()
    await page.wait_for_url(f"{stripe_fake.api_url.rstrip('/')}/**")
    assert await page.get_by_role("button", name="Subscribe").count() == 1


async def test_the_progress_page_waits_for_payment_then_follows_the_deploy(api, browser_for, telegram, stripe_fake,
                                                                           sessions, page) -> None:
    person = browser_for()
    review = await _to_review(person, telegram, "waits@example.com")
    went = await person.post("/onboard/deploy", {"plan": "personal"}, csrf=review.csrf, follow=False)
    checkout = went.headers["Location"]
    async with sessions() as session:
        instance_id = await session.scalar(select(Instance.id))
    await page.context.add_cookies([{"name": c.key, "value": c.value, "url": api.url("/")}
                                    for c in person.http.cookie_jar])
    await page.goto(api.url(f"/onboard/deploying/{instance_id}"))
    await expect(page.get_by_role("heading", name="Waiting for your payment to be confirmed…")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "onboard-waiting-for-payment")
    await stripe_fake.pay(checkout)  # Stripe's webhook follows; billing starts the deploy
    await expect(page.get_by_role("heading", name="Your assistant is running")).to_be_visible(timeout=30_000)
