"""OpenClaw's pairing store as ClawFleet reads it: codes in OpenClaw's alphabet, the pending
request's sender within the hour, and the config that then answers that sender only, the same
as the one rendered for an owner known from the start; the process runtime's side on real files."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.openclaw.config import GatewaySpec, render_config
from provisioner.openclaw.install import OpenClawInstall
from provisioner.openclaw.pairing import STATE_DB, normalized_code, read_request, sender_of, with_owner
from provisioner.runtimes.process import ProcessRuntime, placement

# As OpenClaw 2026.9.6 creates it (openclaw-state-db schema).
SCHEMA = """CREATE TABLE channel_pairing_requests (
  channel_key TEXT NOT NULL, account_id TEXT NOT NULL, request_id TEXT NOT NULL, code TEXT NOT NULL,
  created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, meta_json TEXT,
  PRIMARY KEY (channel_key, account_id, request_id)) STRICT"""
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # OpenClaw's own form


def _store(path: Path, *rows: tuple[str, str, str, datetime]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(SCHEMA)
    for channel, sender, code, created in rows:
        connection.execute("INSERT INTO channel_pairing_requests VALUES (?, 'default', ?, ?, ?, ?, '{}')",
                           (channel, sender, code, _iso(created), _iso(created)))
    connection.commit()
    connection.close()
    return path


@pytest.mark.parametrize(("typed", "code"), [("HX7K2MQP", "HX7K2MQP"), (" hx7k2mqp\n", "HX7K2MQP"),
                                             ("HX7K2MQ", None), ("HX7K2MQPP", None), ("HX7K2MQ0", None),
                                             ("HX7K2MQO", None), ("HX7K2MQ1", None), ("HX7K2MQI", None),
                                             ("HX7K2MQ-", None), ("ＨX7K2MQP", None), (12345678, None), (None, None)])
def test_a_code_is_eight_characters_of_openclaws_alphabet_in_any_case(typed, code) -> None:
    assert normalized_code(typed) == code


def test_the_sender_of_a_pending_telegram_request_within_the_hour(tmp_path) -> None:
    database = _store(tmp_path / "state" / "openclaw.sqlite",
                      ("telegram", "555000111", "HX7K2MQP", NOW - timedelta(minutes=59)),
                      ("telegram", "555000222", "OLDC0DE2", NOW - timedelta(minutes=61)),
                      ("discord", "777", "DISCRD22", NOW))
    assert sender_of(read_request(database, "HX7K2MQP"), NOW) == 555000111
    assert sender_of(read_request(database, "OLDC0DE2"), NOW) is None  # expired
    assert sender_of(read_request(database, "DISCRD22"), NOW) is None  # another channel's
    assert sender_of(read_request(database, "ZZZZ2222"), NOW) is None


def test_no_store_or_no_table_yet_means_no_request(tmp_path) -> None:
    assert read_request(tmp_path / "missing.sqlite", "HX7K2MQP") is None
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    assert read_request(empty, "HX7K2MQP") is None
    assert sender_of(("not-a-user", _iso(NOW)), NOW) is None


def test_the_paired_config_is_the_one_rendered_for_a_known_owner(tmp_path) -> None:
    spec = dict(port=20001, provider="openai", model="gpt-5.5", state_dir=tmp_path / "state",
                log_file=tmp_path / "openclaw.log", secrets_dir=tmp_path / "secrets", telegram=True)
    pairing = render_config(GatewaySpec(**spec))
    assert pairing["channels"]["telegram"]["dmPolicy"] == "pairing"
    assert with_owner(pairing, 555000111) == render_config(GatewaySpec(**spec, telegram_allow_from=555000111))


async def test_the_process_runtime_rewrites_the_config_for_the_sender_only_when_the_code_is_pending(tmp_path) -> None:
    data_dir = tmp_path / "data"
    install = OpenClawInstall(root=data_dir / "runtime", version="0.0.0-test", node=Path("/bin/false"),
                              package_dir=data_dir / "runtime" / "openclaw")
    runtime = ProcessRuntime(data_dir, install)
    instance_id = uuid.uuid4()
    place = placement(runtime.make_layout(instance_id))
    config = render_config(GatewaySpec(port=20001, provider="openai", model="gpt-5.5", state_dir=place.state_dir,
                                       log_file=place.log_file, secrets_dir=place.secrets_dir, telegram=True))
    runtime.write_config(config, place.config_path)
    _store(place.state_dir / STATE_DB, ("telegram", "555000111", "HX7K2MQP", datetime.now(UTC)))

    assert await runtime.approve_pairing(instance_id, {}, "ZZZZ2222") is None
    assert json.loads(place.config_path.read_text()) == config
    assert await runtime.approve_pairing(instance_id, {}, "HX7K2MQP") == 555000111
    assert json.loads(place.config_path.read_text()) == with_owner(config, 555000111)
    assert place.config_path.stat().st_mode & 0o777 == 0o600
