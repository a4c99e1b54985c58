"""A backup file's encryption: AES-256-GCM under a key derived from the operator's passphrase.

The file is `MAGIC | header length (4 bytes) | header (JSON) | SHA-256 of the header | ciphertext
and tag`. The header says how the key was derived (scrypt, its salt and cost, so the cost can grow
in later files) and carries a short check value of the passphrase, so a wrong passphrase is told
apart from a damaged file (the header's digest catches damage to the header itself). Everything
before the ciphertext is its associated data: a header edited to weaken the derivation, or a
file cut short anywhere, fails the integrity check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"CLAWFLEET-BACKUP\n"
FILE_FORMAT = 1
MIN_PASSPHRASE_CHARS = 12
_LENGTH_BYTES = 4
_MAX_HEADER_BYTES = 4096
_DIGEST_BYTES = 32
_CHECK_LABEL = b"clawfleet-backup-passphrase-check"


class BackupError(Exception):
    """A backup that cannot be written or read, said in one line (never with a secret in it)."""


class WrongPassphrase(BackupError):
    pass


class DamagedBackup(BackupError):
    pass


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors; the default takes 128 MiB and about half a second to derive."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def check(self) -> None:
        # bounds on what a file may ask for: a forged header must not make the reader derive for hours
        if not (2**14 <= self.n <= 2**22 and self.n & (self.n - 1) == 0 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise DamagedBackup("the backup's key derivation settings are out of range: the file is damaged")


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise BackupError(f"the passphrase is {len(passphrase)} characters long; use at least "
                          f"{MIN_PASSPHRASE_CHARS} (a few unrelated words are easy to type and hard to guess)")


def encrypt(payload: bytes, passphrase: str, cost: ScryptCost = ScryptCost()) -> bytes:
    """CPU-heavy (the key derivation): call it off the event loop."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key, check = _derive(passphrase, salt, cost)
    header = json.dumps({
        "format": FILE_FORMAT,
        "kdf": {"name": "scrypt", "salt": _b64(salt), "n": cost.n, "r": cost.r, "p": cost.p},
        "cipher": "AES-256-GCM",
        "nonce": _b64(nonce),
        "check": _b64(check),
    }).encode()
    prefix = MAGIC + len(header).to_bytes(_LENGTH_BYTES, "big") + header + hashlib.sha256(header).digest()
    return prefix + AESGCM(key).encrypt(nonce, payload, prefix)


def decrypt(blob: bytes, passphrase: str) -> bytes:
    """The payload, or WrongPassphrase / DamagedBackup. CPU-heavy: call it off the event loop."""
    header, prefix = _read_header(blob)
    try:
        kdf = header["kdf"]
        cost = ScryptCost(n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))
        salt, nonce, expected = _unb64(kdf["salt"]), _unb64(header["nonce"]), _unb64(header["check"])
        known = kdf["name"] == "scrypt" and header["cipher"] == "AES-256-GCM" and len(nonce) == 12
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise DamagedBackup("the backup's header is incomplete: the file is damaged") from None
    if not known:
        raise BackupError("the backup is encrypted in a way this ClawFleet does not know: restore it with a newer one")
    cost.check()
    key, check = _derive(passphrase, salt, cost)
    if not hmac.compare_digest(check, expected):
        raise WrongPassphrase("wrong passphrase for this backup")
    try:
        return AESGCM(key).decrypt(nonce, blob[len(prefix):], prefix)
    except InvalidTag:
        raise DamagedBackup("the backup failed its integrity check: the file is damaged or cut short") from None


def _read_header(blob: bytes) -> tuple[dict, bytes]:
    if not blob.startswith(MAGIC):
        raise DamagedBackup("not a ClawFleet backup (or its first bytes are damaged)")
    start = len(MAGIC) + _LENGTH_BYTES
    length = int.from_bytes(blob[len(MAGIC):start], "big")
    end = start + length + _DIGEST_BYTES
    if len(blob) < start or not 0 < length <= _MAX_HEADER_BYTES or len(blob) < end:
        raise DamagedBackup("the backup is cut short: its header is incomplete")
    raw = blob[start:start + length]
    if not hmac.compare_digest(hashlib.sha256(raw).digest(), blob[start + length:end]):
        raise DamagedBackup("the backup's header is damaged")
    try:
        header = json.loads(raw)
    except ValueError:
        raise DamagedBackup("the backup's header is not readable: the file is damaged") from None
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        raise BackupError(f"the backup's file format {header.get('format') if isinstance(header, dict) else '?'} "
                          "is not one this ClawFleet reads: restore it with a newer one")
    return header, blob[:end]


def _derive(passphrase: str, salt: bytes, cost: ScryptCost) -> tuple[bytes, bytes]:
    """The encryption key, and a check value of the passphrase from the other half of the output."""
    derived = Scrypt(salt=salt, length=64, n=cost.n, r=cost.r, p=cost.p).derive(passphrase.encode())
    return derived[:32], hashlib.sha256(_CHECK_LABEL + derived[32:]).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
