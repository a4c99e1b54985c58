"""A real headless Chromium for the web pages' tests: Debian's /usr/bin/chromium driven by
Playwright (`make test` installs it: scripts/ensure-chromium.sh; never `playwright install`).

    async def test_sign_in_page(page, phone_page):
        await page.goto(url)
        await assert_accessible(page)          # axe-core, WCAG 2.x A and AA
        await screenshot(page, "sign-in")      # test-artifacts/screenshots/sign-in-desktop.png

`page` is a desktop page and `phone_page` a phone's, each in a fresh context of its own;
`new_page("desktop" | "phone")` makes more in one test. Tests that use them are marked `browser`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.support.services import service_missing

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = Path(__file__).resolve().parent / "vendor" / "axe.min.js"  # axe-core 4.14.1, MPL-2.0

Kind = Literal["desktop", "phone"]
CONTEXTS: dict[Kind, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
              "has_touch": True},
}
# Every success criterion of WCAG 2.0, 2.1 and 2.2 at levels A and AA that axe checks.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
FAILING_IMPACTS = ("serious", "critical")
_KIND_OF: dict[BrowserContext, Kind] = {}  # each open context's kind, for the screenshot's name


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the whole run (a launch takes about a second); tests get their own contexts."""
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"{CHROMIUM} is missing (make test installs it: scripts/ensure-chromium.sh)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[Callable[[Kind], Awaitable[Page]]]:
    """Makes a page in a fresh context of the given kind; all of them are closed after the test."""
    contexts: list[BrowserContext] = []

    async def make(kind: Kind = "desktop") -> Page:
        page = await open_page(browser, kind)
        contexts.append(page.context)
        return page

    yield make
    for context in contexts:
        await context.close()


async def open_page(browser: Browser, kind: Kind = "desktop", **options: Any) -> Page:
    """A page in a fresh context of that kind (options go to new_context, e.g. storage_state), for
    fixtures of a wider scope than new_page's; whoever opens it closes its context."""
    context = await browser.new_context(**CONTEXTS[kind], **options)
    context.set_default_timeout(10_000)  # a broken page fails in seconds, not in Playwright's 30
    _KIND_OF[context] = kind
    context.on("close", lambda closed: _KIND_OF.pop(closed, None))
    return await context.new_page()


@pytest.fixture
async def page(new_page) -> Page:
    """A desktop page (1280×800) in a fresh context."""
    return await new_page("desktop")


@pytest.fixture
async def phone_page(new_page) -> Page:
    """A phone's page (390×844, touch, mobile viewport) in a fresh context."""
    return await new_page("phone")


def kind_of(page: Page) -> Kind:
    try:
        return _KIND_OF[page.context]
    except KeyError:
        raise ValueError("this page was not made by the page, phone_page or new_page fixture") from None


def screenshots_dir() -> Path:
    return Path(os.environ.get("CLAWFLEET_TEST_ARTIFACTS") or ROOT / "test-artifacts" / "screenshots")


async def screenshot(page: Page, name: str) -> Path:
    """The whole page as `<name>-desktop.png` or `<name>-phone.png`, in CSS pixels (a phone's is
    390 wide), kept in $CLAWFLEET_TEST_ARTIFACTS for a person to look at."""
    path = screenshots_dir() / f"{name}-{kind_of(page)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=True, scale="css")
    return path


@functools.cache
def _axe_source() -> str:
    return AXE_SCRIPT.read_text()


async def assert_accessible(page: Page) -> dict:
    """Runs axe-core on the page as it is now and fails listing every serious or critical violation
    of WCAG 2.x A/AA; returns axe's whole result (the minor ones are there too)."""
    # page.add_script_tag is refused by a page whose CSP forbids inline script (ours do), so axe
    # goes in through page.evaluate: DevTools' evaluation is not subject to the page's CSP.
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(_axe_source())
    results = await page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS)
    failing = [violation for violation in results["violations"] if violation["impact"] in FAILING_IMPACTS]
    if failing:
        raise AssertionError(describe_violations(page.url, failing))
    return results


def describe_violations(url: str, violations: list[dict]) -> str:
    lines = [f"{len(violations)} serious or critical accessibility violation(s) on {url}:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    {' '.join(map(str, node['target']))}" for node in violation["nodes"])
    return "\n".join(lines)
