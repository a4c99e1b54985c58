"""Input a client could send that once broke a route: each gets a 400 naming the field (a 401
for credentials that cannot be read), never a 500, and leaves no error in the log."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from pydantic import SecretStr

from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.web.raw_http import RawAnswer, raw_request

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
PASSWORD = "correct horse battery"
WEBHOOK_SECRET = "webhook-secret-0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
def no_errors_logged(caplog):
    """Fails the test if anything was logged as an error: our own events or aiohttp's records."""
    with structlog.testing.capture_logs() as events:
        yield
    ours = [event for event in events if event["log_level"] in ("error", "exception", "critical")]
    theirs = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not ours and not theirs, (ours, [record.getMessage() for record in theirs])


@pytest.fixture
async def api(settings_for, sessions, no_errors_logged):
    runtime = MemoryRuntime()
    async with running_api(settings_for(), runtime) as api:
        await api.sign_up()
        yield api
    await runtime.close()


@pytest.fixture
async def webhook_api(settings_for, sessions, telegram, no_errors_logged):
    """The platform with its bot in webhook mode."""
    bot = telegram.add_bot(username="clawfleet_bot")
    runtime = MemoryRuntime()
    settings = settings_for(telegram_bot_token=bot.token, telegram_mode="webhook",
                            telegram_webhook_secret=SecretStr(WEBHOOK_SECRET), public_url="http://127.0.0.1:9")
    async with running_api(settings, runtime) as api:
        yield api
    await runtime.close()


async def _send(api: Api, method: str, path: str, body: bytes, headers: dict[str, bytes] | None = None,
                *, token: bool = True) -> RawAnswer:
    fields = {"Content-Type": b"application/json"}
    if token:
        fields["Authorization"] = f"Bearer {api.token}".encode()
    fields.update(headers or {})
    return await raw_request(api.server.host, api.server.port, method, path, headers=fields, body=body)


def _refused(answer: RawAnswer, field: str, status: int = 400) -> dict:
    assert answer.status == status, answer
    error = answer.json()["error"]
    assert error["field"] == field, error
    return error


# -- the body ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("depth", "field"), [(20_000, "body"), (33, "email")])
async def test_deeply_nested_json_is_refused(api: Api, depth: int, field: str) -> None:
    """Deeper than the parser goes (RecursionError), and deeper than MAX_DEPTH but parseable."""
    deep = b"[" * depth + b"]" * depth
    body = deep if field == "body" else b'{"email": ' + deep + b', "password": "correct horse battery"}'
    error = _refused(await _send(api, "POST", "/api/auth/register", body, token=False), field)
    assert "nested too deeply" in error["message"]


async def test_a_body_over_the_size_limit_is_a_413(api: Api) -> None:
    """64 KiB at most: the largest request of the API is a few keys and tokens."""
    big = json.dumps({"email": "ada@example.com", "password": "p" * 100_000}).encode()
    answer = await _send(api, "POST", "/api/auth/register", big, token=False)
    assert answer.status == 413 and answer.json()["error"]["code"] == "request_entity_too_large"

    async def chunks():  # no Content-Length: the reader counts as it goes
        for start in range(0, len(big), 4096):
            yield big[start:start + 4096]

    async with api.http.post(api.url("/api/auth/register"), data=chunks(),
                             headers={"Content-Type": "application/json"}) as response:
        assert response.status == 413


async def test_a_5000_digit_integer_is_refused_naming_its_field(api: Api) -> None:
    body = b'{"model_provider": "openai", "api_key": "%s", "telegram_user_id": %s}' % (
        OPENAI_KEY.encode(), b"7" * 5000)
    error = _refused(await _send(api, "POST", "/api/instances", body), "telegram_user_id")
    assert "64" in error["message"]


async def test_a_bogus_charset_is_refused(api: Api) -> None:
    body = json.dumps({"email": "ada@example.com", "password": PASSWORD}).encode()
    answer = await _send(api, "POST", "/api/auth/register", body,
                         {"Content-Type": b"application/json; charset=bogus"}, token=False)
    error = _refused(answer, "Content-Type")
    assert "UTF-8" in error["message"]


async def test_a_body_that_is_not_utf8_or_does_not_decompress_is_refused(api: Api) -> None:
    answer = await _send(api, "POST", "/api/auth/register", b'{"email": "\xff@example.com"}', token=False)
    _refused(answer, "body")
    answer = await _send(api, "POST", "/api/auth/register", b"not gzip", {"Content-Encoding": b"gzip"}, token=False)
    _refused(answer, "body")


