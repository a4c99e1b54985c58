"""The instance-backup cipher: what goes in comes out, and any change to the file is refused."""

from __future__ import annotations

import os
import uuid

import pytest

from provisioner.instance_backups.cipher import CHUNK_BYTES, BackupCorrupt, Digest, decrypt, encrypt, new_data_key


async def _stream(data: bytes, piece: int):
    for start in range(0, len(data), piece):
        yield data[start:start + piece]


async def _join(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def _sealed(data: bytes, key: bytes, backup_id: uuid.UUID) -> bytes:
    return await _join(encrypt(_stream(data, 65536), key, backup_id, Digest()))


@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, 2 * CHUNK_BYTES + 17])
async def test_round_trip_in_any_chunking(size: int) -> None:
    data, key, backup_id = os.urandom(size), new_data_key(), uuid.uuid4()
    digest = Digest()
    sealed = await _join(encrypt(_stream(data, 100_000), key, backup_id, digest))
    assert digest.size == size
    assert await _join(decrypt(_stream(sealed, 777), key, backup_id)) == data


async def test_the_plaintext_is_not_in_the_file() -> None:
    data = b"a workspace note that must not be readable at rest " * 5000
    assert b"workspace note" not in await _sealed(data, new_data_key(), uuid.uuid4())


async def test_tampering_truncation_another_key_or_backup_are_refused() -> None:
    data, key, backup_id = os.urandom(2 * CHUNK_BYTES + 5), new_data_key(), uuid.uuid4()
    sealed = await _sealed(data, key, backup_id)
    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 1
    frame = 4 + CHUNK_BYTES + 16
    header = len(b"CFIB1\n") + 8
    for bad, wanted_key, wanted_id in ((bytes(flipped), key, backup_id),
                                       (sealed[:header + frame], key, backup_id),  # cut after a whole frame
                                       (sealed[:-3], key, backup_id),
                                       (sealed, new_data_key(), backup_id),
                                       (sealed, key, uuid.uuid4()),
                                       (b"not a backup at all", key, backup_id)):
        with pytest.raises(BackupCorrupt):
            await _join(decrypt(_stream(bad, 4096), wanted_key, wanted_id))
