"""Two `clawfleet serve` replicas against one PostgreSQL, as real processes, sharing the host
(process runtime, one data directory): each singleton runs in one of them, either serves every
user and every instance, an action asked of both at once runs once, and when the replica that
polls Telegram is SIGKILLed the other takes over within a lease period.

Gateways point at the loopback fake model; the provisioning bot polls the fake Bot API: no
traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from db.engine import create_engine, create_session_factory
from db.migrate import upgrade
from db.models import Instance, Lease
from db.sealing import generate_key
from db.types import utcnow
from tests.support.instance_hosts import HostBrowser
from tests.support.platform_process import PlatformProcess, RemoteApi, free_port, gateways, kill_all
from tests.support.services import empty_database
from tests.support.waiting import eventually

OPENAI_KEY = "sk-proj-replicasREPLICAS0123456789ab"
LEASE_TTL_S = 3
POLLING = "polling Telegram: this process holds the polling lease"


@pytest.fixture
async def database(tmp_path):
    async with empty_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        await upgrade(engine)  # `clawfleet migrate`, once, before either replica starts
        try:
            yield url, engine
        finally:
            await engine.dispose()


@pytest.fixture
async def replicas(tmp_path, database, model, telegram, openclaw_install):
    """Two replicas over one database, data directory and key ring; each serves on its own port
    and calls itself its public URL (both behind one edge in production)."""
    data_dir, bot = tmp_path / "data", telegram.add_bot(username="clawfleet_bot")
    env = {
        "CLAWFLEET_DATA_DIR": str(data_dir), "CLAWFLEET_DATABASE_URL": database[0],
        "CLAWFLEET_SECRET_KEYS": generate_key(), "CLAWFLEET_RUNTIME": "process",
        "CLAWFLEET_RUNTIME_DIR": str(openclaw_install.root), "CLAWFLEET_OPENCLAW_VERSION": openclaw_install.version,
        "CLAWFLEET_PROVIDER_URLS": f"openai={model.url}/v1", "CLAWFLEET_START_TIMEOUT_S": "150",
        "CLAWFLEET_RECONCILE_INTERVAL_S": "0.5", "CLAWFLEET_LEASE_TTL_S": str(LEASE_TTL_S),
        "CLAWFLEET_BACKOFF_BASE_S": "1", "CLAWFLEET_BACKOFF_MAX_S": "2", "CLAWFLEET_MODEL_GATEWAY_PORT": str(free_port()),
        "CLAWFLEET_TELEGRAM_BOT_TOKEN": bot.token, "CLAWFLEET_TELEGRAM_API_URL": telegram.api_url,
        "CLAWFLEET_TELEGRAM_PACING": "false", "CLAWFLEET_WARM_UP": "false",
    }
    pair = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        replica = PlatformProcess(env, workdir)
        replica.env["CLAWFLEET_PUBLIC_URL"] = f"http://localhost:{replica.port}"
        pair.append(replica)
    try:
        await asyncio.gather(*(replica.start() for replica in pair))
        yield pair, bot
    finally:
        for replica in pair:
            await replica.close()
        kill_all(data_dir / "instances")


async def _live_leases(engine) -> dict[str, str]:
    async with create_session_factory(engine)() as session:
        rows = await session.execute(select(Lease.name, Lease.holder).where(Lease.holder.is_not(None),
                                                                            Lease.expires_at > utcnow()))
        return dict(rows.all())


async def _instance_row(engine, instance_id: str) -> Instance:
    async with create_session_factory(engine)() as session:
        return await session.scalar(select(Instance).where(Instance.id == uuid.UUID(instance_id)))


def _spawned(*replicas: PlatformProcess) -> int:
    return sum(replica.log_text().count("gateway spawned") for replica in replicas)


async def _control_ui_through(replica: PlatformProcess, email: str, url_of) -> None:
    """The owner signs in on this replica's dashboard and lands in the Control UI it proxies."""
    browser = HostBrowser(f"http://localhost:{replica.port}")
    try:
        await browser.sign_in(email)
        site = url_of(replica)
        status, landed, body, _ = await browser.get(f"{site}/")
        assert status == 200 and landed == f"{site}/" and "<title>OpenClaw Control</title>" in body, (status, landed)
    finally:
        await browser.close()


