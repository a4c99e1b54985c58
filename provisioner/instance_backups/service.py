"""The instance-backup use cases the web app and the bot both call. Someone else's instance or
backup is NotFound, never told apart from a missing one; every action is in the audit log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import audit
from db.errors import Conflict, InvalidInput, NotFound
from db.models import Instance, InstanceBackup, User
from db.status import Action
from provisioner.instance_backups.cipher import BackupCorrupt
from provisioner.instance_backups.keeper import BackupKeeper, BackupMissing
from provisioner.manager import InstanceManager
from provisioner.service import InstanceService

TARGETS = ("same", "new")


class InstanceBackups:
    """(Shares InstanceService's checks of who may act on an instance, so both say the same.)"""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], instances: InstanceService,
                 manager: InstanceManager, keeper: BackupKeeper) -> None:
        self.sessions = sessions
        self.instances = instances
        self.manager = manager
        self.keeper = keeper

    async def list(self, user: User, instance_id: uuid.UUID | str) -> list[InstanceBackup]:
        """The instance's backups, newest first."""
        instance = await self.instances.view(user, instance_id)
        async with self.sessions() as session:
            return list(await session.scalars(
                select(InstanceBackup).where(InstanceBackup.instance_id == instance.id)
                .order_by(InstanceBackup.created_at.desc(), InstanceBackup.id)))

    async def get(self, user: User, instance_id: uuid.UUID | str, backup_id: uuid.UUID | str) -> InstanceBackup:
        instance = await self.instances.view(user, instance_id)
        try:
            wanted = uuid.UUID(str(backup_id))
        except ValueError:
            raise NotFound("No such backup.") from None
        async with self.sessions() as session:
            backup = await session.get(InstanceBackup, wanted)
        if backup is None or backup.instance_id != instance.id or backup.user_id != user.id:
            raise NotFound("No such backup.")
        return backup

    async def back_up(self, user: User, instance_id: uuid.UUID | str) -> Instance:
        """Begin a manual backup; follow it on the instance's progress stream."""
        instance = await self.instances.actionable(user, instance_id, "back up")
        self.instances.check_runtime()
        await self.manager.backup(instance.id, "manual")
        return await self.instances.audited(user, instance, "instance.backup_requested")

    async def download(self, user: User, instance_id: uuid.UUID | str,
                       backup_id: uuid.UUID | str) -> tuple[InstanceBackup, AsyncIterator[bytes]]:
        """The backup and its decrypted archive, streamed (the first chunk is read here, so a
        missing or damaged file is refused before anything is sent)."""
        backup = await self.get(user, instance_id, backup_id)
        stream = self.keeper.read(backup)
        try:
            first = await anext(stream)
        except BackupMissing as exc:
            raise NotFound(str(exc)) from None
        except BackupCorrupt:
            raise Conflict("This backup's file is damaged and cannot be opened; take a new backup.") from None

        async def chunks() -> AsyncIterator[bytes]:
            yield first
            async for chunk in stream:
                yield chunk

        async with self.sessions() as session:
            audit.record(session, actor="user", action="instance.backup_download", user_id=user.id,
                         instance_id=backup.instance_id, details={"backup_id": str(backup.id)})
            await session.commit()
        return backup, chunks()

    async def restore(self, user: User, instance_id: uuid.UUID | str, backup_id: uuid.UUID | str,
                      target: object) -> Instance:
        """Restore into the same instance, or into a new one of the same owner (which starts
        with credentials of its own and no Telegram bot). The instance the restore runs on."""
        if target not in TARGETS:
            raise InvalidInput('target must be "same" or "new".', field="target")
        backup = await self.get(user, instance_id, backup_id)
        self.instances.check_runtime()
        if target == "same":
            instance = await self.instances.actionable(user, instance_id, "restore into")
            await self.manager.restore(instance.id, backup.id, check=await self.instances.room_to_start(user))
        else:
            source = await self.instances.get(user, instance_id)
            instance, holder = await self.instances.create_copy(user, source, Action.RESTORE)
            await self.manager.restore(instance.id, backup.id, holder=holder)
        return await self.instances.audited(user, instance, "instance.restore_requested",
                                   {"backup_id": str(backup.id), "target": target})

    async def delete(self, user: User, instance_id: uuid.UUID | str, backup_id: uuid.UUID | str) -> None:
        backup = await self.get(user, instance_id, backup_id)
        await self.keeper.delete(backup)
        async with self.sessions() as session:
            audit.record(session, actor="user", action="instance.backup_delete", user_id=user.id,
                         instance_id=backup.instance_id, details={"backup_id": str(backup.id)})
            await session.commit()
