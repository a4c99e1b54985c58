"""The web app in a real browser, end to end: a person signs up, runs the wizard to a running
assistant (process runtime, a real OpenClaw gateway), watches it, restarts it, changes its model,
makes and revokes an API token, signs in again through the bot's login link and deletes it. Every main page is screenshotted and
checked by axe at desktop and phone widths.

One platform and one gateway serve the whole module (a gateway takes 15-60 s to start): the tests
run in order and each goes on from where the one before left the assistant. The Bot API and the
model provider are loopback fakes: no traffic leaves the machine.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from clawfleet.settings import Settings
from db.models import User
from provisioner.providers import get_provider
from provisioner.runtimes import procfs
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeBot, FakeTelegram, FakeUser
from tests.support.api_client import migrated
from tests.support.bot_chat import Chat, buttons, running_platform
from tests.support.browser import Kind, assert_accessible, open_page, screenshot
from tests.support.platform_process import kill_all
from tests.support.waiting import eventually
from web.keys import SERVICES

OPENAI_KEY = "sk-proj-browserBROWSER0123456789ab"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
DEPLOY_TIMEOUT_MS = 180_000  # the gateway's start, on a busy machine
ACTION_TIMEOUT_MS = 120_000


@dataclass
class Fleet:
    """What the module's tests share: the platform, its fakes, and the person's browser."""
    settings: Settings
    url: str
    telegram: FakeTelegram
    provisioning_bot: FakeBot
    own_bot: FakeBot
    ada: FakeUser
    browser: Browser
    server: TestServer
    page: Page | None = None  # the signed-in desktop page
    instance_id: str = ""
    live_progress: list[int] = field(default_factory=list)  # the list's length as the page saw it grow
    looked_at: dict[tuple[str, Kind], str | None] = field(default_factory=dict)  # axe's failure, if any

    def at(self, path: str) -> str:
        return f"{self.url}{path}"

    async def look(self, page: Page, name: str) -> None:
        """A screenshot of the page as it is now, and axe's verdict on it, kept for the test of both."""
        await screenshot(page, name)
        try:
            await assert_accessible(page)
            self.looked_at[name, _kind(page)] = None
        except AssertionError as failure:
            self.looked_at[name, _kind(page)] = str(failure)

    async def phone_copy(self, name: str, path: str) -> None:
        """The same page on a phone, signed in as the desktop page is."""
        phone = await open_page(self.browser, "phone", storage_state=await self.page.context.storage_state())
        try:
            await phone.goto(self.at(path))
            await self.look(phone, name)
        finally:
            await phone.context.close()


async def _user(settings: Settings) -> User:
    engine = create_async_engine(settings.database_url)
    try:
        async with AsyncSession(engine) as session:
            return await session.scalar(select(User).where(User.email == EMAIL))
    finally:
        await engine.dispose()


def _gateway_pids(fleet: Fleet) -> list[int]:
    instances = fleet.settings.data_dir.resolve() / "instances"
    return procfs.processes_by_directory(instances).get(instances / fleet.instance_id, [])


def _kind(page: Page) -> Kind:
    return "phone" if page.viewport_size["width"] < 600 else "desktop"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
async def fleet(tmp_path_factory, openclaw_install, browser) -> AsyncIterator[Fleet]:
    root = tmp_path_factory.mktemp("web-browser")
    port = _free_port()  # the login links the bot hands out name the platform's own address
    async with FakeTelegram() as telegram, FakeModel() as model:
        provisioning_bot = telegram.add_bot(username="clawfleet_bot")
        settings = Settings(
            _env_file=None, data_dir=root / "data", database_url=f"sqlite+aiosqlite:///{root / 'cf.db'}",
            runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
            telegram_api_url=telegram.api_url, telegram_bot_token=provisioning_bot.token,
            provider_urls={"openai": f"{model.url}/v1", "anthropic": model.url},
            public_url=f"http://127.0.0.1:{port}", start_timeout_s=150,
        )
        await migrated(settings)
        try:
            async with running_platform(settings, port=port) as server:
                found = Fleet(settings, f"http://127.0.0.1:{port}", telegram, provisioning_bot,
                              telegram.add_bot(username="ada_assistant_bot"), telegram.user(first_name="Ada"),
                              browser, server)
                yield found
                if found.page is not None:
                    await found.page.context.close()
        finally:  # a failed run must not leave the gateway behind
            kill_all(settings.data_dir / "instances")


