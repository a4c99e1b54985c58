"""Key rotation re-seals every secret under the first key; the old key can then go."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from db.engine import create_engine, create_session_factory
from db.keyfile import key_file, load_keyring, read_key_file
from db.models import Instance
from db.rotation import rotate_secrets
from db.sealing import KeyRing, SealedSecretError, generate_key, open_from
from tests.support.builders import new_instance, new_user


async def test_rotation_reseals_everything_and_the_old_key_can_be_dropped(engine, sessions) -> None:
    old_key, new_key = generate_key(), generate_key()
    old_ring = KeyRing.from_encoded([old_key])
    user = new_user()
    instances = [
        new_instance(old_ring, user, api_key=f"sk-key-number-{n:04d}", bot_token=f"{n}00:{'A' * 35}")
        for n in range(3)
    ] + [new_instance(old_ring, user, api_key="sk-no-bot-token-here")]
    async with sessions() as session:
        session.add(user)
        session.add_all(instances)
        await session.commit()

    report = await rotate_secrets(engine, KeyRing.from_encoded([new_key, old_key]))
    assert report.resealed == 7  # 4 API keys + 3 bot tokens; the missing token is skipped
    assert report.per_table == {"instances": 7, "onboarding_drafts": 0, "instance_backups": 0}  # every table with sealed columns
    assert report.already_current == 0

    new_only = KeyRing.from_encoded([new_key])
    async with sessions() as session:
        stored = {i.id: i for i in (await session.scalars(select(Instance))).all()}
    for original in instances:
        row = stored[original.id]
        assert open_from(new_only, row, "api_key_sealed") == open_from(old_ring, original, "api_key_sealed")
        assert open_from(new_only, row, "telegram_bot_token_sealed") == open_from(
            old_ring, original, "telegram_bot_token_sealed"
        )
        with pytest.raises(SealedSecretError):
            open_from(old_ring, row, "api_key_sealed")

    again = await rotate_secrets(engine, KeyRing.from_encoded([new_key, old_key]))
    assert (again.resealed, again.already_current) == (0, 7)


async def test_rotation_with_a_missing_key_changes_nothing(engine, sessions) -> None:
    first_key = generate_key()
    first, second = KeyRing.from_encoded([first_key]), KeyRing.from_encoded([generate_key()])
    user = new_user()
    sealed_by_first = new_instance(first, user)
    sealed_by_second = new_instance(second, user)
    async with sessions() as session:
        session.add_all([user, sealed_by_first, sealed_by_second])
        await session.commit()
    with pytest.raises(SealedSecretError):
        await rotate_secrets(engine, KeyRing.from_encoded([generate_key(), first_key]))
    async with sessions() as session:
        row = await session.get(Instance, sealed_by_first.id)
        assert row.api_key_sealed == sealed_by_first.api_key_sealed  # the transaction rolled back


async def test_cli_rotates_the_generated_key_file(tmp_path) -> None:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path)}
    env.pop("CLAWFLEET_SECRET_KEYS", None)
    env.pop("CLAWFLEET_DATABASE_URL", None)

    def clawfleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clawfleet.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    assert clawfleet("migrate").returncode == 0
    first = load_keyring(tmp_path, [])
    user = new_user()
    instance = new_instance(first, user, api_key="sk-rotated-by-the-cli-0001")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'clawfleet.db'}")
    async with create_session_factory(engine)() as session:
        session.add_all([user, instance])
        await session.commit()

    result = clawfleet("keys", "rotate", "--new-key", "--drop-old")
    assert result.returncode == 0, result.stderr
    assert "re-sealed 1 secret(s)" in result.stdout
    keys = read_key_file(key_file(tmp_path))
    assert len(keys) == 1
    second = KeyRing.from_encoded(keys)
    assert second.primary_id != first.primary_id
    async with create_session_factory(engine)() as session:
        row = await session.get(Instance, instance.id)
        assert open_from(second, row, "api_key_sealed").get_secret_value() == "sk-rotated-by-the-cli-0001"
    await engine.dispose()


def test_cli_refuses_to_edit_the_key_file_when_keys_are_configured(tmp_path) -> None:
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path), "CLAWFLEET_SECRET_KEYS": generate_key()}
    result = subprocess.run([sys.executable, "-m", "clawfleet.cli", "keys", "rotate", "--new-key"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "CLAWFLEET_SECRET_KEYS is set" in result.stderr
    assert not key_file(tmp_path).exists()


def test_the_refusal_names_the_key_file_setting_when_the_keys_come_from_a_file(tmp_path) -> None:
    keys = tmp_path / "secret.keys"
    keys.write_text(generate_key() + "\n")
    keys.chmod(0o600)
    env = {**os.environ, "CLAWFLEET_DATA_DIR": str(tmp_path / "data"), "CLAWFLEET_SECRET_KEYS_FILE": str(keys)}
    env.pop("CLAWFLEET_SECRET_KEYS", None)
    result = subprocess.run([sys.executable, "-m", "clawfleet.cli", "keys", "rotate", "--new-key"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "CLAWFLEET_SECRET_KEYS_FILE is set" in result.stderr
