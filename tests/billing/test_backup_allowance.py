"""With billing on, each subscriber's plan says how often their instances are backed up and how
many backups each keeps: the schedule's rounds and the keeper's pruning over the real plan
entitlements (subscription rows) in the database, SQLite then PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from billing.entitlements import PlanEntitlements
from billing.plans import parse_plans
from db.models import Instance, InstanceBackup
from db.status import Status
from db.types import utcnow
from provisioner.instance_backups.keeper import BackupKeeper, KeeperConfig
from provisioner.instance_backups.schedule import BackupSchedule, ScheduleConfig, Verdict
from provisioner.instance_backups.store import LocalStore
from provisioner.progress import ProgressEvent
from tests.support.billing import subscriber
from tests.support.builders import new_instance

PLANS = """\
[plans.hourly]
name = "Hourly"
stripe_price = "price_hourly"
instances = 1
memory_mb = 1024
cpus = 1
backup_every_hours = 1
backups_kept = 2

[plans.manual]
name = "Manual"
stripe_price = "price_manual"
instances = 1
memory_mb = 1024
cpus = 1
backup_every_hours = 0
"""


class Backed:
    """A scheduled backup's progress that has ended well."""

    async def follow(self):
        yield ProgressEvent(seq=1, step="backed_up", message="Backed up.", elapsed_ms=5, done=True)


class RecordingManager:
    """What the schedule asks of the manager: a backup of an instance, recorded."""

    holder = "manager-test"

    class runtime:  # noqa: N801 - what the schedule reads of the runtime: its name
        name = "process"

    def __init__(self) -> None:
        self.asked: list[tuple[uuid.UUID, str]] = []

    async def backup(self, instance_id: uuid.UUID, kind: str) -> Backed:
        self.asked.append((instance_id, kind))
        return Backed()


async def _running_instance(sessions, keyring, owner, backed_up_hours_ago: float) -> uuid.UUID:
    async with sessions() as session:
        instance = new_instance(keyring, owner, status=Status.RUNNING)
        session.add(instance)
        await session.flush()
        for age in (backed_up_hours_ago + 1, backed_up_hours_ago):
            session.add(InstanceBackup(instance_id=instance.id, user_id=owner.id, kind="scheduled", size=1,
                                       sha256="0" * 64, openclaw_version="2026.9.6", data_key_sealed="unused",
                                       created_at=utcnow() - timedelta(hours=age)))
        await session.commit()
    return instance.id


async def test_each_plan_sets_its_subscribers_schedule_and_how_many_are_kept(sessions, keyring, tmp_path) -> None:
    entitlements = PlanEntitlements(sessions, parse_plans(PLANS))
    hourly, manual = await subscriber(sessions, "hourly"), await subscriber(sessions, "manual")
    due = await _running_instance(sessions, keyring, hourly, backed_up_hours_ago=1.5)
    off = await _running_instance(sessions, keyring, manual, backed_up_hours_ago=100)
    manager = RecordingManager()
    keeper = BackupKeeper(sessions, keyring, LocalStore(tmp_path), KeeperConfig("2026.9.6"),
                          entitlements=entitlements)
    schedule = BackupSchedule(sessions, manager, keeper, entitlements, ScheduleConfig())

    assert await schedule.run_once() == {due: Verdict.TAKEN, off: Verdict.OFF}
    assert manager.asked == [(due, "scheduled")]

    async with sessions() as session:  # a third backup of the hourly subscriber's: the oldest goes
        instance = await session.get(Instance, due)
        session.add(InstanceBackup(instance_id=due, user_id=hourly.id, kind="manual", size=1, sha256="0" * 64,
                                   openclaw_version="2026.9.6", data_key_sealed="unused"))
        await session.commit()
    let_go = await keeper.prune(instance)
    assert len(let_go) == 1 and let_go[0].created_at < utcnow() - timedelta(hours=2)
