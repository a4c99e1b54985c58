"""The schema's rules, enforced by the database itself (SQLite and PostgreSQL)."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db import audit
from db.models import AuditLog, Instance, User, WebhookEvent
from db.sealing import open_from
from tests.support.builders import new_instance, new_user


async def test_rows_get_their_uuid_before_insert(sessions, keyring) -> None:
    user = new_user()
    assert isinstance(user.id, uuid.UUID)
    instance = new_instance(keyring, user)  # sealing needs the id already
    async with sessions() as session:
        session.add_all([user, instance])
        await session.commit()
    async with sessions() as session:
        stored = await session.get(Instance, instance.id)
        assert stored is not None and stored.user_id == user.id
        assert open_from(keyring, stored, "api_key_sealed").get_secret_value() == "sk-test-0000000000000000"


async def test_a_user_needs_a_way_to_log_in(sessions) -> None:
    async with sessions() as session:
        session.add(User(email="nobody@example.com"))  # email without password: no way in
        with pytest.raises(IntegrityError):
            await session.commit()


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "a@example.com", "password_hash": "h"},
        {"telegram_user_id": 4242, "telegram_chat_id": 4242},
        {"email": "b@example.com", "password_hash": "h", "telegram_user_id": 4343},
    ],
)
async def test_each_way_to_log_in_is_accepted(sessions, fields) -> None:
    async with sessions() as session:
        session.add(User(**fields))
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_one_telegram_bot_serves_one_instance(sessions, keyring) -> None:
    user = new_user()
    async with sessions() as session:
        session.add_all([user, new_instance(keyring, user, telegram_bot_id=777)])
        await session.commit()
        session.add(new_instance(keyring, user, telegram_bot_id=777))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_unknown_status_is_refused(sessions, keyring) -> None:
    user = new_user()
    async with sessions() as session:
        session.add_all([user, new_instance(keyring, user, status="exploded")])
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_deleting_a_user_deletes_instances_but_keeps_the_audit_trail(sessions, keyring) -> None:
    user = new_user()
    instance = new_instance(keyring, user)
    async with sessions() as session:
        session.add_all([user, instance])
        await session.flush()
        audit.record(session, actor="user", action="instance.create", user_id=user.id, instance_id=instance.id,
                     details={"provider": "openai"})
        await session.commit()
        await session.delete(user)
        await session.commit()
    async with sessions() as session:
        assert await session.get(Instance, instance.id) is None
        entry = await session.scalar(select(AuditLog))
        assert entry is not None and entry.user_id is None and entry.instance_id == instance.id
        assert entry.details == {"provider": "openai"}


async def test_times_come_back_as_aware_utc(sessions, keyring) -> None:
    user = new_user()
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    instance = new_instance(keyring, user, lease_expires_at=moment)
    async with sessions() as session:
        session.add_all([user, instance])
        await session.commit()
    async with sessions() as session:
        stored = await session.get(Instance, instance.id)
        assert stored.lease_expires_at == moment
        assert stored.lease_expires_at.utcoffset() == timedelta(0)
        assert stored.created_at.tzinfo is not None


async def test_runtime_state_round_trips_as_json(sessions, keyring) -> None:
    user = new_user()
    state = {"version": 1, "pid": 1234, "ports": [18789], "names": {"container": "cf-abc"}}
    instance = new_instance(keyring, user, runtime_state=state)
    async with sessions() as session:
        session.add_all([user, instance])
        await session.commit()
    async with sessions() as session:
        assert (await session.get(Instance, instance.id)).runtime_state == state


async def test_a_webhook_event_is_recorded_once(sessions) -> None:
    async with sessions() as session:
        session.add(WebhookEvent(source="stripe", event_id="evt_1", event_type="invoice.paid"))
        await session.commit()
        session.add(WebhookEvent(source="stripe", event_id="evt_1", event_type="invoice.paid"))
        with pytest.raises(IntegrityError):
            await session.commit()
