"""Property: no body sent to any route, and no Authorization, webhook secret or other header,
gets a 5xx from the real app (over SQLite, its bot in webhook mode, one app for every example);
a 400 always names the field; nothing is logged as an error. The routes come from the app's
router, so a route added tomorrow is fuzzed too. Instance hosts too: any request, with the
owner's cookie or anyone's, to a running instance's host or one that does not exist."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import structlog
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import delete

from accounts import tokens
from clawfleet.settings import Settings
from db.models import ApiToken, User
from tests.fakes.telegram import FakeTelegram
from tests.support.api_client import Api, migrated, running_api
from tests.support.memory_runtime import MemoryRuntime
from tests.web.raw_http import RawAnswer, raw_request
from web.instance_site.visitors import Visitor, cookie_name, sealed_visitor

OPENAI_KEY = "sk-proj-canaryCANARYcanary0123456789"
WEBHOOK_SECRET = "webhook-secret-0123456789"
BODY_METHODS = {"POST", "PUT", "PATCH"}  # the methods whose routes may read a body
CHANGES_NOTHING = {"GET", "HEAD", "PUT", "PATCH"}  # may be sent the real instance's id (PUT changes config only)
UNKNOWN_ID = str(uuid.UUID(int=1))
FUZZ = settings(max_examples=250, deadline=None)  # a few seconds for each property
TOKEN_BATCH = 50


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with the placeholders filled in

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Target:
    api: Api
    user: User
    routes: list[Route]
    fields: dict[Route, list[str]]  # what each route's body takes, as its unknown-field error says
    errors_logged: list[logging.LogRecord]
    subdomain: str = ""  # the running instance's
    owner_cookie: bytes = b""  # its host's cookie, as its sign-in sets it
    unused_tokens: list[str] = field(default_factory=list)  # of fresh_token's batch, not yet sent
    used_token_ids: list[uuid.UUID] = field(default_factory=list)  # that batch's, deleted with the next

    async def fresh_token(self) -> str:
        """A token of the fuzzing user for one request (logout revokes the one it is sent).
        Issued a batch at a time, the batch before deleted: one write per request, and thousands
        of tokens left, would make the run (and every page listing the tokens) crawl."""
        if not self.unused_tokens:
            async with self.api.platform.sessions() as session:
                if self.used_token_ids:
                    await session.execute(delete(ApiToken).where(ApiToken.id.in_(self.used_token_ids)))
                batch = [tokens.issue(session, self.user, kind="api", name="fuzz") for _ in range(TOKEN_BATCH)]
                await session.flush()
                self.used_token_ids = [issued.record.id for issued in batch]
                await session.commit()
            self.unused_tokens = [issued.token for issued in batch]
        return self.unused_tokens.pop()

    async def send(self, route: Route, headers: dict[str, bytes], body: bytes, host: bytes | None = None
                   ) -> RawAnswer:
        server = self.api.server
        self.errors_logged.clear()
        with structlog.testing.capture_logs() as events:
            answer = await raw_request(server.host, server.port, route.method, route.path, headers=headers,
                                       body=body, host_header=host)
        errors = [event for event in events if event["log_level"] in ("error", "exception", "critical")]
        assert answer.status < 500, (str(route), answer)
        assert not errors and not self.errors_logged, (str(route), errors, self.errors_logged)
        if answer.status == 400 and answer.headers.get("content-type", "").startswith("application/json") \
                and route.method != "HEAD":  # a HEAD answer has the headers of a body, never the body
            assert "field" in answer.json()["error"], (str(route), answer)
        return answer


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def _routes(app: web.Application, instance_id: str) -> list[Route]:
    """Every route of the app, its placeholders filled: the real instance's id where the method
    changes nothing but config, an unknown id where it acts (start, stop, delete), and a value
    the placeholder's pattern takes for the others ({action:start|stop|restart})."""
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info()
        if "prefix" in info:  # the static files
            routes.append(Route(route.method, info["prefix"] + "/app.css"))
            continue
        if "path" in info:  # no placeholders
            routes.append(Route(route.method, info["path"]))
            continue
        known = instance_id if route.method in CHANGES_NOTHING else UNKNOWN_ID
        path = info["formatter"]
        for name in re.findall(r"\{(\w+)\}", path):
            path = path.replace("{" + name + "}", _value_for(info["pattern"].pattern, name, known))
        routes.append(Route(route.method, path))
    return routes


