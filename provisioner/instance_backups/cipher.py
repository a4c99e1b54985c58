"""Encryption of an instance backup at rest: AES-256-GCM in chunks, streamed.

Each backup has a data key of its own (sealed by the platform's key ring on its row). The file is
`MAGIC`, an 8-byte nonce prefix, then frames of `4-byte length | ciphertext+tag`. Frame i's nonce
is the prefix and i; its associated data names the backup, i and whether it is the last frame, so
frames cannot be reordered, moved to another backup, or cut off at a frame boundary unnoticed.
The work of each chunk (encryption, hashing) runs in a thread: the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CFIB1\n"  # ClawFleet instance backup, format 1
PREFIX_BYTES = 8
CHUNK_BYTES = 1024 * 1024
TAG_BYTES = 16
_LENGTH = struct.Struct(">I")


class BackupCorrupt(Exception):
    """An encrypted backup that does not open: altered, truncated, or under another key."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(backup_id: uuid.UUID, index: int, last: bool) -> bytes:
    return f"clawfleet-instance-backup:{backup_id}:{index}:{'last' if last else 'more'}".encode()


@dataclass
class Digest:
    """What was encrypted: its size and SHA-256 (the decrypted archive's, as a download gives it)."""

    size: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._hash.update(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


async def rechunk(chunks: AsyncIterator[bytes], size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The same bytes in pieces of exactly `size` (the last one shorter, maybe empty)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    yield bytes(buffer)


async def encrypt(plain: AsyncIterator[bytes], key: bytes, backup_id: uuid.UUID, digest: Digest) -> AsyncIterator[bytes]:
    """The encrypted file's bytes for the archive `plain`, frame by frame; `digest` counts the plaintext."""
    cipher, prefix = AESGCM(key), os.urandom(PREFIX_BYTES)
    yield MAGIC + prefix

    def seal(index: int, chunk: bytes, last: bool) -> bytes:
        digest.add(chunk)
        sealed = cipher.encrypt(_nonce(prefix, index), chunk, _aad(backup_id, index, last))
        return _LENGTH.pack(len(sealed)) + sealed

    index, pending = 0, None
    async for chunk in rechunk(plain):
        if pending is not None:  # one chunk behind: the last frame must know it is the last
            yield await asyncio.to_thread(seal, index, pending, False)
            index += 1
        pending = chunk
    yield await asyncio.to_thread(seal, index, pending or b"", True)


async def decrypt(sealed: AsyncIterator[bytes], key: bytes, backup_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The archive inside an encrypted file read as `sealed` (any chunking). Raises BackupCorrupt
    as soon as a frame fails, and at the end when the last frame never came."""
    cipher = AESGCM(key)
    buffer, prefix, index, finished = bytearray(), None, 0, False

    def open_frame(frame: bytes, index: int) -> tuple[bytes, bool]:
        for last in (False, True):
            try:
                return cipher.decrypt(_nonce(prefix, index), frame, _aad(backup_id, index, last)), last
            except InvalidTag:
                continue
        raise BackupCorrupt("the backup failed its integrity check (altered, or not this backup's key)")

    async for chunk in sealed:
        buffer += chunk
        if prefix is None:
            if len(buffer) < len(MAGIC) + PREFIX_BYTES:
                continue
            if not buffer.startswith(MAGIC):
                raise BackupCorrupt("not a ClawFleet instance backup")
            prefix = bytes(buffer[len(MAGIC):len(MAGIC) + PREFIX_BYTES])
            del buffer[:len(MAGIC) + PREFIX_BYTES]
        while len(buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer)
            if length < TAG_BYTES or length > CHUNK_BYTES + TAG_BYTES:
                raise BackupCorrupt("the backup has a damaged frame")
            if len(buffer) < _LENGTH.size + length:
                break
            if finished:
                raise BackupCorrupt("the backup has data after its last frame")
            frame = bytes(buffer[_LENGTH.size:_LENGTH.size + length])
            del buffer[:_LENGTH.size + length]
            plain, finished = await asyncio.to_thread(open_frame, frame, index)
            index += 1
            if plain:
                yield plain
    if not finished or buffer:
        raise BackupCorrupt("the backup is truncated")