@pytest.fixture(scope="module")
async def deployed(fleet: Fleet) -> Fleet:
    """Sign-up and the whole wizard in the browser, up to the deploy's end."""
    for name, path in (("landing", "/"), ("signup", "/signup"), ("login", "/login")):
        for kind in ("desktop", "phone"):
            anonymous = await open_page(fleet.browser, kind)
            await anonymous.goto(fleet.at(path))
            await fleet.look(anonymous, name)
            await anonymous.context.close()

    page = fleet.page = await open_page(fleet.browser, "desktop")
    await page.goto(fleet.url)
    await page.get_by_role("link", name="Sign up").first.click()
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()

    await expect(page).to_have_url(re.compile(r"/onboard"))
    await fleet.look(page, "wizard-provider")
    await fleet.phone_copy("wizard-provider", "/onboard/provider")
    await page.get_by_label("OpenAI", exact=True).check()
    await page.get_by_role("button", name="Continue").click()

    await expect(page).to_have_url(re.compile(r"/onboard/key$"))
    await fleet.look(page, "wizard-key")
    await fleet.phone_copy("wizard-key", "/onboard/key")
    await page.get_by_label("OpenAI API key").fill(OPENAI_KEY)
    await page.get_by_role("button", name="Check the key and continue").click()

    await expect(page).to_have_url(re.compile(r"/onboard/telegram$"))
    await fleet.look(page, "wizard-telegram")
    await fleet.phone_copy("wizard-telegram", "/onboard/telegram")
    await page.get_by_label("Bot token").fill(fleet.own_bot.token)
    await page.get_by_label("I know my numeric Telegram id").check()
    await page.get_by_label("Your Telegram id").fill(str(fleet.ada.id))
    await page.get_by_role("button", name="Check and continue").click()

    await expect(page).to_have_url(re.compile(r"/onboard/review$"))
    await fleet.look(page, "wizard-review")
    await fleet.phone_copy("wizard-review", "/onboard/review")
    await page.get_by_role("button", name="Deploy").click()

    await expect(page).to_have_url(re.compile(r"/onboard/deploying/[0-9a-f-]+$"))
    fleet.instance_id = page.url.rsplit("/", 1)[1]
    steps = page.locator("#progress li")
    await expect(steps.first).to_be_visible()
    # Counted and watched in one step, before the screenshots (the deploy may end meanwhile): each
    # step the stream adds is noted in sessionStorage, which outlives the page's reload at the end.
    fleet.live_progress.append(await page.evaluate("""() => {
        const count = () => document.querySelectorAll('#progress li').length;
        const seen = count();
        sessionStorage.setItem('stepsSeen', String(seen));
        new MutationObserver(() => sessionStorage.setItem('stepsSeen', String(count())))
            .observe(document.querySelector('#progress'), {childList: true, subtree: true});
        window.watchedByTheTest = true;
        return seen;
    }"""))
    await fleet.look(page, "progress")
    await fleet.phone_copy("progress", f"/onboard/deploying/{fleet.instance_id}")
    grew = await page.wait_for_function(
        "seen => { const noted = Number(sessionStorage.getItem('stepsSeen') || 0);"
        " return noted > seen ? noted : (!window.watchedByTheTest && 'reloaded without growing'); }",
        arg=fleet.live_progress[0], timeout=DEPLOY_TIMEOUT_MS)
    fleet.live_progress.append(await grew.json_value())
    await expect(page.get_by_role("heading", name="Your assistant is running")).to_be_visible(
        timeout=DEPLOY_TIMEOUT_MS)
    return fleet


