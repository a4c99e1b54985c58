"""Taking, reading and letting go of instance backups: the archive a runtime makes of an
instance's state, encrypted as it streams (cipher.py) to the local store and, when a bucket is
configured, uploaded there too; recorded as an InstanceBackup row; the newest the owner's
allowance keeps per instance kept. Reads come from the local copy, or from the bucket when it is
gone. A failed upload keeps the backup (it is whole on the local disk) and says why on its row;
`upload_pending` tries it again."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

import structlog
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, InstanceBackup, User
from db.sealing import KeyRing, open_from, seal_into
from metrics import Metrics
from provisioner.entitlements import Entitlements, OperatorDefaults
from provisioner.instance_backups.cipher import Digest, decrypt, encrypt, new_data_key
from provisioner.instance_backups.store import SUFFIX, LocalStore
from provisioner.runtimes.base import Runtime

log = structlog.get_logger(__name__)

# On the row from its insert until the upload succeeds: a process that dies mid-upload leaves
# the backup marked for the next round, not taken for one that never goes to the bucket.
UPLOAD_PENDING = "the upload has not finished"


class RemoteStore(Protocol):
    """An S3-compatible bucket (s3.py), or anything that keeps bytes under a key. Its errors
    carry a message for the operator."""

    def key(self, name: str) -> str: ...

    async def upload(self, key: str, path: str) -> None: ...

    def read(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...


class BackupMissing(Exception):
    """A backup whose encrypted file is in neither store."""


@dataclass(frozen=True)
class KeeperConfig:
    openclaw_version: str


def _object_name(backup: InstanceBackup) -> str:
    return f"instance-backups/{backup.instance_id}/{backup.id}{SUFFIX}"


class BackupKeeper:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, local: LocalStore,
                 config: KeeperConfig, remote: RemoteStore | None = None, *,
                 entitlements: Entitlements | None = None, metrics: Metrics | None = None) -> None:
        self.sessions = sessions
        self.keyring = keyring
        self.local = local
        self.remote = remote
        self.config = config
        self.entitlements = entitlements or OperatorDefaults(1)  # how many each owner keeps
        self.metrics = metrics or Metrics()

    async def take(self, runtime: Runtime, instance: Instance, kind: str, *, prune: bool = True) -> InstanceBackup:
        """Archive the instance's state now (its gateway may be running), encrypt and store it."""
        try:
            backup = await self._store(runtime, instance, kind)
        except Exception:
            self.metrics.instance_backups_failed.labels(kind).inc()
            raise
        self.metrics.instance_backups_taken.labels(kind).inc()
        log.info("instance backup taken", instance_id=str(instance.id), backup_id=str(backup.id), kind=kind,
                 size=backup.size)
        if self.remote is not None:
            await self.upload(backup)
        if prune:
            await self.prune(instance)
        return backup

    async def _store(self, runtime: Runtime, instance: Instance, kind: str) -> InstanceBackup:
        backup = InstanceBackup(instance_id=instance.id, user_id=instance.user_id, kind=kind,
                                openclaw_version=self.config.openclaw_version)
        key = new_data_key()
        seal_into(self.keyring, backup, "data_key_sealed", SecretStr(base64.b64encode(key).decode()))
        digest = Digest()
        async with aclosing(runtime.archive_state(instance.id, instance.runtime_state)) as archive:
            path = await self.local.save(instance.id, backup.id, encrypt(archive, key, backup.id, digest))
        backup.size, backup.sha256, backup.local_path = digest.size, digest.sha256, str(path)
        backup.s3_error = UPLOAD_PENDING if self.remote is not None else None
        try:
            async with self.sessions() as session:
                session.add(backup)
                await session.commit()
        except BaseException:
            await self.local.delete(str(path))
            raise
        return backup

    async def upload(self, backup: InstanceBackup) -> bool:
        """Put the backup's local file in the bucket and record where. A failure is logged,
        counted and said on the row, never raised: the backup is whole on the local disk."""
        assert self.remote is not None
        key = self.remote.key(_object_name(backup))
        try:
            await self.remote.upload(key, str(backup.local_path))
        except Exception as exc:
            log.warning("could not upload an instance backup to the bucket; tried again at the next round",
                        backup_id=str(backup.id), reason=str(exc))
            self.metrics.instance_backup_upload_failures.inc()
            await self._record_upload(backup, s3_error=str(exc)[:500] or type(exc).__name__)
            return False
        if not await self._record_upload(backup, s3_key=key, s3_error=None):
            await self._delete_remote(backup, key)  # let go of while it went up
        backup.s3_key, backup.s3_error = key, None
        return True

    async def _record_upload(self, backup: InstanceBackup, **values: str | None) -> bool:
        async with self.sessions() as session:
            result = await session.execute(update(InstanceBackup).where(InstanceBackup.id == backup.id).values(**values))
            await session.commit()
        return result.rowcount == 1

    async def upload_pending(self) -> int:
        """Upload the backups whose upload failed or never finished, oldest first; the first
        failure ends the pass (the bucket is likely away: the next round tries again). How many
        went up."""
        if self.remote is None:
            return 0
        async with self.sessions() as session:
            pending = list(await session.scalars(
                select(InstanceBackup).where(InstanceBackup.s3_key.is_(None), InstanceBackup.s3_error.is_not(None))
                .order_by(InstanceBackup.created_at)))
        uploaded = 0
        for backup in pending:
            if not self.local.holds(backup.local_path):
                continue
            if not await self.upload(backup):
                break
            uploaded += 1
        return uploaded

    async def read(self, backup: InstanceBackup) -> AsyncIterator[bytes]:
        """The decrypted archive, streamed."""
        key = base64.b64decode(open_from(self.keyring, backup, "data_key_sealed").get_secret_value())
        if self.local.holds(backup.local_path):
            sealed = self.local.read(backup.local_path)
        elif self.remote is not None and backup.s3_key:
            sealed = self._from_bucket(backup)
        else:
            raise BackupMissing("This backup's file is gone from the server.")
        async with aclosing(decrypt(sealed, key, backup.id)) as plain:
            async for chunk in plain:
                yield chunk

    async def _from_bucket(self, backup: InstanceBackup) -> AsyncIterator[bytes]:
        assert self.remote is not None and backup.s3_key
        try:
            async with aclosing(self.remote.read(backup.s3_key)) as sealed:
                async for chunk in sealed:
                    yield chunk
        except Exception as exc:  # the operator's to fix: the owner is told it is not to be had now
            log.warning("could not read an instance backup from the bucket", backup_id=str(backup.id),
                        reason=str(exc))
            raise BackupMissing("This backup's file is not on the server, and the backup storage could not "
                                "give it just now. Try again later, or tell the operator.") from None

    async def delete(self, backup: InstanceBackup) -> None:
        async with self.sessions() as session:
            row = await session.get(InstanceBackup, backup.id)
            if row is not None:
                await session.delete(row)
                await session.commit()
        await self._discard_files(backup)

    async def prune(self, instance: Instance) -> list[InstanceBackup]:
        """Let go of the instance's backups beyond the newest its owner keeps; those let go."""
        async with self.sessions() as session:
            owner = await session.get(User, instance.user_id)
            if owner is None:
                return []
            kept = (await self.entitlements.allowance(owner)).backups_kept
            extra = list(await session.scalars(
                select(InstanceBackup).where(InstanceBackup.instance_id == instance.id)
                .order_by(InstanceBackup.created_at.desc(), InstanceBackup.id).offset(max(kept, 1))))
        for backup in extra:
            await self.delete(backup)
        return extra

    async def _discard_files(self, backup: InstanceBackup) -> None:
        await self.local.delete(backup.local_path)
        if self.remote is None:
            return
        if backup.s3_key:
            await self._delete_remote(backup, backup.s3_key)
        elif backup.s3_error:  # an upload cut short may still have finished in the bucket
            await self._delete_remote(backup, self.remote.key(_object_name(backup)))

    async def _delete_remote(self, backup: InstanceBackup, key: str) -> None:
        assert self.remote is not None
        try:
            await self.remote.delete(key)
        except Exception as exc:  # the row is gone; a copy left in the bucket is only space
            log.warning("could not delete a backup from the bucket", backup_id=str(backup.id), reason=str(exc))

    async def discard_instance(self, instance_id: uuid.UUID) -> None:
        """The files of every backup of an instance that is deleted with its data."""
        async with self.sessions() as session:
            backups = list(await session.scalars(select(InstanceBackup)
                                                 .where(InstanceBackup.instance_id == instance_id)))
        for backup in backups:
            await self._discard_files(backup)
        await self.local.delete_instance(instance_id)
