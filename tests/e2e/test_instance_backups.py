"""Instance backups end to end with the process runtime and real OpenClaw gateways (loopback fakes
only): a file in the workspace and a row in the gateway's state database survive backup, change
and restore, into the same instance and into a new one; what is stored is encrypted; a download
is an archive OpenClaw itself verifies; someone else's instance or backup is 404."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clawfleet.settings import Settings
from db.models import Instance
from provisioner.openclaw.pairing import read_request
from tests.support.api_client import Api
from tests.support.process_gateways import api, fakes, process_settings  # noqa: F401 (fixtures)

OPENAI_KEY = "sk-proj-backupBACKUPbackup0123456789"
MARKER = "a note only the first state has, 7f3a9c"
CODE, SENDER = "HX7K2MQP", "555000111"


@pytest.fixture
def settings(tmp_path, openclaw_install, fakes) -> Settings:
    return process_settings(tmp_path, openclaw_install, *fakes, max_instances_per_user=2, instance_backups_kept=3)


def _state(settings: Settings, instance_id: str) -> Path:
    return settings.data_dir / "instances" / instance_id / "state"


def _add_pairing_request(state: Path) -> None:
    """A row in the live gateway's state database, as OpenClaw's pairing store writes it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with sqlite3.connect(state / "state" / "openclaw.sqlite", timeout=10) as db:
        db.execute("INSERT INTO channel_pairing_requests VALUES ('telegram', 'default', ?, ?, ?, ?, '{}')",
                   (SENDER, CODE, now, now))


def _drop_pairing_requests(state: Path) -> None:
    with sqlite3.connect(state / "state" / "openclaw.sqlite", timeout=10) as db:
        db.execute("DELETE FROM channel_pairing_requests")


async def _done(api: Api, instance_id: str, timeout: float = 300) -> list[dict]:
    events = await api.progress(instance_id, timeout=timeout)
    assert events[-1]["done"], events
    return events


async def _download(api: Api, path: str) -> tuple[int, dict, bytes]:
    async with api.http.get(api.url(path), headers={"Authorization": f"Bearer {api.token}"}) as response:
        return response.status, dict(response.headers), await response.read()


