import os
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import SecretStr

from db.keyfile import key_file, load_keyring, read_key_file
from db.sealing import (
    KeyRing,
    KeyRingError,
    SealedSecretError,
    associated_data,
    generate_key,
    open_from,
    seal_into,
)
from tests.support.builders import new_instance, new_user

SECRET = "sk-proj-canary-1234567890abcdef"


def test_round_trip(keyring: KeyRing) -> None:
    aad = associated_data("instances", uuid.uuid4(), "api_key_sealed")
    sealed = keyring.seal(SECRET, aad)
    assert SECRET not in sealed
    assert keyring.open(sealed, aad) == SECRET


def test_each_seal_differs(keyring: KeyRing) -> None:
    aad = associated_data("instances", uuid.uuid4(), "api_key_sealed")
    assert keyring.seal(SECRET, aad) != keyring.seal(SECRET, aad)  # fresh nonce every time


def test_ciphertext_moved_to_another_row_fails(keyring: KeyRing) -> None:
    user = new_user()
    one, other = new_instance(keyring, user, api_key=SECRET), new_instance(keyring, user)
    other.api_key_sealed = one.api_key_sealed
    with pytest.raises(SealedSecretError) as info:
        open_from(keyring, other, "api_key_sealed")
    assert "another row or column" in str(info.value)
    assert SECRET not in str(info.value)
    assert open_from(keyring, one, "api_key_sealed").get_secret_value() == SECRET


def test_ciphertext_moved_to_another_column_fails(keyring: KeyRing) -> None:
    instance = new_instance(keyring, new_user(), api_key=SECRET)
    instance.telegram_bot_token_sealed = instance.api_key_sealed
    with pytest.raises(SealedSecretError):
        open_from(keyring, instance, "telegram_bot_token_sealed")


def test_tampered_ciphertext_fails(keyring: KeyRing) -> None:
    aad = associated_data("instances", uuid.uuid4(), "api_key_sealed")
    sealed = keyring.seal(SECRET, aad)
    body = sealed.rsplit(":", 1)[1]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(SealedSecretError):
        keyring.open(sealed.rsplit(":", 1)[0] + ":" + flipped, aad)


def test_unknown_key_is_named_in_the_error(keyring: KeyRing) -> None:
    aad = associated_data("instances", uuid.uuid4(), "api_key_sealed")
    sealed = keyring.seal(SECRET, aad)
    stranger = KeyRing.from_encoded([generate_key()])
    with pytest.raises(SealedSecretError, match=keyring.primary_id):
        stranger.open(sealed, aad)


def test_first_key_seals_and_every_key_opens() -> None:
    old, new = generate_key(), generate_key()
    aad = associated_data("instances", uuid.uuid4(), "api_key_sealed")
    sealed_by_old = KeyRing.from_encoded([old]).seal(SECRET, aad)
    ring = KeyRing.from_encoded([new, old])
    assert ring.open(sealed_by_old, aad) == SECRET
    assert not ring.is_current(sealed_by_old)
    assert ring.is_current(ring.seal(SECRET, aad))


def test_only_sealed_columns_take_secrets(keyring: KeyRing) -> None:
    instance = new_instance(keyring, new_user())
    with pytest.raises(ValueError, match="not a sealed column"):
        seal_into(keyring, instance, "model", SecretStr(SECRET))


def test_plaintext_is_masked_in_reprs(keyring: KeyRing) -> None:
    instance = new_instance(keyring, new_user(), api_key=SECRET)
    opened = open_from(keyring, instance, "api_key_sealed")
    for text in (repr(opened), str(opened), f"{opened}", repr(instance), repr(keyring)):
        assert SECRET not in text


@pytest.mark.parametrize(
    ("keys", "message"),
    [([], "empty"), (["c2hvcnQ="], "key 1 is 5 bytes"), ([generate_key(), "***"], "key 2 is not URL-safe base64")],
)
def test_bad_keys_are_explained(keys: list[str], message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.from_encoded(keys)


def test_key_file_is_generated_once_with_mode_0600(tmp_path, caplog) -> None:
    ring = load_keyring(tmp_path, [])
    path = key_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_key_file(path)) == 1
    again = load_keyring(tmp_path, [])
    assert again.primary_id == ring.primary_id


def test_configured_keys_win_over_the_key_file(tmp_path) -> None:
    configured = generate_key()
    ring = load_keyring(tmp_path, [configured])
    assert ring.key_ids == KeyRing.from_encoded([configured]).key_ids
    assert not key_file(tmp_path).exists()


def test_processes_racing_to_create_the_key_file_agree(tmp_path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        rings = list(pool.map(lambda _: load_keyring(tmp_path, []), range(16)))
    assert {ring.primary_id for ring in rings} == {rings[0].primary_id}
    assert [p.name for p in tmp_path.iterdir()] == ["secret.keys"]  # no temporary files left
    assert os.stat(key_file(tmp_path)).st_size > 40
