"""The browser tests' own tools, proven on pages of their own served for real on loopback: axe
passes a good page under a strict CSP and names the rules a bad page breaks; screenshots land
at both widths; a form works with the keyboard alone."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Error as PlaywrightError

from tests.support.browser import assert_accessible, screenshot, screenshots_dir

STRICT_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'"
GOOD_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your assistant</title><link rel="stylesheet" href="/style.css"></head>
<body>
<header><p>ClawFleet</p></header>
<main>
  <h1>Your assistant</h1>
  <img src="/logo.svg" alt="ClawFleet logo" width="48" height="48">
  <form method="post" action="/rename">
    <label for="name">Assistant's name</label>
    <input id="name" name="name" type="text" autocomplete="off" required>
    <button type="submit">Rename</button>
  </form>
</main>
<footer><p>Self-hosted</p></footer>
</body>
</html>"""
STYLE = "body { color: #1a1a1a; background: #ffffff; font: 16px/1.5 sans-serif; margin: 2rem; }"
LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><circle cx="24" cy="24" r="20"/></svg>'
BAD_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken</title></head>
<body>
<main>
  <h1>Broken</h1>
  <p style="color: #bbbbbb; background: #ffffff">Hard to read</p>
  <img src="/logo.svg">
  <form><input id="unlabelled" type="text"></form>
</main>
</body>
</html>"""


@pytest.fixture
async def site() -> AsyncIterator[tuple[TestServer, list[dict[str, str]]]]:
    """The pages on a real loopback server, and the forms it received."""
    received: list[dict[str, str]] = []

    async def rename(request: web.Request) -> web.Response:
        received.append(dict(await request.post()))
        raise web.HTTPSeeOther("/")

    def static(text: str, content_type: str, headers: dict[str, str] | None = None):
        async def handler(_: web.Request) -> web.Response:
            return web.Response(text=text, content_type=content_type, headers=headers)
        return handler

    app = web.Application()
    app.router.add_get("/", static(GOOD_PAGE, "text/html", {"Content-Security-Policy": STRICT_CSP}))
    app.router.add_post("/rename", rename)
    app.router.add_get("/style.css", static(STYLE, "text/css"))
    app.router.add_get("/logo.svg", static(LOGO, "image/svg+xml"))
    app.router.add_get("/bad", static(BAD_PAGE, "text/html"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, received
    await server.close()


async def test_a_good_page_under_a_strict_csp_passes(site, page) -> None:
    server, _ = site
    await page.goto(str(server.make_url("/")))
    with pytest.raises(PlaywrightError, match="Content Security Policy"):  # the CSP is in force
        await page.add_script_tag(content="window.injected = true")
    results = await assert_accessible(page)
    assert "color-contrast" in {rule["id"] for rule in results["passes"]}  # axe did check the page


async def test_a_bad_page_fails_naming_each_rule_and_node(site, page) -> None:
    server, _ = site
    await page.goto(str(server.make_url("/bad")))
    with pytest.raises(AssertionError) as failure:
        await assert_accessible(page)
    message = str(failure.value)
    assert message.startswith(f"3 serious or critical accessibility violation(s) on {page.url}:"), message
    for rule in ("- label (critical)", "- image-alt (critical)", "- color-contrast (serious)"):
        assert rule in message, message
    assert "#unlabelled" in message and "img" in message


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


async def test_screenshots_at_both_widths(site, page, phone_page, tmp_path, monkeypatch) -> None:
    server, _ = site
    monkeypatch.setenv("CLAWFLEET_TEST_ARTIFACTS", str(tmp_path))
    for each in (page, phone_page):
        await each.goto(str(server.make_url("/")))
        await screenshot(each, "good")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["good-desktop.png", "good-phone.png"]
    desktop_width, desktop_height = png_size(tmp_path / "good-desktop.png")
    phone_width, phone_height = png_size(tmp_path / "good-phone.png")
    assert (desktop_width, phone_width) == (1280, 390)
    assert desktop_height >= 800 and phone_height >= 844  # the whole page, at least the viewport
    assert await phone_page.evaluate("[navigator.maxTouchPoints > 0, devicePixelRatio]") == [True, 3]


def test_screenshots_go_to_the_repository_by_default(monkeypatch, repo_root) -> None:
    monkeypatch.delenv("CLAWFLEET_TEST_ARTIFACTS", raising=False)
    assert screenshots_dir() == repo_root / "test-artifacts" / "screenshots"


async def test_the_form_works_with_the_keyboard_alone(site, page) -> None:
    server, received = site
    await page.goto(str(server.make_url("/")))
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "name"
    await page.keyboard.type("Ada")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Rename"
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert received == [{"name": "Ada"}]
