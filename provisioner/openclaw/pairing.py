"""OpenClaw's Telegram DM pairing store (OpenClaw 2026.9.x), read by ClawFleet to approve a code.

With `dmPolicy: "pairing"` a stranger who messages the bot gets an 8-character code and a row in
`channel_pairing_requests` of the state database (`<state dir>/state/openclaw.sqlite`); codes
expire an hour after the request was made. ClawFleet approves a code by making that sender the
instance's owner (its `telegram_allow_from`) instead of running `openclaw pairing approve`: a
direct read takes milliseconds where each CLI run took 25-44 s on a two-core host with the
gateway running, and the owner then lives in ClawFleet's row, so every later config keeps it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # OpenClaw's: no 0, O, 1 or I
CODE_LENGTH = 8
REQUEST_TTL = timedelta(hours=1)
STATE_DB = Path("state") / "openclaw.sqlite"  # inside the gateway's state dir

# The sender of the pending Telegram request with this code: (sender id, created_at ISO time).
REQUEST_QUERY = ("SELECT request_id, created_at FROM channel_pairing_requests "
                 "WHERE channel_key = 'telegram' AND code = ? ORDER BY created_at DESC LIMIT 1")


def normalized_code(value: object) -> str | None:
    """The code in OpenClaw's form (upper case), or None when it cannot be one."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    if len(code) != CODE_LENGTH or any(char not in CODE_ALPHABET for char in code):
        return None
    return code


def sender_of(row: tuple[object, object] | None, now: datetime) -> int | None:
    """The Telegram user id of a request row, unless it expired (or is not a user id)."""
    if row is None:
        return None
    sender, created_at = row
    try:
        created = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        user_id = int(str(sender))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return user_id if user_id > 0 and now - created <= REQUEST_TTL else None


def with_owner(config: dict[str, Any], user_id: int) -> dict[str, Any]:
    """A gateway's openclaw.json with its Telegram channel answering `user_id` only: what
    render_config writes for an instance whose owner is known. Everything else stays as the
    gateway runs it (a config change waiting for the next restart stays waiting)."""
    channels = config.get("channels") or {}
    telegram = {**channels.get("telegram", {}), "dmPolicy": "allowlist", "allowFrom": [user_id]}
    return {**config, "channels": {**channels, "telegram": telegram}}


def read_request(database: Path, code: str) -> tuple[object, object] | None:
    """The request row with `code` in a state database on this host (read only; blocking)."""
    if not database.exists():
        return None
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(REQUEST_QUERY, (code,)).fetchone()
    except sqlite3.OperationalError:  # no pairing table yet: nobody has asked
        return None
    finally:
        connection.close()


# The same query run by the gateway's own Node inside its container (node:sqlite, Node 22.5+):
# prints the row as JSON, or null.
NODE_QUERY = """
const { DatabaseSync } = require("node:sqlite");
const fs = require("node:fs");
const [path, code, query] = process.argv.slice(1);
if (!fs.existsSync(path)) { console.log("null"); process.exit(0); }
const db = new DatabaseSync(path, { readOnly: true });
try {
  const row = db.prepare(query).get(code);
  console.log(JSON.stringify(row ? [row.request_id, row.created_at] : null));
} catch (error) {
  if (!/no such table/.test(String(error))) throw error;
  console.log("null");
}
"""
