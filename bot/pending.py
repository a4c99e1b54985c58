"""Secrets a user sent during a conversation, kept sealed in their conversation data until a
deploy or a change uses them: that data is persisted, and a key is never stored in the clear.

Each value is bound to the Telegram user and the field it was sent for, like the instances'
own secrets are bound to their row and column.
"""

from __future__ import annotations

from pydantic import SecretStr

from db.sealing import KeyRing, SealedSecretError, associated_data

_TABLE = "bot_state"


def seal_pending(ring: KeyRing, telegram_user_id: int, field: str, value: str) -> str:
    return ring.seal(value, associated_data(_TABLE, telegram_user_id, field))


def open_pending(ring: KeyRing, telegram_user_id: int, field: str, sealed: str | None) -> SecretStr | None:
    """The secret, or None when there is none or it no longer opens (its key was dropped)."""
    if not sealed:
        return None
    try:
        return SecretStr(ring.open(sealed, associated_data(_TABLE, telegram_user_id, field)))
    except SealedSecretError:
        return None
