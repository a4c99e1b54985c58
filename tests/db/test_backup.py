"""The platform backup against real databases: every row and the key ring survive a round trip
between SQLite and PostgreSQL in any direction, a backup of an older schema restores, a bad file
or passphrase changes nothing, and a database in use is not overwritten unless asked."""

from __future__ import annotations

import stat
import uuid
from contextlib import AsyncExitStack
from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.backup import TargetNotEmpty, read_backup, restore, take_backup, unopenable_secrets, write_backup
from db.backup_cipher import BackupError, DamagedBackup, WrongPassphrase
from db.backup_tables import advance_sequences, one_transaction
from db.engine import create_engine, create_session_factory
from db.migrate import current_revision, head_revision, move_to, upgrade
from db.models import AuditLog, Base, BotState, Instance, ModelUsage, User
from db.sealing import KeyRing, generate_key, open_from
from tests.support.builders import new_instance, new_user
from tests.support.services import empty_database

PASSPHRASE = "a long and unusual passphrase"
API_KEY = "sk-proj-restoredRestored0123456789"
BOT_TOKEN = "123456789:" + "B" * 35


@pytest.fixture
async def databases(tmp_path):
    """Opens fresh, empty databases by kind; disposes and drops them after the test."""
    async with AsyncExitStack() as stack:

        async def open_database(kind: str) -> AsyncEngine:
            directory = tmp_path / uuid.uuid4().hex[:8]
            directory.mkdir()
            engine = create_engine(await stack.enter_async_context(empty_database(kind, directory)))
            stack.push_async_callback(engine.dispose)
            return engine

        yield open_database


async def _populate(engine: AsyncEngine, ring: KeyRing) -> Instance:
    """Rows of every kind of value: aware datetimes to the microsecond, dates, big integers,
    floats, booleans, JSON documents (nested, lists, unicode), sealed secrets."""
    moment = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone.utc)
    user = new_user(telegram_user_id=2**40 + uuid.uuid4().int % 10**9, is_admin=True, email_verified_at=moment,
                    spend_cap_micro_usd=12_345_678_901)
    instance = new_instance(ring, user, api_key=API_KEY, bot_token=BOT_TOKEN, status="stopped",
                            runtime_state={"version": 2, "pid": 4242, "names": ["a", "ü"], "nested": {"x": None}},
                            cpus=1.5, memory_mb=1536, next_attempt_at=moment + timedelta(seconds=1))
    async with create_session_factory(engine)() as session:
        session.add(user)
        await session.flush()
        session.add(instance)
        await session.flush()
        session.add_all([
            ModelUsage(user_id=user.id, instance_id=instance.id, day=date(2026, 2, 28), provider="openai",
                       model="gpt-5.5", key_source="own", input_tokens=10**12, cost_micro_usd=99),
            AuditLog(user_id=user.id, instance_id=instance.id, actor="user", action="instance.create",
                     details={"why": "test ✓", "list": [1, 2.5, True]}),
            BotState(namespace="conversations", key=f"onboarding-{user.id}", data=[["1", "2"], 3]),
        ])
        await session.commit()
    return instance


async def _all_rows(engine: AsyncEngine) -> dict[str, list[tuple]]:
    async with engine.connect() as conn:
        return {table.name: [tuple(row) for row in await conn.execute(select(table).order_by(*table.primary_key.columns))]
                for table in Base.metadata.sorted_tables}


@pytest.mark.parametrize(("source_kind", "target_kind"), [("sqlite", "sqlite"), ("postgresql", "postgresql"),
                                                          ("sqlite", "postgresql"), ("postgresql", "sqlite")])