def _value_for(pattern: str, name: str, preferred: str) -> str:
    """`preferred` if the placeholder's own pattern takes it, else the first literal it takes."""
    start = pattern.index(f"(?P<{name}>") + len(f"(?P<{name}>")
    depth, end = 1, start
    while depth:  # to the group's closing parenthesis
        depth += {"(": 1, ")": -1}.get(pattern[end], 0) if pattern[end - 1] != "\\" else 0
        end += 1
    own = pattern[start:end - 1]
    return next(choice for choice in [preferred, *own.replace("\\", "").split("|")] if re.fullmatch(own, choice))


@pytest.fixture(scope="module")  # one app for every example of the properties
async def target(tmp_path_factory) -> AsyncIterator[Target]:
    runtime = MemoryRuntime()
    errors_logged: list[logging.LogRecord] = []
    collect = _Collect(errors_logged)
    logging.getLogger().addHandler(collect)
    try:
        async with FakeTelegram() as telegram:
            bot = telegram.add_bot(username="clawfleet_bot")
            app_settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("never-5xx"),
                                    telegram_api_url=telegram.api_url, telegram_bot_token=bot.token,
                                    telegram_mode="webhook", telegram_webhook_secret=SecretStr(WEBHOOK_SECRET),
                                    public_url="http://127.0.0.1:9", start_timeout_s=5,
                                    trusted_proxies=["127.0.0.1/32"])  # so X-Forwarded-For is read
            await migrated(app_settings)
            async with running_api(app_settings, runtime) as api:
                await api.sign_up()
                status, created = await api.call("POST", "/api/instances",
                                                 {"model_provider": "openai", "api_key": OPENAI_KEY})
                assert status == 202, created
                user = await api.platform.accounts.user_for_token(api.token)
                routes = _routes(api.server.app, created["id"])
                target = Target(api, user, routes, {}, errors_logged)
                for route in routes:
                    if route.method in BODY_METHODS:
                        target.fields[route] = await _fields_of(target, route)
                await api.wait_status(created["id"], "running", timeout=30)
                instance = await api.platform.instances.get(user, created["id"])
                session = (await api.platform.accounts.start_session(user)).record
                visitor = sealed_visitor(api.platform.instances.keyring, instance.id, Visitor(user.id, session.id))
                target.subdomain = instance.subdomain
                target.owner_cookie = f"{cookie_name(False)}={visitor}".encode()
                yield target
    finally:
        logging.getLogger().removeHandler(collect)
        await runtime.close()


async def _fields_of(target: Target, route: Route) -> list[str]:
    probe = json.dumps({"\N{WHITE QUESTION MARK ORNAMENT}": 0}).encode()
    server = target.api.server
    answer = await raw_request(server.host, server.port, route.method, route.path,
                               headers=await _headers(target, b"application/json"), body=probe)
    if answer.status != 400 or not answer.headers.get("content-type", "").startswith("application/json"):
        return []  # a page's form answers a page
    return answer.json()["error"].get("allowed", [])


