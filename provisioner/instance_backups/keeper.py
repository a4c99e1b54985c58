"""Taking, reading and letting go of instance backups: the archive a runtime makes of an
instance's state, encrypted as it streams (cipher.py) to the local store and, when a bucket is
configured, uploaded there too; recorded as an InstanceBackup row; the newest `kept` per
instance kept. Reads come from the local copy, or from the bucket when it is gone."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

import structlog
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Instance, InstanceBackup
from db.sealing import KeyRing, open_from, seal_into
from provisioner.instance_backups.cipher import Digest, decrypt, encrypt, new_data_key
from provisioner.instance_backups.store import LocalStore
from provisioner.runtimes.base import Runtime

log = structlog.get_logger(__name__)


class RemoteStore(Protocol):
    """An S3-compatible bucket (s3.py), or anything that keeps bytes under a key."""

    async def upload(self, key: str, path: str) -> None: ...

    def read(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...


class BackupMissing(Exception):
    """A backup whose encrypted file is in neither store."""


@dataclass(frozen=True)
class KeeperConfig:
    openclaw_version: str
    kept: int = 7  # the newest this many per instance are kept when the owner's plan says nothing


KeptFor = Callable[[uuid.UUID], Awaitable[int]]  # how many backups an owner keeps per instance


class BackupKeeper:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, local: LocalStore,
                 config: KeeperConfig, remote: RemoteStore | None = None, kept_for: KeptFor | None = None) -> None:
        self.sessions = sessions
        self.keyring = keyring
        self.local = local
        self.remote = remote
        self.config = config
        self.kept_for = kept_for

    async def take(self, runtime: Runtime, instance: Instance, kind: str, *, prune: bool = True) -> InstanceBackup:
        """Archive the instance's state now (its gateway may be running), encrypt and store it."""
        backup = InstanceBackup(instance_id=instance.id, user_id=instance.user_id, kind=kind,
                                openclaw_version=self.config.openclaw_version)
        key = new_data_key()
        seal_into(self.keyring, backup, "data_key_sealed", SecretStr(base64.b64encode(key).decode()))
        digest = Digest()
        async with aclosing(runtime.archive_state(instance.id, instance.runtime_state)) as archive:
            path = await self.local.save(instance.id, backup.id, encrypt(archive, key, backup.id, digest))
        backup.size, backup.sha256, backup.local_path = digest.size, digest.sha256, str(path)
        try:
            if self.remote is not None:
                backup.s3_key = f"instance-backups/{instance.id}/{path.name}"
                await self.remote.upload(backup.s3_key, str(path))
            async with self.sessions() as session:
                session.add(backup)
                await session.commit()
        except BaseException:
            await self.local.delete(str(path))
            raise
        log.info("instance backup taken", instance_id=str(instance.id), backup_id=str(backup.id), kind=kind,
                 size=backup.size)
        if prune:
            await self.prune(instance)
        return backup

    async def read(self, backup: InstanceBackup) -> AsyncIterator[bytes]:
        """The decrypted archive, streamed."""
        key = base64.b64decode(open_from(self.keyring, backup, "data_key_sealed").get_secret_value())
        if self.local.holds(backup.local_path):
            sealed = self.local.read(backup.local_path)
        elif self.remote is not None and backup.s3_key:
            sealed = self.remote.read(backup.s3_key)
        else:
            raise BackupMissing("This backup's file is gone from the server.")
        async with aclosing(decrypt(sealed, key, backup.id)) as plain:
            async for chunk in plain:
                yield chunk

    async def delete(self, backup: InstanceBackup) -> None:
        async with self.sessions() as session:
            row = await session.get(InstanceBackup, backup.id)
            if row is not None:
                await session.delete(row)
                await session.commit()
        await self._discard_files(backup)

    async def prune(self, instance: Instance) -> list[InstanceBackup]:
        """Let go of the instance's backups beyond the newest it may keep; those let go."""
        kept = await self.kept_for(instance.user_id) if self.kept_for is not None else self.config.kept
        async with self.sessions() as session:
            extra = list(await session.scalars(
                select(InstanceBackup).where(InstanceBackup.instance_id == instance.id)
                .order_by(InstanceBackup.created_at.desc(), InstanceBackup.id).offset(max(kept, 1))))
        for backup in extra:
            await self.delete(backup)
        return extra

    async def _discard_files(self, backup: InstanceBackup) -> None:
        await self.local.delete(backup.local_path)
        if self.remote is not None and backup.s3_key:
            try:
                await self.remote.delete(backup.s3_key)
            except Exception:  # the row is gone; a copy left in the bucket is only space
                log.exception("could not delete a backup from the bucket", backup_id=str(backup.id))

    async def discard_instance(self, instance_id: uuid.UUID) -> None:
        """The files of every backup of an instance that is deleted with its data."""
        async with self.sessions() as session:
            backups = list(await session.scalars(select(InstanceBackup)
                                                 .where(InstanceBackup.instance_id == instance_id)))
        for backup in backups:
            await self._discard_files(backup)
        await self.local.delete_instance(instance_id)