async def test_every_row_and_the_key_ring_round_trip(databases, tmp_path, source_kind, target_kind) -> None:
    source, target = await databases(source_kind), await databases(target_kind)
    await upgrade(source)
    keys = [generate_key(), generate_key()]
    ring = KeyRing.from_encoded(keys)
    instance = await _populate(source, ring)
    before = await _all_rows(source)

    path = tmp_path / "platform.backup"
    await write_backup(path, await take_backup(source, [SecretStr(key) for key in keys], "1.2.3"), PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert API_KEY.encode() not in path.read_bytes() and keys[0].encode() not in path.read_bytes()

    archive = await read_backup(path, PASSPHRASE)
    assert (archive.clawfleet_version, archive.alembic_revision, archive.source) == ("1.2.3", head_revision(),
                                                                                    source_kind)
    assert [key.get_secret_value() for key in archive.keys] == keys  # all of them, in order
    report = await restore(target, archive, replace=False)
    assert report.rows == sum(len(rows) for rows in before.values()) and not any(report.replaced.values())

    assert await _all_rows(target) == before
    assert await current_revision(target) == head_revision()
    async with create_session_factory(target)() as session:
        restored = await session.get(Instance, instance.id)
    reopened = KeyRing.from_encoded([key.get_secret_value() for key in archive.keys])
    assert open_from(reopened, restored, "api_key_sealed").get_secret_value() == API_KEY
    assert open_from(reopened, restored, "telegram_bot_token_sealed").get_secret_value() == BOT_TOKEN


async def test_a_backup_of_an_older_schema_restores_and_is_migrated(databases, tmp_path) -> None:
    source, target = await databases("sqlite"), await databases("postgresql")
    await upgrade(source, "0012")  # before overage_reports existed
    user_id = uuid.uuid4()
    async with source.begin() as conn:
        await conn.execute(text("INSERT INTO users (id, email, password_hash, is_admin, created_at, updated_at) "
                                "VALUES (:id, 'old@example.com', 'x', 0, '2025-01-02 03:04:05', "
                                "'2025-01-02 03:04:05')"), {"id": user_id.hex})
    await upgrade(target)  # the fresh install was already migrated: restore goes down, loads, comes back
    archive = await take_backup(source, [SecretStr(generate_key())], "0.9.0")
    assert archive.alembic_revision == "0012" and "overage_reports" not in archive.tables

    await restore(target, archive, replace=False)
    assert await current_revision(target) == head_revision()
    async with create_session_factory(target)() as session:
        user = await session.get(User, user_id)
    assert user.email == "old@example.com"
    assert user.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


async def test_a_wrong_passphrase_or_a_damaged_file_is_named_and_read_no_further(databases, tmp_path) -> None:
    source = await databases("sqlite")
    await upgrade(source)
    await _populate(source, KeyRing.from_encoded([generate_key()]))
    path = tmp_path / "platform.backup"
    await write_backup(path, await take_backup(source, [SecretStr(generate_key())], "1.0"), PASSPHRASE)
    whole = path.read_bytes()

    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        await read_backup(path, PASSPHRASE + "!")
    damaged = {
        "cut in the header": whole[:40],
        "cut in the middle": whole[:len(whole) // 2],
        "last byte missing": whole[:-1],
        "a byte of the rows flipped": whole[:-20] + bytes([whole[-20] ^ 1]) + whole[-19:],
        "its cost lowered": whole.replace(b'"n": 131072', b'"n": 16384'),
        "not a backup": b"PK\x03\x04" + whole[4:],
    }
    for what, blob in damaged.items():
        assert blob != whole, what
        path.write_bytes(blob)
        with pytest.raises(DamagedBackup):
            await read_backup(path, PASSPHRASE)
    with pytest.raises(BackupError, match="cannot read"):
        await read_backup(tmp_path / "missing.backup", PASSPHRASE)


async def test_a_database_in_use_is_kept_unless_replacing_is_asked_for(databases, tmp_path) -> None:
    source, target = await databases("sqlite"), await databases("postgresql")
    await upgrade(source)
    await upgrade(target)
    ring = KeyRing.from_encoded([generate_key()])
    from_backup = await _populate(source, ring)
    archive = await take_backup(source, [SecretStr(generate_key())], "1.0")
    await _populate(target, ring)
    await _populate(target, ring)
    before = await _all_rows(target)

    with pytest.raises(TargetNotEmpty, match=r"2 account\(s\), 2 instance\(s\)"):
        await restore(target, archive, replace=False)
    assert await _all_rows(target) == before

    report = await restore(target, archive, replace=True)
    assert (report.replaced["users"], report.replaced["instances"]) == (2, 2)
    async with target.connect() as conn:
        assert (await conn.execute(select(Instance.id))).scalars().all() == [from_backup.id]


async def test_a_restore_that_fails_before_its_commit_changes_nothing(databases) -> None:
    source, target = await databases("postgresql"), await databases("sqlite")
    await upgrade(source)
    await _populate(source, KeyRing.from_encoded([generate_key()]))
    archive = await take_backup(source, [SecretStr(generate_key())], "1.0")
    await upgrade(target, "0011")

    def key_file_unwritable() -> None:
        raise BackupError("cannot write the key ring")

    with pytest.raises(BackupError, match="cannot write the key ring"):
        await restore(target, archive, replace=False, before_commit=key_file_unwritable)
    assert await current_revision(target) == "0011"
    async with target.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(User))).scalar() == 0


async def test_the_key_ring_check_counts_what_does_not_open(databases) -> None:
    source = await databases("sqlite")
    await upgrade(source)
    sealing, other = generate_key(), generate_key()
    await _populate(source, KeyRing.from_encoded([sealing]))
    archive = await take_backup(source, [SecretStr(sealing)], "1.0")
    assert unopenable_secrets(archive, KeyRing.from_encoded([other, sealing])) == 0
    assert unopenable_secrets(archive, KeyRing.from_encoded([other])) == 2  # the API key and the bot token


async def test_a_backup_reads_one_snapshot_while_others_write(engine, sessions) -> None:
    async with one_transaction(engine, snapshot=True) as snapshot:
        first = (await snapshot.execute(select(func.count()).select_from(User))).scalar()
        async with sessions() as session:  # another connection commits meanwhile
            session.add(new_user())
            await session.commit()
        assert (await snapshot.execute(select(func.count()).select_from(User))).scalar() == first
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(User))).scalar() == first + 1


async def test_sequences_are_set_past_the_ids_loaded(databases) -> None:
    target = await databases("postgresql")
    metadata = MetaData()
    serial = Table("numbered", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("label", String(10)), Column("big", BigInteger))
    async with target.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(serial), [{"id": n, "label": f"row {n}", "big": n} for n in (3, 7, 41)])
        await advance_sequences(conn, [serial])
        new_id = (await conn.execute(insert(serial).values(label="next").returning(serial.c.id))).scalar()
    assert new_id == 42


async def test_move_to_goes_down_as_well_as_up(databases) -> None:
    target = await databases("sqlite")
    await upgrade(target)
    async with target.begin() as conn:
        await move_to(conn, "0010")
    assert await current_revision(target) == "0010"
    async with target.begin() as conn:
        await move_to(conn, "0012")
    assert await current_revision(target) == "0012"