async def _headers(target: Target, content_type: bytes | None, token: str | None = None) -> dict[str, bytes]:
    headers = {"Authorization": f"Bearer {token or await target.fresh_token()}".encode(),
               "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET.encode()}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


# -- what is sent ---------------------------------------------------------------------------
_tricky_characters = st.one_of(
    st.characters(), st.characters(categories=["Cs"]), st.sampled_from("\x00²³١٢\ufeff\u202e"))
_text = st.text(_tricky_characters, max_size=40)
_numbers = st.one_of(st.integers(), st.integers(min_value=2**62, max_value=10**40),
                     st.integers(min_value=-(10**40), max_value=-(2**62)), st.floats(), st.booleans())


_json_values = st.recursive(st.none() | _numbers | _text,
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                            max_leaves=12)


def _objects(fields: list[str]) -> st.SearchStrategy[bytes]:
    """Objects of the route's own fields (plus strangers), with values of any shape."""
    keys = st.sampled_from(fields) | _text if fields else _text
    plausible = st.sampled_from(["openai", "anthropic", OPENAI_KEY, "4242", 4242, UNKNOWN_ID, "update_id"])
    values = st.one_of(plausible, _json_values)
    return st.dictionaries(keys, values, max_size=6).map(lambda body: json.dumps(body).encode())


def _hand_made(fields: list[str]) -> st.SearchStrategy[bytes]:
    """What json.dumps never writes: deep nesting, thousands of digits, broken text, raw bytes."""
    field = st.sampled_from(fields or ["x"])
    deep = st.builds(_nested, st.integers(1, 30_000), st.sampled_from(["[]", '{"a":}']))
    digits = st.tuples(field, st.integers(15, 6000), st.sampled_from(["", "-", "0.", "1e"])).map(
        lambda spec: ('{"%s": %s%s}' % (spec[0], spec[2], "9" * spec[1])).encode())
    escapes = st.tuples(field, st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\ud83d", "\\x", "\\u12"])).map(
        lambda spec: ('{"%s": "a%sb"}' % spec).encode())
    return st.one_of(deep, digits, escapes, st.binary(max_size=200))


def _nested(depth: int, brackets: str) -> bytes:
    opening, closing = brackets[:-1], brackets[-1]
    return (opening * depth + "1" * (opening[0] == "{") + closing * depth).encode()


_content_types = st.one_of(
    st.sampled_from([b"application/json", b"application/json; charset=utf-8", b"application/json; charset=UTF8",
                     b"application/json; charset=bogus", b"application/json; charset=latin-1",
                     b"application/json; charset=utf-16", b"text/plain", b"application/json; charset=\xff"]),
    st.none())

# Header bytes an HTTP parser lets through (no CR, LF, NUL or other control but tab).
_header_bytes = st.binary(max_size=80).map(
    lambda raw: bytes(byte for byte in raw if byte == 9 or 32 <= byte != 127))


# -- the properties -------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
async def test_no_body_gets_a_5xx_from_any_route(target: Target, data) -> None:
    route = data.draw(st.sampled_from([route for route in target.routes if route.method in BODY_METHODS]),
                      label="route")
    fields = target.fields[route]
    body = data.draw(st.one_of(_objects(fields), _hand_made(fields)), label="body")
    content_type = data.draw(_content_types, label="content type")
    await target.send(route, await _headers(target, content_type), body)


@FUZZ
@given(data=st.data())
async def test_no_auth_header_gets_a_5xx_from_any_route(target: Target, data) -> None:
    route = data.draw(st.sampled_from(target.routes), label="route")
    scheme = data.draw(st.sampled_from([b"Bearer ", b"bearer  ", b"Basic ", b""]), label="scheme")
    token = data.draw(st.one_of(_header_bytes, _header_bytes.map(lambda raw: b"cf_" + raw)), label="token")
    secret = data.draw(st.one_of(_header_bytes, _header_bytes.map(lambda raw: WEBHOOK_SECRET.encode() + raw)),
                       label="secret")
    headers = {"Authorization": scheme + token, "X-Telegram-Bot-Api-Secret-Token": secret,
               "Content-Type": b"application/json"}
    body = b'{"update_id": 1}' if route.method in BODY_METHODS else b""
    answer = await target.send(route, headers, body)
    if route.path.startswith("/api/instances"):
        assert answer.status in (401, 404, 405), (str(route), answer)  # none of these is a real token


OTHER_HEADERS = ["Accept", "Content-Type", "Cookie", "Origin", "X-Forwarded-For", "If-None-Match"]
_event_ids = st.builds(lambda action, seen: action + b":" + seen, st.sampled_from([b"1", b"2", b""]), st.one_of(
    _header_bytes, st.sampled_from(["²", "١٢", "-1", "1.5"]).map(str.encode),
    st.sampled_from([0, 18, 19, 30, 4301, 6000]).map(lambda n: b"9" * n)))
_hops = st.one_of(st.ip_addresses().map(lambda ip: str(ip).encode()), _header_bytes,
                  st.sampled_from([b"fe80::1%eth0", b"::ffff:10.0.0.1", b"unknown"]))
_other_values = st.one_of(_header_bytes, st.lists(_hops, max_size=4).map(b", ".join),
                          st.sampled_from([b"text/event-stream", b"application/json"]))


@settings(FUZZ, max_examples=60)  # each example makes one request per route
@given(data=st.data())
async def test_no_other_header_gets_a_5xx_from_any_route(target: Target, data) -> None:
    """Logged in, so the routes read on; each made-up set of headers goes to every route: a
    Last-Event-ID always (the progress stream takes it apart), and X-Forwarded-For is believed
    (the app trusts loopback as its proxy)."""
    made_up = data.draw(st.fixed_dictionaries({"Last-Event-ID": st.one_of(_event_ids, _header_bytes)},
                                              optional={name: _other_values for name in OTHER_HEADERS}),
                        label="headers")
    token = await target.fresh_token()  # one per example: a new one per request costs a write each
    for route in target.routes:
        body = b"{}" if route.method in BODY_METHODS else b""
        answer = await target.send(route, {**await _headers(target, b"application/json", token), **made_up}, body)
        if answer.status == 401:  # a route before revoked it (logout): this one goes again, signed in
            token = await target.fresh_token()
            await target.send(route, {**await _headers(target, b"application/json", token), **made_up}, body)


_hosts = st.one_of(
    st.sampled_from(["{sub}.localhost:9", "{sub}.localhost", "{sub}.LOCALHOST:9", "claw-0000000000.localhost:9",
                     "x.{sub}.localhost:9", ".localhost:9", "{sub}.localhost:99999", "{sub}.localhost:-1"]),
    _header_bytes.map(lambda raw: raw.decode("latin-1") + ".localhost:9"))
_paths = st.one_of(
    st.sampled_from(["/", "/_clawfleet/sign-in", "/_clawfleet/start", "/_clawfleet/", "/_clawfleet/sign-in?code=",
                     "/api/users/x/avatar", "/readyz", "//evil.example/", "/%2e%2e/%00", "/?next=//evil.example"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"), max_size=40).map(
        lambda text: "/" + text),
    st.builds(lambda code, after: f"/_clawfleet/sign-in?code={code}&next={after}",
              st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#&"), max_size=30),
              st.sampled_from(["/", "//evil.example", "https://evil.example/", "%2F%2Fevil", "/\\evil"])))
UPGRADE = {"Connection": b"Upgrade", "Upgrade": b"websocket", "Sec-WebSocket-Version": b"13",
           "Sec-WebSocket-Key": b"dGhlIHNhbXBsZSBub25jZQ=="}


@FUZZ
@given(data=st.data())
async def test_no_request_to_an_instance_host_gets_a_5xx(target: Target, data) -> None:
    """Signed in as the owner (the proxy then reaches the instance's gateway, a loopback server
    of the in-memory runtime) or not, a known host or not: never a 5xx, nothing logged as an error."""
    host = data.draw(_hosts, label="host").replace("{sub}", target.subdomain)
    path = data.draw(_paths, label="path")
    method = data.draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]), label="method")
    cookie = data.draw(st.one_of(st.just(target.owner_cookie), _header_bytes,
                                 _header_bytes.map(lambda raw: f"{cookie_name(False)}=".encode() + raw)),
                       label="cookie")
    headers = data.draw(st.fixed_dictionaries({"Cookie": st.just(cookie)},
                                              optional={name: _other_values for name in OTHER_HEADERS
                                                        if name != "Cookie"}),
                        label="headers")
    if data.draw(st.booleans(), label="upgrade"):
        headers |= UPGRADE
    body = data.draw(st.binary(max_size=200), label="body") if method in BODY_METHODS else b""
    await target.send(Route(method, path), headers, body, host=host.encode("latin-1"))


async def test_the_fuzzed_owner_cookie_reaches_the_gateway(target: Target) -> None:
    """What makes the property above cover the proxy: the owner's cookie it draws is let through."""
    host = f"{target.subdomain}.localhost:9".encode()
    through = await target.send(Route("GET", "/readyz"), {"Cookie": target.owner_cookie}, b"", host=host)
    assert through.status == 200  # the in-memory gateway's own /readyz, through the proxy
    stopped = await target.send(Route("GET", "/readyz"), {"Cookie": b"clawfleet_instance=x"}, b"", host=host)
    assert stopped.status == 303  # anyone else: sent to the dashboard's door


def test_every_route_is_fuzzed(target: Target) -> None:
    """The routes are the router's, their placeholders filled and their fields learnt."""
    real_id = next(route.path.split("/")[3] for route in target.routes
                   if route.method == "GET" and route.path.startswith("/api/instances/"))
    served = {str(route) for route in target.routes}
    assert {"POST /api/auth/register", "POST /api/instances", f"PUT /api/instances/{real_id}/config",
            f"POST /api/instances/{UNKNOWN_ID}/start", "POST /api/webhooks/telegram"} <= served, served
    assert target.fields[Route("POST", "/api/auth/register")] == ["email", "password"]