async def test_sign_up_and_the_wizard_end_on_a_running_assistant(deployed: Fleet) -> None:
    page = deployed.page
    first, later = deployed.live_progress
    assert isinstance(later, int) and later > first, (
        f"the progress list did not grow live: {deployed.live_progress}")
    await expect(page.locator("#progress li.failed")).to_have_count(0)
    outcome = page.locator("#deploy-outcome")
    await expect(outcome.get_by_role("link", name="@ada_assistant_bot")).to_have_attribute(
        "href", "https://t.me/ada_assistant_bot")
    await expect(outcome.get_by_role("link", name="Your assistant's page")).to_have_attribute(
        "href", f"/instances/{deployed.instance_id}")
    await expect(outcome.get_by_role("link", name="Dashboard")).to_be_visible()


async def test_the_instance_page_shows_it_running_and_its_logs_live(deployed: Fleet) -> None:
    page = deployed.page
    await page.locator("#deploy-outcome").get_by_role("link", name="Your assistant's page").click()
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.locator("#status-badge")).to_have_text("Running")
    await expect(page.locator("#facts [data-field=telegram_user_id]")).to_have_text(str(deployed.ada.id))
    log = page.get_by_label("Live log")
    await expect(log.locator("#log-empty")).to_have_count(0, timeout=30_000)  # the stream's first lines
    assert (await log.inner_text()).strip()
    assert OPENAI_KEY not in await log.inner_text()


async def test_a_restart_shows_its_progress_and_ends_running(deployed: Fleet) -> None:
    page = deployed.page
    await page.goto(deployed.at(f"/instances/{deployed.instance_id}"))
    # The restart count counts the supervisor's restarts after crashes; a restart asked for starts
    # a new gateway process, so the page shows a later "running since" instead.
    since = page.locator("#facts [data-field=running_since] time")
    before = await since.get_attribute("datetime")
    pids = _gateway_pids(deployed)
    await page.locator("#actions").get_by_role("button", name="Restart").click()
    await expect(page.get_by_text("Restarting it: follow the steps below.")).to_be_visible()
    await expect(page.locator("#progress li").first).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    await expect(page.locator("#progress")).to_have_attribute("data-final", "true", timeout=ACTION_TIMEOUT_MS)
    await expect(page.locator("#status-badge")).to_have_text("Running", timeout=ACTION_TIMEOUT_MS)
    await page.reload()
    assert await since.get_attribute("datetime") > before
    await expect(page.locator("#facts [data-field=restart_count]")).to_have_text("0")
    assert not any(procfs.is_alive(pid) for pid in pids) and _gateway_pids(deployed)


async def test_a_new_model_in_the_settings_applies_after_a_restart(deployed: Fleet) -> None:
    page = deployed.page
    await page.goto(deployed.at(f"/instances/{deployed.instance_id}"))
    current = await page.locator("#facts [data-field=model]").inner_text()
    new_model = next(model for model in get_provider("openai").models if model != current.strip())
    await page.get_by_role("link", name="Change settings").click()
    await expect(page).to_have_url(re.compile(r"/settings$"))
    await page.get_by_label("Model", exact=True).select_option(new_model)
    await page.get_by_role("button", name="Save").click()
    notice = page.locator("#notice")
    await expect(notice).to_contain_text("Saved. Restart to apply.")
    await notice.get_by_role("button", name="Restart").click()
    await expect(page.locator("#progress")).to_have_attribute("data-final", "true", timeout=ACTION_TIMEOUT_MS)
    await expect(page.locator("#status-badge")).to_have_text("Running", timeout=ACTION_TIMEOUT_MS)
    await page.reload()
    await expect(page.locator("#facts [data-field=model]")).to_have_text(new_model)
    config = (deployed.settings.data_dir / "instances" / deployed.instance_id / "openclaw.json").read_text()
    assert f"openai/{new_model}" in config


async def test_an_api_token_made_on_the_account_page_works_until_revoked(deployed: Fleet) -> None:
    page = deployed.page
    await page.goto(deployed.at("/account"))
    await page.get_by_label("Name", exact=True).fill("backup script")
    await page.get_by_role("button", name="Create token").click()
    shown = page.locator("#new-token .secret-once")
    token = (await shown.inner_text()).strip()
    assert token.startswith("cf_")
    async with aiohttp.ClientSession() as http:
        async def answers() -> int:
            async with http.get(deployed.at(f"/api/instances/{deployed.instance_id}"),
                                headers={"Authorization": f"Bearer {token}"}) as response:
                return response.status

        assert await answers() == 200
        await page.goto(deployed.at("/account"))  # coming back later
        await expect(page.locator("#new-token")).to_have_count(0)  # shown once, never again
        await page.get_by_role("button", name="Revoke backup script").click()
        await expect(page.locator("#token-list")).to_have_count(0)
        assert await answers() == 401


