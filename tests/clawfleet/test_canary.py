"""A known canary secret, stored the way the platform stores secrets, never shows up in the
database's files, in the logs (SQL echo included), or in any error text."""

from pathlib import Path

import pytest
import structlog
from sqlalchemy import select, text

from clawfleet.settings import SettingsError, load_settings
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade
from db.models import Instance
from db.sealing import KeyRing, SealedSecretError, generate_key, open_from
from tests.support.builders import new_instance, new_user
from tests.support.log_capture import platform_logs

CANARY_KEY = "sk-canary-9f1c2e7d4b3a5c6e8d0f"
CANARY_TOKEN = "987654321:CANARYxCANARYxCANARYxCANARYxCANARY"


@pytest.fixture
def log_stream():
    with platform_logs("DEBUG") as stream:
        yield stream


async def test_canary_stays_out_of_the_sqlite_files_and_the_logs(tmp_path: Path, log_stream) -> None:
    db_file = tmp_path / "clawfleet.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}", echo=True)  # every SQL statement logged
    ring = KeyRing.from_encoded([generate_key()])
    await upgrade(engine)
    user = new_user()
    instance = new_instance(ring, user, api_key=CANARY_KEY, bot_token=CANARY_TOKEN)
    async with create_session_factory(engine)() as session:
        session.add_all([user, instance])
        await session.commit()
        stored = await session.scalar(select(Instance))
        structlog.get_logger("test").info("instance stored", instance=stored, api_key=open_from(ring, stored, "api_key_sealed"))
    await engine.dispose()

    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("clawfleet.db"))
    assert b"v1:" + ring.primary_id.encode() in raw  # the sealed form is what was written
    for secret in (CANARY_KEY, CANARY_TOKEN):
        assert secret.encode() not in raw
        assert secret not in log_stream.getvalue()
    assert "INSERT INTO instances" in log_stream.getvalue()  # the echo really ran


async def test_canary_stays_out_of_postgres_rows(engine, sessions, keyring) -> None:
    user = new_user()
    async with sessions() as session:
        session.add_all([user, new_instance(keyring, user, api_key=CANARY_KEY, bot_token=CANARY_TOKEN)])
        await session.commit()
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = (await conn.execute(text("SELECT row_to_json(i)::text FROM instances i"))).scalars().all()
        else:
            rows = [str(tuple(r)) for r in (await conn.execute(text("SELECT * FROM instances"))).all()]
    dump = "\n".join(rows)
    assert f"v1:{keyring.primary_id}:" in dump  # the sealed form is what is stored
    assert CANARY_KEY not in dump and CANARY_TOKEN not in dump


def test_canary_stays_out_of_error_texts(keyring, monkeypatch) -> None:
    user = new_user()
    holder = new_instance(keyring, user, api_key=CANARY_KEY)
    thief = new_instance(keyring, user)
    thief.api_key_sealed = holder.api_key_sealed
    errors: list[str] = []
    for attempt in (
        lambda: open_from(keyring, thief, "api_key_sealed"),
        lambda: open_from(KeyRing.from_encoded([generate_key()]), holder, "api_key_sealed"),
        lambda: keyring.open(holder.api_key_sealed[:-4], b"wrong"),
    ):
        with pytest.raises(SealedSecretError) as info:
            attempt()
        errors.append(str(info.value) + repr(info.value))
    monkeypatch.setenv("CLAWFLEET_PROVIDER_URLS", f"openai=ftp://{CANARY_KEY}@proxy")
    with pytest.raises(SettingsError) as info:
        load_settings()
    errors.append(str(info.value))
    monkeypatch.delenv("CLAWFLEET_PROVIDER_URLS")
    for platform_keys in (f"anthropic={CANARY_KEY}", f"skynet={CANARY_KEY}", CANARY_KEY):  # wrong shape, provider, form
        monkeypatch.setenv("CLAWFLEET_PLATFORM_KEYS", platform_keys)
        with pytest.raises(SettingsError) as info:
            load_settings()
        assert "CLAWFLEET_PLATFORM_KEYS: item 1" in str(info.value)
        errors.append(str(info.value))
    monkeypatch.setenv("CLAWFLEET_PLATFORM_KEYS", f"openai=sk-proj-{CANARY_KEY}")
    assert CANARY_KEY not in repr(load_settings())  # kept as a secret: never in a repr or a log line
    for message in errors:
        assert CANARY_KEY not in message
