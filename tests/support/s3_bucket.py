"""A real S3-compatible server for the instance-backup bucket's tests: moto's server as a process
of its own on loopback, with authentication on (so wrong keys are refused as a real bucket
refuses them), and per test a fresh bucket with an access key allowed to use it."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiobotocore.session import get_session
from pydantic import SecretStr

from provisioner.instance_backups.s3 import S3Config
from tests.support.platform_process import free_port
from tests.support.services import service_missing

REGION = "us-east-1"
# Requests moto answers before it checks credentials: the fixture's own IAM set-up (a user, its
# key, its policy). Every request after them must be signed with a key moto knows.
SET_UP_REQUESTS = 3
ALLOW_S3 = json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


@dataclass(frozen=True)
class MotoServer:
    url: str
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class S3Bucket:
    server: MotoServer
    name: str

    def config(self, **overrides: object) -> S3Config:
        values = dict(bucket=self.name, access_key_id=SecretStr(self.server.access_key_id),
                      secret_access_key=SecretStr(self.server.secret_access_key), region=REGION,
                      endpoint_url=self.server.url, timeout_s=10)
        return S3Config(**(values | overrides))

    def settings(self) -> dict[str, object]:
        """The platform's settings for this bucket."""
        return dict(instance_backup_s3_bucket=self.name, instance_backup_s3_endpoint_url=self.server.url,
                    instance_backup_s3_region=REGION,
                    instance_backup_s3_access_key_id=SecretStr(self.server.access_key_id),
                    instance_backup_s3_secret_access_key=SecretStr(self.server.secret_access_key))

    def _client(self):
        return get_session().create_client("s3", region_name=REGION, endpoint_url=self.server.url,
                                           aws_access_key_id=self.server.access_key_id,
                                           aws_secret_access_key=self.server.secret_access_key)

    async def keys(self) -> list[str]:
        async with self._client() as client:
            listed = await client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    async def object(self, key: str) -> bytes:
        async with self._client() as client:
            answer = await client.get_object(Bucket=self.name, Key=key)
            async with answer["Body"] as body:
                return await body.read()


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """By connecting only: an HTTP request would count as one of the set-up requests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto's server exited ({process.returncode}); its log: {log}", pytrace=False)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"moto's server did not listen within {timeout:.0f} s; its log: {log}", pytrace=False)


async def _set_up_key(url: str) -> tuple[str, str]:
    async with get_session().create_client("iam", region_name=REGION, endpoint_url=url, aws_access_key_id="set-up",
                                           aws_secret_access_key="set-up") as iam:
        await iam.create_user(UserName="clawfleet")
        key = (await iam.create_access_key(UserName="clawfleet"))["AccessKey"]
        await iam.put_user_policy(UserName="clawfleet", PolicyName="backups", PolicyDocument=ALLOW_S3)
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="session")
def moto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server on a free loopback port, for the whole session; its output in moto.log."""
    if importlib.util.find_spec("moto.server") is None or importlib.util.find_spec("flask") is None:
        service_missing("moto's server is not installed (pip install -e '.[dev]')")
    port, log = free_port(), tmp_path_factory.mktemp("moto") / "moto.log"
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SET_UP_REQUESTS))
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
async def moto_server(moto_process: str) -> MotoServer:
    return MotoServer(moto_process, *await _set_up_key(moto_process))


@pytest.fixture
async def s3_bucket(moto_server: MotoServer) -> AsyncIterator[S3Bucket]:
    """A bucket of this test's own."""
    bucket = S3Bucket(moto_server, f"backups-{uuid.uuid4().hex[:12]}")
    async with bucket._client() as client:
        await client.create_bucket(Bucket=bucket.name)
    yield bucket
