"""An S3-compatible bucket for instance backups (AWS S3, MinIO, Cloudflare R2, ...), through
aiobotocore: the keeper's RemoteStore. Files go up in parts read one at a time and come down in
chunks, so no backup is ever held whole in memory. What the bucket refuses is told in words that
name the setting to check; the secret itself is never logged."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import BinaryIO

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pydantic import SecretStr

# S3 wants parts of at least 5 MiB (the last one aside); one part is what is held in memory.
PART_BYTES = 8 * 1024 * 1024
READ_BYTES = 1024 * 1024
SETTING = "CLAWFLEET_INSTANCE_BACKUP_S3_"


@dataclass(frozen=True)
class S3Config:
    bucket: str
    access_key_id: SecretStr
    secret_access_key: SecretStr
    region: str = "us-east-1"
    endpoint_url: str | None = None  # None: AWS's own endpoint for the region
    prefix: str = ""  # keys start with it (several platforms may share a bucket)
    timeout_s: float = 60


class S3Unusable(Exception):
    """The bucket refused or could not be reached; the message names the setting to check."""


def explain(error: Exception, config: S3Config) -> S3Unusable:
    """What went wrong, for the operator, from botocore's error."""
    if isinstance(error, EndpointConnectionError):
        where = config.endpoint_url or f"AWS S3 in {config.region}"
        return S3Unusable(f"cannot reach the bucket's endpoint {where}: check {SETTING}ENDPOINT_URL")
    if not isinstance(error, ClientError):
        return S3Unusable(f"the bucket could not be used ({type(error).__name__}: {error})")
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code == "InvalidAccessKeyId":
        return S3Unusable(f"the bucket does not know the access key: check {SETTING}ACCESS_KEY_ID")
    if code == "SignatureDoesNotMatch":
        return S3Unusable(f"the bucket refused the secret key: check {SETTING}SECRET_ACCESS_KEY")
    if code in ("NoSuchBucket", "404"):
        return S3Unusable(f"there is no bucket {config.bucket!r}: check {SETTING}BUCKET")
    if code in ("AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"):
        return S3Unusable(f"the bucket {config.bucket!r} is in another region: check {SETTING}REGION")
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return S3Unusable(f"the access key may not use the bucket {config.bucket!r}: check {SETTING}ACCESS_KEY_ID "
                          f"and {SETTING}SECRET_ACCESS_KEY, and the key's permissions on {SETTING}BUCKET")
    if code == "NoSuchKey":
        return S3Unusable("the backup's file is not in the bucket")
    return S3Unusable(f"the bucket answered {code or 'an error'}: {error.response.get('Error', {}).get('Message', '')}"
                      .rstrip(": "))


class S3Store:
    def __init__(self, client, config: S3Config) -> None:
        self._client = client  # an aiobotocore S3 client, opened by open_s3_store
        self.config = config

    def key(self, name: str) -> str:
        """The object key for `name` (a path inside the store) under the configured prefix."""
        return f"{self.config.prefix}/{name}" if self.config.prefix else name

    async def check(self) -> None:
        """Raises S3Unusable when the bucket cannot be listed with these credentials."""
        try:
            await self._client.list_objects_v2(Bucket=self.config.bucket, Prefix=self.key(""), MaxKeys=1)
        except (BotoCoreError, ClientError) as exc:
            raise explain(exc, self.config) from None

    async def upload(self, key: str, path: str) -> None:
        """The file at `path` as object `key`: in one request when it fits a part, else as a
        multipart upload (aborted when a part fails, so no partial object is left billed)."""
        try:
            with open(path, "rb") as file:  # noqa: ASYNC230 (each read below runs in a thread)
                if os.fstat(file.fileno()).st_size <= PART_BYTES:
                    body = await asyncio.to_thread(file.read)
                    await self._client.put_object(Bucket=self.config.bucket, Key=key, Body=body)
                else:
                    await self._multipart(key, file)
        except (BotoCoreError, ClientError) as exc:
            raise explain(exc, self.config) from None

    async def _multipart(self, key: str, file: BinaryIO) -> None:
        bucket = self.config.bucket
        upload_id = (await self._client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
        parts = []
        try:
            while part := await asyncio.to_thread(file.read, PART_BYTES):
                number = len(parts) + 1
                answer = await self._client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                                        PartNumber=number, Body=part)
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
            await self._client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                         MultipartUpload={"Parts": parts})
        except BaseException:
            with suppress(BotoCoreError, ClientError):  # else the bucket's lifecycle rule clears it
                await self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await self._client.get_object(Bucket=self.config.bucket, Key=key)
            async with answer["Body"] as body:
                while chunk := await body.read(READ_BYTES):
                    yield chunk
        except (BotoCoreError, ClientError) as exc:
            raise explain(exc, self.config) from None

    async def delete(self, key: str) -> None:
        """Gone from the bucket (a key that is not there counts as deleted, as S3 answers it)."""
        try:
            await self._client.delete_object(Bucket=self.config.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise explain(exc, self.config) from None


@asynccontextmanager
async def open_s3_store(config: S3Config) -> AsyncIterator[S3Store]:
    options = AioConfig(
        connect_timeout=10, read_timeout=config.timeout_s, retries={"mode": "standard", "max_attempts": 3},
        # S3-compatible servers other than AWS serve buckets by path; AWS picks for itself
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
        # the archive's AES-GCM frames already prove its integrity, and not every S3-compatible
        # server takes the newer checksum headers
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    async with get_session().create_client(
            "s3", region_name=config.region, endpoint_url=config.endpoint_url, config=options,
            aws_access_key_id=config.access_key_id.get_secret_value(),
            aws_secret_access_key=config.secret_access_key.get_secret_value()) as client:
        yield S3Store(client, config)