async def test_two_replicas_share_the_work_and_one_takes_over_when_the_other_is_killed(replicas, database,
                                                                                      telegram) -> None:
    (a, b), bot = replicas
    engine = database[1]
    async with aiohttp.ClientSession() as http:
        # singletons: each runs in exactly one replica (the leases table has one live holder each)
        await eventually(lambda: _leases_with(engine, {"telegram-polling", "reconciler"}), 15)
        pollers = [replica for replica in (a, b) if POLLING in replica.log_text()]
        assert len(pollers) == 1, [replica.log_text()[-2000:] for replica in (a, b)]
        poller, survivor = pollers[0], (b if pollers[0] is a else a)

        # one account, signed up on one replica, works on the other (sessions are rows)
        on_a = RemoteApi(a.base_url, http)
        await on_a.sign_up("ada@example.com")
        on_b = RemoteApi(b.base_url, http)
        on_b.token = on_a.token
        status, created = await on_a.call("POST", "/api/instances", {"model_provider": "openai",
                                                                       "api_key": OPENAI_KEY})
        assert status == 202, created
        events = await on_b.progress(created["id"], timeout=200)  # the deploy runs in a; b streams it
        assert events[-1]["done"], events
        assert _spawned(a, b) == 1

        # an action asked of both at once runs once: one is refused while the other's runs
        answers = await asyncio.gather(on_a.call("POST", f"/api/instances/{created['id']}/restart"),
                                       on_b.call("POST", f"/api/instances/{created['id']}/restart"))
        assert sorted(status for status, _ in answers) == [202, 409], answers
        await on_a.wait_status(created["id"], "running", timeout=200)
        await eventually(lambda: _no_action(on_a, created["id"]), 200)
        assert _spawned(a, b) == 2  # the first gateway, and one restart

        # either replica proxies the owner to the instance
        subdomain = created["subdomain"]
        for replica in (a, b):
            await _control_ui_through(replica, "ada@example.com",
                                      lambda r: f"http://{subdomain}.localhost:{r.port}")

        # the provisioning bot answers once, from the poller
        user = telegram.user(first_name="Ada")
        await bot.user_sends(user, "/start")
        await bot.wait_for_message(user.id, timeout=15)
        await asyncio.sleep(2)
        assert len(bot.sent_messages(user.id)) == 1, bot.sent_messages(user.id)

        # the poller dies without a word; the survivor polls within a lease period or so
        gateway_pid = (await _instance_row(engine, created["id"])).runtime_state["pid"]
        poller.process.send_signal(signal.SIGKILL)
        await poller.wait_exit(10)
        killed_at = time.monotonic()
        await bot.user_sends(user, "/help")
        await bot.wait_for_message(user.id, timeout=LEASE_TTL_S * 4 + 10)
        took_over_s = time.monotonic() - killed_at
        print(f"the survivor answered {took_over_s:.1f} s after the poller was killed")
        assert POLLING in survivor.log_text()
        assert took_over_s < LEASE_TTL_S * 4 + 6, took_over_s  # a TTL to lapse, a third of one to retry, a poll
        replies = len(bot.sent_messages(user.id))
        await asyncio.sleep(2)
        assert len(bot.sent_messages(user.id)) == replies == 2  # /start's and /help's, nothing twice

        # the gateway outlived the killed replica, and the survivor's reconciler keeps it: killed,
        # it is restarted by the survivor
        survivor_api = on_a if survivor is a else on_b
        status, health = await survivor_api.call("GET", f"/api/instances/{created['id']}/health")
        assert status == 200 and health["ready"], health
        os.kill(gateway_pid, signal.SIGKILL)
        await eventually(lambda: _restarted_by_reconciler(engine, created["id"], gateway_pid), 120,
                         lambda: survivor.log_text()[-3000:])
        await _control_ui_through(survivor, "ada@example.com", lambda r: f"http://{subdomain}.localhost:{r.port}")
        assert list(gateways(Path(survivor.env["CLAWFLEET_DATA_DIR"]) / "instances")) == [uuid.UUID(created["id"])]

        # the model gateway's one port, shared by both replicas, still answers its instances
        port = survivor.env["CLAWFLEET_MODEL_GATEWAY_PORT"]
        async with http.post(f"http://127.0.0.1:{port}/i/{created['id']}/v1/chat/completions", json={}) as refused:
            assert refused.status == 401  # no instance's credential: refused, by the survivor


async def _leases_with(engine, names: set[str]) -> dict[str, str] | None:
    leases = await _live_leases(engine)
    return leases if names <= set(leases) else None


async def _no_action(api: RemoteApi, instance_id: str) -> bool:
    status, body = await api.call("GET", f"/api/instances/{instance_id}")
    return status == 200 and body["action"] is None and body["status"] == "running"


async def _restarted_by_reconciler(engine, instance_id: str, old_pid: int) -> bool:
    row = await _instance_row(engine, instance_id)
    return row.status == "running" and row.runtime_state.get("pid") not in (None, old_pid) and row.restart_count >= 1
