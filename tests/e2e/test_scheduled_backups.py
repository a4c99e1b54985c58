"""A scheduled backup of a real OpenClaw gateway (process runtime, loopback fakes only) with the
bucket on moto's real S3 server: the round archives the live gateway, the encrypted file goes to
the bucket, and once the local file is gone the download comes from the bucket and is an archive
OpenClaw's own verify accepts, holding the gateway's workspace."""

from __future__ import annotations

import asyncio
import hashlib
import tarfile
import uuid

import pytest

from clawfleet.settings import Settings
from provisioner.instance_backups.schedule import Verdict
from tests.support.api_client import Api
from tests.support.process_gateways import api, fakes, process_settings  # noqa: F401 (fixtures)
from tests.support.s3_bucket import S3Bucket, moto_process, moto_server, s3_bucket  # noqa: F401 (fixtures)

OPENAI_KEY = "sk-proj-scheduleSCHEDULEsched0123456789"
MARKER = "written before the scheduled backup, 41c9e2"


@pytest.fixture
def settings(tmp_path, openclaw_install, fakes, s3_bucket: S3Bucket) -> Settings:
    return process_settings(tmp_path, openclaw_install, *fakes, instance_backup_every_hours=24,
                            **s3_bucket.settings())


async def test_a_scheduled_backup_is_a_real_archive_kept_in_the_bucket(api: Api, settings: Settings,
                                                                       s3_bucket: S3Bucket, openclaw_install,
                                                                       tmp_path) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    assert (await api.progress(created["id"], timeout=300))[-1]["done"]
    instance_id = uuid.UUID(created["id"])
    workspace = settings.data_dir / "instances" / created["id"] / "state" / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "notes.md").write_text(MARKER)

    assert await api.platform.backup_schedule.run_once() == {instance_id: Verdict.TAKEN}
    status, listed = await api.call("GET", f"/api/instances/{instance_id}/backups")
    (backup,) = listed["backups"]
    assert backup["kind"] == "scheduled" and backup["stored"] == ["local", "s3"]
    local = settings.data_dir / "instance-backups" / str(instance_id) / f"{backup['id']}.cfib"
    key = f"instance-backups/{instance_id}/{backup['id']}.cfib"
    assert await s3_bucket.keys() == [key] and await s3_bucket.object(key) == local.read_bytes()

    local.unlink()
    async with api.http.get(api.url(backup["download_url"]),
                            headers={"Authorization": f"Bearer {api.token}"}) as response:
        assert response.status == 200
        archive = await response.read()
    assert len(archive) == backup["size"] and hashlib.sha256(archive).hexdigest() == backup["sha256"]
    downloaded = tmp_path / "from-the-bucket.tar.gz"
    downloaded.write_bytes(archive)
    process = await asyncio.create_subprocess_exec(
        *openclaw_install.argv("backup", "verify", str(downloaded)), env=openclaw_install.env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")
    with tarfile.open(downloaded) as tar:
        notes = [member for member in tar.getmembers() if member.name.endswith("workspace/notes.md")]
        assert notes and tar.extractfile(notes[0]).read().decode() == MARKER