SIGNED_IN_PAGES = (("dashboard", "/dashboard"), ("instance", "/instances/{id}"), ("account", "/account"),
                   ("settings", "/instances/{id}/settings"), ("delete", "/instances/{id}/delete"),
                   ("billing", "/billing"))


async def test_every_main_page_is_accessible_at_both_widths(deployed: Fleet) -> None:
    for name, path in SIGNED_IN_PAGES:
        path = path.format(id=deployed.instance_id)
        await deployed.page.goto(deployed.at(path))
        await expect(deployed.page.get_by_role("heading", level=1)).to_be_visible()
        await deployed.look(deployed.page, name)
        await deployed.phone_copy(name, path)
    expected = {"landing", "signup", "login", "wizard-provider", "wizard-key", "wizard-telegram",
                "wizard-review", "progress", *(name for name, _ in SIGNED_IN_PAGES)}
    assert set(deployed.looked_at) == {(name, kind) for name in expected for kind in ("desktop", "phone")}
    failing = {f"{name} ({kind})": failure for (name, kind), failure in deployed.looked_at.items() if failure}
    assert not failing, "\n\n".join(f"{where}: {failure}" for where, failure in failing.items())


async def test_signed_out_then_in_again_through_the_bots_login_link(deployed: Fleet) -> None:
    page = deployed.page
    await page.goto(deployed.at("/dashboard"))
    await page.get_by_role("button", name="Sign out").click()
    await page.goto(deployed.at("/dashboard"))
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.context.close()
    deployed.page = None

    # Ada links her Telegram account (what the account page's code is for), then asks the bot.
    code = (await deployed.server.app[SERVICES].account_links.telegram_code(await _user(deployed.settings))).token
    chat = Chat(deployed.provisioning_bot, deployed.ada)
    await chat.send(f"/link {code}")
    await chat.reply(f"now signs in to {EMAIL}")
    await chat.send("/dashboard")
    reply = await chat.reply("login link")
    [link] = [target for target in buttons(reply) if target.startswith(deployed.at("/login/link"))]

    page = deployed.page = await open_page(deployed.browser, "desktop")
    await page.goto(link)
    await page.get_by_role("button", name="Sign in to ClawFleet").click()
    await expect(page).to_have_url(deployed.at("/dashboard"))
    await expect(page.get_by_role("link", name=re.compile("ada_assistant_bot|Your assistant")).first).to_be_visible()
    await expect(page.locator(f"a[href='/instances/{deployed.instance_id}']").first).to_be_visible()


async def test_deleting_it_with_its_data_ends_the_gateway(deployed: Fleet) -> None:
    page = deployed.page
    home = deployed.settings.data_dir.resolve() / "instances" / deployed.instance_id
    pids = _gateway_pids(deployed)
    assert pids and all(procfs.is_alive(pid) for pid in pids)
    await page.goto(deployed.at(f"/instances/{deployed.instance_id}/delete"))
    await page.get_by_label("Erase everything now").check()
    await page.get_by_role("button", name="Delete it").click()
    await expect(page).to_have_url(deployed.at("/dashboard?notice=deleted"))
    await expect(page.get_by_role("status")).to_contain_text("Your assistant is being deleted")
    await eventually(lambda: not any(procfs.is_alive(pid) for pid in pids) and not home.exists(), timeout=60,
                     what=lambda: f"gateway {pids} alive: {[procfs.is_alive(pid) for pid in pids]}")
    listed = page.locator(f"a[href='/instances/{deployed.instance_id}']")

    async def gone_from_the_dashboard() -> bool:
        await page.goto(deployed.at("/dashboard"))
        return await listed.count() == 0

    await eventually(gone_from_the_dashboard, timeout=30, what=lambda: "it is still on the dashboard")
    assert not procfs.processes_by_directory(deployed.settings.data_dir.resolve() / "instances")
