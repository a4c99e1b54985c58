"""The error middleware's net under routes that read the request by hand: what decoding a
client's bytes raises is a 400, logged as information without a traceback, and a bug of ours
is still a 500 logged with its traceback. A request aiohttp cannot parse at all is logged the
same way, once the platform's logging is configured."""

from __future__ import annotations

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.log_capture import platform_logs
from tests.web.raw_http import raw_request
from web.errors import json_errors


async def _read_by_hand(request: web.Request) -> web.Response:
    return web.json_response({"got": await request.json()})


async def _buggy(request: web.Request) -> web.Response:
    return web.json_response({}[request.method])  # a KeyError: ours, not the client's


@pytest.fixture
async def server():
    app = web.Application(middlewares=[json_errors])
    app.router.add_post("/by-hand", _read_by_hand)
    app.router.add_get("/buggy", _buggy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.mark.parametrize(("headers", "body"), [
    ({"Content-Type": b"application/json; charset=bogus"}, b"{}"),
    ({"Content-Type": b"application/json"}, b"{not json"),
    ({"Content-Type": b"application/json"}, b'{"a": "\xff"}'),
    ({"Content-Type": b"application/json; charset=utf-16"}, b"{}"),
])
async def test_what_a_client_sent_and_could_not_be_decoded_is_a_400(server, headers, body) -> None:
    with structlog.testing.capture_logs() as events:
        answer = await raw_request(server.host, server.port, "POST", "/by-hand", headers=headers, body=body)
    assert answer.status == 400, answer
    assert answer.json()["error"]["code"] == "invalid_input"
    assert [(event["log_level"], "exc_info" in event) for event in events] == [("info", False)]


async def test_a_body_that_does_not_decompress_is_a_400(server) -> None:
    headers = {"Content-Encoding": b"gzip", "Content-Type": b"application/json"}
    with structlog.testing.capture_logs() as events:
        answer = await raw_request(server.host, server.port, "POST", "/by-hand", headers=headers, body=b"not gzip")
    assert answer.status == 400, answer
    assert [(event["log_level"], "exc_info" in event) for event in events] == [("info", False)]


async def test_a_bug_of_ours_is_still_a_500_with_its_traceback(server) -> None:
    with structlog.testing.capture_logs() as events:
        answer = await raw_request(server.host, server.port, "GET", "/buggy")
    assert answer.status == 500 and answer.json()["error"]["code"] == "internal_error"
    assert [event["log_level"] for event in events] == ["error"] and events[0]["exc_info"]


@pytest.fixture
def logged():
    with platform_logs("INFO") as stream:
        yield stream


@pytest.mark.parametrize("headers", [{"X-Note": b"a\x01b"}, {"X-" + "n" * 9000: b"1"}, {"X-Note": b"a\x00b"}])
async def test_a_request_aiohttp_cannot_parse_is_one_info_line(server, logged, headers) -> None:
    answer = await raw_request(server.host, server.port, "GET", "/buggy", headers=headers)
    assert answer.status == 400, answer
    lines = logged.getvalue().splitlines()
    assert [line for line in lines if "Error handling request" in line], lines
    assert all("[info" in line for line in lines if "Error handling request" in line), lines
    assert "Traceback" not in logged.getvalue() and "[error" not in logged.getvalue(), lines
