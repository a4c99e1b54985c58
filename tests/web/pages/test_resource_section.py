"""The instance page's "CPU and memory" section over the real app and database: a sampler
round over the in-memory gateway, with a day of earlier samples before it, drawn as two bar
charts (a bar per quarter hour, the limit as a line), their title and description for screen
readers and the latest figures as text; in a real Chromium at desktop and phone widths, checked
with axe."""

from __future__ import annotations

import re
from datetime import timedelta

from db.models import ResourceSample
from db.types import utcnow
from tests.support.browser import assert_accessible, screenshot
from tests.web.pages.owned_instances import created, signed_up

MB = 1024 * 1024
MEMORY_BAR = re.compile(r'<rect class="bar-memory( bar-latest)?" x="[\d.]+" y="[\d.]+" width="[\d.]+" '
                        r'height="([\d.]+)"><title>([^<]*)</title>')


async def _earlier_samples(site, instance_id) -> None:
    """Three hours ago 1,200 MB at 40% of a core; an hour ago 600 MB at 5%."""
    async with site.platform.sessions() as session:
        for hours, memory_mb, load in ((3, 1200, 40.0), (1, 600, 5.0)):
            session.add(ResourceSample(instance_id=instance_id, taken_at=utcnow() - timedelta(hours=hours),
                                       memory_bytes=memory_mb * MB, cpu_percent=load))
        await session.commit()


async def test_no_samples_yet_says_so(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    page = await person.get(f"/instances/{instance.id}")
    assert page.has("Nothing measured yet") and page.has("No memory measured in the last 24 hours.")
    assert not MEMORY_BAR.search(page.text)


async def test_a_day_of_samples_as_two_charts_and_the_latest_as_words(browser_for, site) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    await _earlier_samples(site, instance.id)
    assert await site.platform.resource_sampler.run_once() == 1
    page = await person.get(f"/instances/{instance.id}")
    bars = MEMORY_BAR.findall(page.text)
    assert len(bars) == 3  # three quarter hours with a sample, the others empty
    heights = [float(height) for _, height, _ in bars]
    assert heights[0] > heights[1] > heights[2] > 0  # 1,200 MB, then 600, then 321 now
    assert [latest for latest, _, _ in bars] == ["", "", " bar-latest"]
    assert "at most 1,200 MB" in bars[0][2]
    assert page.has("memory 321 MB of 1,536 MB (21%)")  # the latest, in words
    assert page.has("At most 1,200 MB") and page.has("of its 1,536 MB limit")
    assert page.has('<title id="memory-chart-title">Memory over the last 24 hours</title>')
    assert page.has('<desc id="cpu-chart-desc">22.5% of one core on average, at most 40.0%; it may use 100.0%')
    assert page.text.count('class="chart-limit"') == 2


async def test_the_section_in_a_real_browser_at_both_widths(browser_for, site, page, phone_page) -> None:
    person, user = await signed_up(browser_for)
    instance = await created(site, user)
    await _earlier_samples(site, instance.id)
    await site.platform.resource_sampler.run_once()
    cookie = {"name": "clawfleet_session", "value": person.cookie("clawfleet_session"), "url": site.url("/")}
    for each in (page, phone_page):
        await each.context.add_cookies([cookie])
        await each.goto(site.url(f"/instances/{instance.id}"))
        await each.locator("#resources").scroll_into_view_if_needed()
        assert await each.locator("#memory-chart rect.bar-memory").count() == 3
        assert await each.locator("#cpu-chart rect.bar-cpu").count() == 2  # the first sample has no load yet
        assert "321 MB" in await each.locator("#resource-latest").inner_text()
        for chart in ("#memory-chart", "#cpu-chart"):
            box = await each.locator(chart).bounding_box()
            assert box["width"] <= each.viewport_size["width"] and box["height"] > 100
        assert await each.evaluate("document.documentElement.scrollWidth") <= each.viewport_size["width"]
        await assert_accessible(each)
        await screenshot(each, "instance-resources")
