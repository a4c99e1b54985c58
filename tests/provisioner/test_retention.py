"""Data retention: what a suspended instance holds, and the data a delete kept, go once
CLAWFLEET_DATA_RETENTION_DAYS have passed, with an audit row each; nothing younger is touched."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from db.models import AuditLog, Instance
from db.status import Status
from db.types import utcnow
from provisioner.retention import DISCARDED, Retention, RetentionConfig
from tests.support.builders import new_instance, saved_user


class KeptData:
    """A runtime's kept data, as far as retention sees it."""

    def __init__(self) -> None:
        self.discarded = []

    async def discard_kept_data(self, instance_id) -> None:
        self.discarded.append(instance_id)


class Manager:
    holder = "test"

    def __init__(self) -> None:
        self.runtime = KeptData()
        self.deleted = []

    async def delete(self, instance_id, keep_data: bool) -> None:
        self.deleted.append((instance_id, keep_data))


async def test_only_what_is_past_its_time_goes(sessions, keyring):
    user = await saved_user(sessions)
    old_day = utcnow() - timedelta(days=31)
    async with sessions() as session:
        stale = new_instance(keyring, user, status=Status.SUSPENDED)
        fresh = new_instance(keyring, user, status=Status.SUSPENDED)
        running = new_instance(keyring, user, status=Status.RUNNING)
        session.add_all([stale, fresh, running])
        await session.commit()
        await session.execute(update(Instance).where(Instance.id.in_([stale.id, running.id]))
                              .values(updated_at=old_day))
        await session.commit()
    ids = {}  # deleted instances: only their delete's audit row is left
    async with sessions() as session:
        for name, purge, when in (("kept", False, old_day), ("purged", True, old_day), ("recent", False, utcnow())):
            row = AuditLog(actor="user", action="instance.delete", user_id=user.id, created_at=when,
                           details={"purge": purge})
            row.instance_id = ids[name] = new_instance(keyring, user).id
            session.add(row)
        await session.commit()

    manager = Manager()
    retention = Retention(sessions, manager, RetentionConfig(retention_days=30))
    removed = await retention.run_once()
    assert manager.deleted == [(stale.id, False)]
    assert manager.runtime.discarded == [ids["kept"]]
    assert set(removed) == {stale.id, ids["kept"]}
    async with sessions() as session:
        logged = list(await session.scalars(select(AuditLog).where(AuditLog.action == DISCARDED)))
    assert {(entry.instance_id, entry.details["was"]) for entry in logged} == \
        {(stale.id, "suspended"), (ids["kept"], "deleted")}
    assert all(entry.actor == "retention" for entry in logged)

    manager.runtime.discarded.clear()
    await retention.run_once()  # the kept data went already: not again
    assert manager.runtime.discarded == []
