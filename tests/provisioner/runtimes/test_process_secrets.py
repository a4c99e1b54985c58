"""The process runtime keeps the gateway token and the bot token out of the gateway's environment,
where every process of the platform's user reads them in /proc/<pid>/environ: they are private
files in the instance's secrets/ directory, written before each start and removed with the
instance. A real gateway reads them: it starts (its token file is a SecretRef that fails closed)
and its bot answers through the fake Bot API and the fake model."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from pydantic import SecretStr

from provisioner.openclaw.install import OpenClawInstall
from provisioner.runtimes import procfs
from provisioner.runtimes.base import GatewayState, LaunchRequest
from provisioner.runtimes.process import ProcessRuntime
from tests.fakes.model import FakeModel
from tests.fakes.telegram import FakeTelegram
from tests.support.platform_process import free_port
from tests.support.waiting import eventually, gateway_ready

OPENAI_KEY = "sk-proj-processSECRETS0123456789ab"
GATEWAY_TOKEN = "gateway-token-processSECRETS-0123456789"
OWNER = 777000222


def _request(instance_id: uuid.UUID, bot_token: str | None, **fields) -> LaunchRequest:
    return LaunchRequest(instance_id, free_port(), "openai", "gpt-5.5", SecretStr(OPENAI_KEY), SecretStr(GATEWAY_TOKEN),
                         bot_token=SecretStr(bot_token) if bot_token else None, telegram_allow_from=OWNER, **fields)


def _environment(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # a helper that exited meanwhile
        return b""


async def test_the_gateways_environment_holds_no_token_and_its_bot_still_answers(tmp_path, openclaw_install) -> None:
    runtime = ProcessRuntime(tmp_path / "data", openclaw_install)
    instance_id = uuid.uuid4()
    async with FakeTelegram() as telegram, FakeModel() as model:
        model.reply = lambda text: f"fake model heard: {text}"
        bot = telegram.add_bot(username="process_secrets_bot")
        request = _request(instance_id, bot.token, telegram_api_root=telegram.api_url,
                           model_url=f"{model.url}/v1")
        started = await runtime.start(request, {})
        log = runtime.gateway_log(instance_id)
        try:
            await eventually(lambda: gateway_ready(started.endpoint_url), timeout=150,
                             what=lambda: log.read_text()[-3000:])
            pid = started.state["pid"]
            environments = [_environment(member) for member in procfs.session_members(pid)]
            assert environments and all(environments[:1])
            for secret in (GATEWAY_TOKEN, bot.token):
                assert not any(secret.encode() in environment for environment in environments), secret

            secrets = runtime.instance_dir(instance_id) / "secrets"
            assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
            for name, secret in (("gateway-token", GATEWAY_TOKEN), ("telegram-bot-token", bot.token)):
                info = (secrets / name).lstat()
                assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_nlink == 1
                assert info.st_uid == os.getuid() and (secrets / name).read_text() == secret

            await bot.user_sends(telegram.user(OWNER, first_name="Ada"), "are you there")
            answer = await bot.wait_for_message(OWNER, lambda m: "fake model" in m.get("text", ""), timeout=240)
            assert "heard: are you there" in answer["text"]
        finally:
            await runtime.remove(instance_id, started.state, keep_data=False)


def _exited(runtime: ProcessRuntime, instance_id: uuid.UUID, state: dict):
    async def check() -> bool:
        return (await runtime.status(instance_id, state)).state is GatewayState.DOWN
    return check


def _dead_end_install(root: Path) -> OpenClawInstall:
    """An install whose gateway exits at once: a start still writes everything before it spawns."""
    return OpenClawInstall(root=root, version="0.0.0-test", node=Path("/bin/false"), package_dir=root / "openclaw")


async def test_each_start_writes_todays_tokens_and_removal_takes_them(tmp_path, permissive_umask) -> None:
    runtime = ProcessRuntime(tmp_path / "data", _dead_end_install(tmp_path / "runtime"))
    instance_id = uuid.uuid4()
    secrets = runtime.instance_dir(instance_id) / "secrets"

    async def start(bot_token: str | None, state: dict) -> dict:
        state = (await runtime.start(_request(instance_id, bot_token), state)).state
        await eventually(_exited(runtime, instance_id, state), timeout=10)
        return state

    state = await start("555:first", {})
    assert (secrets / "telegram-bot-token").read_text() == "555:first"
    state = await start("555:second", state)  # the owner sent a new token: the restart uses it
    assert (secrets / "telegram-bot-token").read_text() == "555:second"
    state = await start(None, state)  # and then removed it
    assert sorted(os.listdir(secrets)) == ["gateway-token", "model-credential"]
    assert stat.S_IMODE((secrets / "gateway-token").stat().st_mode) == 0o600

    await runtime.remove(instance_id, state, keep_data=True)
    [kept] = list((tmp_path / "data" / "deleted").iterdir())
    assert (kept / "state").is_dir() and not (kept / "secrets").exists()  # kept data, no tokens
