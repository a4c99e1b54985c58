"""The bucket store against moto's real S3 server on loopback, through aiobotocore: files go up
in one request or in parts and come back byte for byte, deletes are idempotent, and every
refusal names the setting the operator should check."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from provisioner.instance_backups.s3 import PART_BYTES, S3Unusable, open_s3_store
from tests.support.platform_process import free_port  # nothing listens there
from tests.support.s3_bucket import S3Bucket, moto_process, moto_server, s3_bucket  # noqa: F401 (fixtures)


async def _read(store, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


@pytest.mark.parametrize("size", [0, 48 * 1024, 2 * PART_BYTES + 12345], ids=["empty", "small", "three-parts"])
async def test_a_file_goes_up_and_comes_back_whole(s3_bucket: S3Bucket, tmp_path, size: int) -> None:
    content = os.urandom(size)
    path = tmp_path / "backup.cfib"
    path.write_bytes(content)
    async with open_s3_store(s3_bucket.config(prefix="fleet-a")) as store:
        key = store.key("instance-backups/i/b.cfib")
        await store.upload(key, str(path))
        assert await s3_bucket.keys() == ["fleet-a/instance-backups/i/b.cfib"]
        assert await _read(store, key) == content
        await store.delete(key)
        await store.delete(key)  # already gone: still fine
        assert await s3_bucket.keys() == []
        with pytest.raises(S3Unusable, match="not in the bucket"):
            await _read(store, key)


@pytest.mark.parametrize(("change", "setting"), [
    ({"secret_access_key": SecretStr("not-the-secret")}, "CLAWFLEET_INSTANCE_BACKUP_S3_SECRET_ACCESS_KEY"),
    ({"access_key_id": SecretStr("AKIANOBODYKNOWS0000")}, "CLAWFLEET_INSTANCE_BACKUP_S3_ACCESS_KEY_ID"),
    ({"bucket": "no-such-bucket-here"}, "CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET"),
    ({"endpoint_url": f"http://127.0.0.1:{free_port()}"}, "CLAWFLEET_INSTANCE_BACKUP_S3_ENDPOINT_URL"),
], ids=["wrong-secret", "unknown-key", "no-bucket", "unreachable"])
async def test_a_refusal_names_the_setting_to_check(s3_bucket: S3Bucket, tmp_path, change, setting) -> None:
    path = tmp_path / "backup.cfib"
    path.write_bytes(b"sealed bytes")
    config = s3_bucket.config(**change)
    async with open_s3_store(config) as store:
        with pytest.raises(S3Unusable) as checked:
            await store.check()
        with pytest.raises(S3Unusable) as uploaded:
            await store.upload(store.key("x.cfib"), str(path))
    assert setting in str(checked.value) and setting in str(uploaded.value)
    assert config.secret_access_key.get_secret_value() not in str(checked.value) + str(uploaded.value)
    assert await s3_bucket.keys() == []


async def test_the_right_keys_pass_the_check(s3_bucket: S3Bucket) -> None:
    async with open_s3_store(s3_bucket.config()) as store:
        await store.check()
