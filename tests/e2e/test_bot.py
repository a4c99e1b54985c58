"""The whole promise, end to end: a person onboards in chat with ClawFleet's bot, a real OpenClaw
gateway starts (process runtime), and their own bot answers them with the model's words.

Both bots live on the loopback fake Bot API (the gateway's channels.telegram.apiRoot points
there) and the model provider is the loopback fake model server: no traffic leaves the machine.
"""

from __future__ import annotations

import json

import pytest

from clawfleet.settings import Settings
from tests.fakes.model import FakeModel
from tests.support.api_client import migrated
from tests.support.bot_chat import Chat, onboard, running_platform
from tests.support.platform_process import kill_all

OPENAI_KEY = "sk-proj-promisePROMISE0123456789abcd"


@pytest.fixture
async def model():
    async with FakeModel() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path, openclaw_install, telegram, clawfleet_bot, model) -> Settings:
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{tmp_path / 'cf.db'}",
        runtime="process", runtime_dir=openclaw_install.root, openclaw_version=openclaw_install.version,
        telegram_api_url=telegram.api_url, telegram_bot_token=clawfleet_bot.token,
        provider_urls={"openai": f"{model.url}/v1"}, start_timeout_s=150,
    )


async def test_onboarding_in_chat_ends_with_the_users_own_bot_answering(settings: Settings, telegram,
                                                                          clawfleet_bot, model) -> None:
    model.reply = lambda text: f"Hello Ada, the model heard: {text}"
    own_bot = telegram.add_bot(username="ada_own_bot")
    ada = telegram.user(first_name="Ada")
    chat = Chat(clawfleet_bot, ada)
    await migrated(settings)
    try:
        async with running_platform(settings):
            ready = await onboard(chat, own_bot, OPENAI_KEY, timeout=180)
            assert "Write to your bot" in ready["text"], ready["text"]

            [home] = (settings.data_dir / "instances").iterdir()
            telegram_config = json.loads((home / "openclaw.json").read_text())["channels"]["telegram"]
            assert telegram_config["dmPolicy"] == "allowlist" and telegram_config["allowFrom"] == [ada.id]
            assert telegram_config["apiRoot"] == telegram.api_url

            await own_bot.user_sends(ada, "are you there?")
            try:
                answer = await own_bot.wait_for_message(ada.id, lambda m: "model heard" in m.get("text", ""),
                                                        timeout=240)
            except TimeoutError:
                log = (home / "logs" / "gateway.log").read_text(errors="replace")[-4000:]
                raise AssertionError(f"their bot did not answer; gateway log:\n{log}") from None
            assert "the model heard: are you there?" in answer["text"]
            assert any(request.api_key == OPENAI_KEY for request in model.requests)

            await chat.send("/delete")
            await chat.press(await chat.reply("Delete your assistant?"), f"delete:purge:{home.name}")
            await chat.reply(lambda m: "Your assistant is deleted" in m.get("text", ""), timeout=60)
        assert not home.exists()
    finally:
        kill_all(settings.data_dir / "instances")