async def _openclaw(openclaw_install, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(*openclaw_install.argv(*args), env=openclaw_install.env(),
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return process.returncode, output.decode(errors="replace")


async def test_backup_change_restore_download(api: Api, settings: Settings, openclaw_install, tmp_path) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    await _done(api, created["id"])
    instance_id = created["id"]
    state = _state(settings, instance_id)
    (state / "workspace").mkdir(exist_ok=True)
    (state / "workspace" / "notes.md").write_text(MARKER)
    _add_pairing_request(state)

    status, _ = await api.call("POST", f"/api/instances/{instance_id}/backups")
    assert status == 202
    events = await _done(api, instance_id)
    assert [e["step"] for e in events][-2:] == ["archiving", "backed_up"], events
    status, listed = await api.call("GET", f"/api/instances/{instance_id}/backups")
    assert status == 200 and len(listed["backups"]) == 1
    backup = listed["backups"][0]
    assert backup["kind"] == "manual" and backup["stored"] == ["local"] and backup["openclaw_version"]
    assert (await api.call("GET", f"/api/instances/{instance_id}"))[1]["status"] == "running"  # it kept running

    # Stored encrypted, private: neither the note nor a gzip stream is in the file.
    stored = settings.data_dir / "instance-backups" / instance_id / f"{backup['id']}.cfib"
    sealed = stored.read_bytes()
    assert MARKER.encode() not in sealed and b"\x1f\x8b" not in sealed[:16] and sealed.startswith(b"CFIB1")
    assert stored.stat().st_mode & 0o777 == 0o600 and stored.parent.stat().st_mode & 0o777 == 0o700

    # The download is the archive itself, which OpenClaw's own verify accepts.
    status, headers, archive = await _download(api, backup["download_url"])
    assert status == 200 and headers["Content-Type"] == "application/gzip"
    assert headers["Content-Disposition"].startswith('attachment; filename="openclaw-backup-')
    assert len(archive) == backup["size"] and hashlib.sha256(archive).hexdigest() == backup["sha256"]
    downloaded = tmp_path / "downloaded.tar.gz"
    downloaded.write_bytes(archive)
    code, output = await _openclaw(openclaw_install, "backup", "verify", str(downloaded))
    assert code == 0, output

    # Change both, then restore: both are back, the gateway runs, the state replaced is a backup.
    (state / "workspace" / "notes.md").write_text("changed after the backup")
    _drop_pairing_requests(state)
    assert read_request(state / "state" / "openclaw.sqlite", CODE) is None
    status, body = await api.call("POST", f"/api/instances/{instance_id}/backups/{backup['id']}/restore",
                                  {"target": "same"})
    assert status == 202 and body["id"] == instance_id
    events = await _done(api, instance_id)
    steps = [e["step"] for e in events]
    assert {"safety", "stopping", "restoring", "doctor", "waiting"} <= set(steps) and steps[-1] == "restored", events
    assert (state / "workspace" / "notes.md").read_text() == MARKER
    assert read_request(state / "state" / "openclaw.sqlite", CODE)[0] == SENDER
    assert not (state.parent / "state.previous").exists()  # kept only until the start succeeded
    assert (await api.call("GET", f"/api/instances/{instance_id}"))[1]["status"] == "running"
    kinds = [b["kind"] for b in (await api.call("GET", f"/api/instances/{instance_id}/backups"))[1]["backups"]]
    assert kinds == ["pre-restore", "manual"]

    # Into a new instance of the same owner: its own credentials, the backup's state.
    status, copy = await api.call("POST", f"/api/instances/{instance_id}/backups/{backup['id']}/restore",
                                  {"target": "new"})
    assert status == 202 and copy["id"] != instance_id, copy
    await _done(api, copy["id"])
    assert (_state(settings, copy["id"]) / "workspace" / "notes.md").read_text() == MARKER
    async with api.platform.sessions() as session:
        first = await session.get(Instance, uuid.UUID(instance_id))
        second = await session.get(Instance, uuid.UUID(copy["id"]))
    assert second.status == "running" and second.telegram_bot_token_sealed is None
    assert second.gateway_secret_sealed != first.gateway_secret_sealed and second.subdomain != first.subdomain

    status, _ = await api.call("DELETE", f"/api/instances/{instance_id}/backups/{backup['id']}")
    assert status == 204 and not stored.exists()
    assert (await _download(api, backup["download_url"]))[0] == 404


async def test_someone_elses_instance_or_backup_is_not_found(api: Api, settings: Settings) -> None:
    """Ownership and validation, answered before any gateway is touched (an instance at rest)."""
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    await _done(api, created["id"])
    base = f"/api/instances/{created['id']}/backups"
    assert (await api.call("POST", base))[0] == 202
    await _done(api, created["id"])
    backup = (await api.call("GET", base))[1]["backups"][0]
    assert (await api.call("POST", f"/api/instances/{created['id']}/stop"))[0] == 202
    await _done(api, created["id"])

    status, body = await api.call("POST", f"{base}/{backup['id']}/restore", {"target": "elsewhere"})
    assert status == 400 and body["error"]["field"] == "target", body
    status, body = await api.call("POST", f"{base}/{backup['id']}/restore", {"target": "same", "extra": 1})
    assert status == 400, body
    assert (await api.call("GET", f"{base}/not-a-uuid/download"))[0] == 404
    assert (await api.call("DELETE", f"{base}/{uuid.uuid4()}"))[0] == 404

    owner_token = api.token
    await api.sign_up()  # someone else
    for method, path, payload in (("GET", base, None), ("POST", base, None),
                                  ("GET", f"{base}/{backup['id']}/download", None),
                                  ("POST", f"{base}/{backup['id']}/restore", {"target": "new"}),
                                  ("DELETE", f"{base}/{backup['id']}", None)):
        status, body = await api.call(method, path, payload)
        assert status == 404, (method, path, body)
    # their own instance does not reach the owner's backup through its id either
    api.token = owner_token
    assert (await _download(api, f"{base}/{backup['id']}/download"))[0] == 200
