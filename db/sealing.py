"""Sealed secrets: AES-256-GCM with the ciphertext bound to its table, row id and column.

A sealed value is text: `v1:<key id>:<base64url(nonce | ciphertext | tag)>`. The associated
data is `clawfleet:<table>:<row id>:<column>`, so a ciphertext copied to another row or column
fails to open. The key ring's first key seals; every key opens (rotation adds a key in front,
re-seals, then drops the old one). Plaintext travels as pydantic's SecretStr, whose repr and
str are masked, so a secret cannot slip into a log line or an exception by accident.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterator, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from sqlalchemy import Table

from db.models import Base

FORMAT_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealedSecretError(Exception):
    """A sealed value that cannot be opened. The message never contains the value."""


class KeyRingError(ValueError):
    """A configured key that is not usable."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def key_id(key: bytes) -> str:
    """A short public name for a key (a hash prefix: it says nothing about the key itself)."""
    return hashlib.sha256(b"clawfleet-key-id:" + key).hexdigest()[:8]


class KeyRing:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise KeyRingError("the key ring is empty")
        self._ciphers: dict[str, AESGCM] = {}
        self._order: list[str] = []
        for index, key in enumerate(keys, start=1):
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {index} is {len(key)} bytes, expected {KEY_BYTES}")
            kid = key_id(key)
            if kid not in self._ciphers:
                self._ciphers[kid] = AESGCM(key)
                self._order.append(kid)

    @classmethod
    def from_encoded(cls, encoded: Sequence[str]) -> KeyRing:
        keys = []
        for index, text in enumerate(encoded, start=1):
            try:
                keys.append(_b64decode(text.strip()))
            except (binascii.Error, ValueError):
                raise KeyRingError(f"key {index} is not URL-safe base64") from None
        return cls(keys)

    @property
    def primary_id(self) -> str:
        return self._order[0]

    @property
    def key_ids(self) -> list[str]:
        return list(self._order)

    def __repr__(self) -> str:
        return f"<KeyRing keys={self._order}>"

    def seal(self, plaintext: str, aad: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, plaintext.encode(), aad)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{FORMAT_VERSION}:{self.primary_id}:{body}"

    def open(self, sealed: str, aad: bytes) -> str:
        version, kid, body = _parse(sealed)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SealedSecretError(
                f"sealed with key {kid}, which is not in the key ring (CLAWFLEET_SECRET_KEYS)"
            )
        try:
            raw = _b64decode(body)
        except (binascii.Error, ValueError):
            raise SealedSecretError("not a sealed value") from None
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except InvalidTag:
            raise SealedSecretError(
                "sealed value failed its integrity check: it was altered, or belongs to another row or column"
            ) from None

    def is_current(self, sealed: str) -> bool:
        return _parse(sealed)[1] == self.primary_id


def _parse(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(":")
    if len(parts) != 3 or parts[0] != FORMAT_VERSION or len(parts[1]) != 8:
        raise SealedSecretError("not a sealed value")
    return parts[0], parts[1], parts[2]


def associated_data(table: str, row_id: object, column: str) -> bytes:
    return f"clawfleet:{table}:{row_id}:{column}".encode()


def _check_sealed_column(row: Base, column: str) -> None:
    col = row.__table__.columns.get(column)
    if col is None or not col.info.get("sealed"):
        raise ValueError(f"{type(row).__name__}.{column} is not a sealed column")


def seal_into(ring: KeyRing, row: Base, column: str, secret: SecretStr | None) -> None:
    """Store `secret` sealed in `row.column` (None clears it)."""
    _check_sealed_column(row, column)
    if secret is None:
        setattr(row, column, None)
        return
    aad = associated_data(row.__tablename__, row.id, column)
    setattr(row, column, ring.seal(secret.get_secret_value(), aad))


def open_from(ring: KeyRing, row: Base, column: str) -> SecretStr | None:
    _check_sealed_column(row, column)
    sealed = getattr(row, column)
    if sealed is None:
        return None
    aad = associated_data(row.__tablename__, row.id, column)
    return SecretStr(ring.open(sealed, aad))


def sealed_columns() -> Iterator[tuple[Table, list[str]]]:
    """Every table with sealed columns, and those columns' names (what rotation walks)."""
    for table in Base.metadata.sorted_tables:
        names = [c.name for c in table.columns if c.info.get("sealed")]
        if names:
            yield table, names


def reseal(ring: KeyRing, sealed: str, aad: bytes) -> str:
    return ring.seal(ring.open(sealed, aad), aad)