@pytest.mark.parametrize("route", ["/api/auth/register", "/api/auth/login"])
@pytest.mark.parametrize(("field", "body"), [
    ("email", '{"email": "ada\\ud800@example.com", "password": "correct horse battery"}'),
    ("password", '{"email": "ada@example.com", "password": "correct horse \\udfff battery"}'),
    ("email", '{"email": "ada\\u0000@example.com", "password": "correct horse battery"}'),
])
async def test_lone_surrogates_and_nul_in_a_string_are_refused(api: Api, route: str, field: str, body: str) -> None:
    await api.sign_up("ada@example.com")  # so the login checks the password against a real hash
    error = _refused(await _send(api, "POST", route, body.encode(), token=False), field)
    assert "character" in error["message"]


# -- the headers ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [b"Bearer cf_\xff\xfe\xfd", b"Bearer \xc3\x28", b"\xff\xff cf_abc"])
async def test_an_authorization_header_that_is_not_utf8_is_a_401(api: Api, value: bytes) -> None:
    answer = await _send(api, "GET", "/api/instances", b"", {"Authorization": value}, token=False)
    _refused(answer, "Authorization", status=401)
    # on a route that needs no login, an unreadable token is as good as none
    answer = await _send(api, "POST", "/api/auth/login",
                         json.dumps({"email": "nobody@example.com", "password": PASSWORD}).encode(),
                         {"Authorization": value}, token=False)
    assert answer.status == 401 and answer.json()["error"]["code"] == "unauthorized"


async def test_a_last_event_id_that_is_no_event_id_replays_from_the_start(api: Api) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    [(last_id, _), *_] = (await api.progress_with_ids(created["id"]))[::-1]
    action = last_id.split(":")[0]
    for value in (f"{action}:²".encode(), f"{action}:".encode() + b"9" * 5000, f"{action}:{10**30}".encode(),
                  f"{action}:\xff".encode("latin-1")):
        answer = await _send(api, "GET", f"/api/instances/{created['id']}/progress", b"",
                             {"Last-Event-ID": value, "Accept": b"text/event-stream"})
        assert answer.status == 200, (value, answer)
        assert b"id: %s:1\r\n" % action.encode() in answer.body, (value, answer)


@pytest.mark.parametrize("value", [b"webhook-secret-\xff\xfe", b"\xc3\x28", WEBHOOK_SECRET.encode() + b"\x80"])
async def test_a_webhook_secret_that_is_not_utf8_is_a_401(webhook_api: Api, value: bytes) -> None:
    update = json.dumps({"update_id": 1}).encode()
    answer = await _send(webhook_api, "POST", "/api/webhooks/telegram", update, {SECRET_HEADER: value}, token=False)
    _refused(answer, SECRET_HEADER, status=401)


async def test_a_webhook_body_that_is_no_update_is_refused(webhook_api: Api) -> None:
    secret = {SECRET_HEADER: WEBHOOK_SECRET.encode()}
    for body, field in ((b"[" * 100_000, "body"), (b'{"update_id": %s}' % (b"9" * 5000), "update_id"),
                        (b'{"update_id": true}', "update_id"), (b'{"update_id": 1, "message": 5}', "message"),
                        (b'{"update_id": 1, "message": {"text": "\\ud800"}}', "message"),
                        (b'{"update_id": 1, "message": {"text": "no id, no date, no chat"}}', "message"),
                        (b'{"update_id": 1, "message": {"message_id": 1, "date": 1e30, "chat": {}}}', "message")):
        answer = await _send(webhook_api, "POST", "/api/webhooks/telegram", body, secret, token=False)
        _refused(answer, field)


# -- telegram_user_id -------------------------------------------------------------------------
BAD_TELEGRAM_IDS = ["²", "١٢٣", 10**30, "1" * 30, 2**63, True, False, 1.5, 12.0, -5, 0, "-5", " 12", "12a", [12],
                    {"id": 12}]


async def test_a_bad_telegram_user_id_is_refused(api: Api) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY})
    assert status == 202, created
    for value in BAD_TELEGRAM_IDS:
        create = {"model_provider": "openai", "api_key": OPENAI_KEY, "telegram_user_id": value}
        status, body = await api.call("POST", "/api/instances", create)
        assert status == 400 and body["error"]["field"] == "telegram_user_id", (value, body)
        status, body = await api.call("PUT", f"/api/instances/{created['id']}/config", {"telegram_user_id": value})
        assert status == 400 and body["error"]["field"] == "telegram_user_id", (value, body)


async def test_a_telegram_user_id_that_fits_64_bits_is_taken(api: Api) -> None:
    status, created = await api.call("POST", "/api/instances", {"model_provider": "openai", "api_key": OPENAI_KEY,
                                                                "telegram_user_id": "4242"})
    assert status == 202 and created["telegram_user_id"] == 4242, created
    for value in (1, 2**52, 2**63 - 1, str(2**63 - 1)):
        status, body = await api.call("PUT", f"/api/instances/{created['id']}/config", {"telegram_user_id": value})
        assert status == 200 and body["instance"]["telegram_user_id"] == int(value), (value, body)
