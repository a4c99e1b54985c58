"""Telegram DM pairing with a real OpenClaw gateway (process runtime): a stranger messages the
user's bot, OpenClaw answers with a pairing code, the owner approves it through the API, and the
gateway then answers that sender. Loopback fakes only (Bot API and model)."""

from __future__ import annotations

import asyncio
import re
import time

from clawfleet.settings import Settings
from tests.e2e.test_process import OPENAI_KEY, api, fakes, settings  # noqa: F401 (fixtures)
from tests.support.api_client import Api
from tests.support.waiting import eventually

STRANGER_ID = 555000111


async def test_an_approved_code_lets_its_sender_talk_to_the_assistant(api: Api, fakes, settings: Settings) -> None:
    telegram, model = fakes
    model.reply = lambda text: f"Hello from the fake model, you said: {text}"
    bot = telegram.add_bot(username="pairing_e2e_bot")
    status, created = await api.call("POST", "/api/instances", {
        "model_provider": "openai", "api_key": OPENAI_KEY, "telegram_bot_token": bot.token,
    })
    assert status == 202, created
    assert (await api.progress(created["id"]))[-1]["done"]
    assert created["telegram_user_id"] is None

    stranger = telegram.user(STRANGER_ID, first_name="Bo")
    await bot.user_sends(stranger, "hello, who are you?")
    offer = await bot.wait_for_message(STRANGER_ID, lambda m: "Pairing code" in m.get("text", ""), timeout=120)
    code = re.search(r"\b([A-HJ-NP-Z2-9]{8})\b", offer["text"]).group(1)
    assert not model.requests  # not let through before the approval

    url = f"/api/instances/{created['id']}/pairing"
    assert (await api.call("POST", url, {"code": "ZZZZ2222"}))[0] == 400
    began = time.monotonic()
    status, paired = await api.call("POST", url, {"code": code.lower()})  # case does not matter
    took = time.monotonic() - began
    assert status == 200, paired
    assert paired["telegram_user_id"] == STRANGER_ID
    assert took < 5, f"approving took {took:.1f} s"
    again, repeated = await api.call("POST", url, {"code": code})
    assert again == 200 and repeated["telegram_user_id"] == STRANGER_ID, repeated

    # OpenClaw notices the new config by itself, within about a second; a message that arrives
    # before that is still held back as a stranger's.
    log = settings.data_dir / "instances" / created["id"] / "logs" / "gateway.log"
    await eventually(lambda: "[reload] config change detected" in log.read_text(), timeout=30)
    await asyncio.sleep(2)
    await bot.user_sends(stranger, "ping after pairing")
    try:
        answer = await bot.wait_for_message(STRANGER_ID, lambda m: "fake model" in m.get("text", ""), timeout=240)
    except TimeoutError as exc:
        log = (settings.data_dir / "instances" / created["id"] / "logs" / "gateway.log").read_text()
        raise AssertionError(f"{exc}; gateway log: {log[-6000:]}") from None
    assert "you said: ping after pairing" in answer["text"]
    status, shown = await api.call("GET", f"/api/instances/{created['id']}")
    assert shown["telegram_user_id"] == STRANGER_ID
