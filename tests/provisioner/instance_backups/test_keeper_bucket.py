"""The keeper with a bucket: moto's real S3 server on loopback, the real database (SQLite, then
PostgreSQL), the real local store and cipher. Each backup is uploaded once written, read from the
bucket when its local file is gone, pruned from both; a bucket that refuses leaves the backup
local with the reason on its row, counted, and uploaded by the next pass once the bucket takes it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from db.models import InstanceBackup
from provisioner.entitlements import OperatorDefaults
from provisioner.instance_backups.keeper import UPLOAD_PENDING, BackupKeeper, BackupMissing, KeeperConfig
from provisioner.instance_backups.s3 import open_s3_store
from provisioner.instance_backups.store import LocalStore
from tests.support.builders import new_instance, saved_user
from tests.support.metrics_scrape import parsed, value
from tests.support.s3_bucket import S3Bucket, moto_process, moto_server, s3_bucket  # noqa: F401 (fixtures)


class ArchivingRuntime:
    """What the keeper asks of a runtime: an archive of the instance's state (here, random bytes
    of a size that spans several cipher frames)."""

    def __init__(self) -> None:
        self.made: list[bytes] = []

    async def archive_state(self, instance_id: uuid.UUID, state: dict) -> AsyncIterator[bytes]:
        archive = os.urandom(2 * 1024 * 1024 + 777)
        self.made.append(archive)
        for start in range(0, len(archive), 300_000):
            yield archive[start:start + 300_000]


@asynccontextmanager
async def _keeper(sessions, keyring, tmp_path: Path, bucket: S3Bucket | None, kept: int = 7, **s3_overrides):
    local = LocalStore(tmp_path / "instance-backups")
    entitlements = OperatorDefaults(1, backups_kept=kept)
    if bucket is None:
        yield BackupKeeper(sessions, keyring, local, KeeperConfig("2026.9.6"), entitlements=entitlements)
        return
    async with open_s3_store(bucket.config(**s3_overrides)) as store:
        yield BackupKeeper(sessions, keyring, local, KeeperConfig("2026.9.6"), store, entitlements=entitlements)


async def _instance(sessions, keyring):
    user = await saved_user(sessions)
    async with sessions() as session:
        instance = new_instance(keyring, user, runtime_state={"version": 1})
        session.add(instance)
        await session.commit()
    return instance


async def _row(sessions, backup_id: uuid.UUID) -> InstanceBackup | None:
    async with sessions() as session:
        return await session.get(InstanceBackup, backup_id)


async def _plain(keeper: BackupKeeper, backup: InstanceBackup) -> bytes:
    return b"".join([chunk async for chunk in keeper.read(backup)])


async def test_uploaded_then_read_from_the_bucket_once_the_local_file_is_gone(sessions, keyring, tmp_path,
                                                                               s3_bucket: S3Bucket) -> None:
    runtime, instance = ArchivingRuntime(), await _instance(sessions, keyring)
    async with _keeper(sessions, keyring, tmp_path, s3_bucket) as keeper:
        backup = await keeper.take(runtime, instance, "manual")
        row = await _row(sessions, backup.id)
        assert row.s3_key == f"instance-backups/{instance.id}/{backup.id}.cfib" and row.s3_error is None
        assert await s3_bucket.keys() == [row.s3_key]
        local = Path(row.local_path)
        assert await s3_bucket.object(row.s3_key) == local.read_bytes()  # the encrypted file, as kept here
        assert runtime.made[0] not in local.read_bytes()

        local.unlink()
        assert await _plain(keeper, row) == runtime.made[0]  # what a restore or a download reads

        await keeper.delete(row)
        assert await s3_bucket.keys() == [] and await _row(sessions, backup.id) is None
        with pytest.raises(BackupMissing):
            await _plain(keeper, row)


async def test_prune_deletes_from_the_bucket_too(sessions, keyring, tmp_path, s3_bucket: S3Bucket) -> None:
    runtime, instance = ArchivingRuntime(), await _instance(sessions, keyring)
    async with _keeper(sessions, keyring, tmp_path, s3_bucket, kept=2) as keeper:
        taken = [await keeper.take(runtime, instance, "scheduled") for _ in range(3)]
    kept = [f"instance-backups/{instance.id}/{backup.id}.cfib" for backup in taken[1:]]
    assert await s3_bucket.keys() == sorted(kept)
    assert await _row(sessions, taken[0].id) is None and not Path(taken[0].local_path).exists()
    assert all(Path(backup.local_path).exists() for backup in taken[1:])


async def test_a_refused_upload_keeps_the_backup_says_why_and_goes_up_next_time(sessions, keyring, tmp_path,
                                                                                 s3_bucket: S3Bucket) -> None:
    runtime, instance = ArchivingRuntime(), await _instance(sessions, keyring)
    async with _keeper(sessions, keyring, tmp_path, s3_bucket, secret_access_key=SecretStr("wrong")) as refused:
        backup = await refused.take(runtime, instance, "scheduled")
        assert await refused.upload_pending() == 0  # still refused: tried, nothing went up
        families = parsed(generate_latest(refused.metrics.registry).decode())
    row = await _row(sessions, backup.id)
    assert row is not None and Path(row.local_path).is_file() and row.s3_key is None
    assert "CLAWFLEET_INSTANCE_BACKUP_S3_SECRET_ACCESS_KEY" in row.s3_error and "wrong" not in row.s3_error
    assert value(families, "clawfleet_instance_backups_taken_total", kind="scheduled") == 1
    assert value(families, "clawfleet_instance_backup_upload_failures_total") == 2
    assert await s3_bucket.keys() == []

    async with _keeper(sessions, keyring, tmp_path, s3_bucket) as keeper:
        assert await keeper.upload_pending() == 1
        assert await keeper.upload_pending() == 0  # nothing left to do
        row = await _row(sessions, backup.id)
        assert row.s3_key and row.s3_error is None and await s3_bucket.keys() == [row.s3_key]
        Path(row.local_path).unlink()
        assert await _plain(keeper, row) == runtime.made[0]


async def test_an_upload_cut_short_is_retried_and_a_delete_clears_it_from_the_bucket(
        sessions, keyring, tmp_path, s3_bucket: S3Bucket) -> None:
    """A backup whose process died mid-upload still says so; its object, if the upload finished
    in the bucket all the same, goes with it."""
    runtime, instance = ArchivingRuntime(), await _instance(sessions, keyring)
    async with _keeper(sessions, keyring, tmp_path, None) as local_only:
        backup = await local_only.take(runtime, instance, "manual")
    async with sessions() as session:
        row = await session.get(InstanceBackup, backup.id)
        row.s3_error = UPLOAD_PENDING
        await session.commit()
    async with _keeper(sessions, keyring, tmp_path, s3_bucket) as keeper:
        key = f"instance-backups/{instance.id}/{backup.id}.cfib"
        await keeper.remote.upload(key, backup.local_path)  # as the dead process's upload did
        await keeper.delete(await _row(sessions, backup.id))
    assert await s3_bucket.keys() == []


async def test_without_the_local_file_and_with_the_bucket_away_the_backup_is_missing(
        sessions, keyring, tmp_path, s3_bucket: S3Bucket) -> None:
    runtime, instance = ArchivingRuntime(), await _instance(sessions, keyring)
    async with _keeper(sessions, keyring, tmp_path, s3_bucket) as keeper:
        backup = await keeper.take(runtime, instance, "manual")
    row = await _row(sessions, backup.id)
    Path(row.local_path).unlink()
    async with _keeper(sessions, keyring, tmp_path, s3_bucket, access_key_id=SecretStr("AKIANOBODY")) as keeper:
        with pytest.raises(BackupMissing, match="backup storage could not give it"):
            await _plain(keeper, row)
