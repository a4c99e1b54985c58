"""When the gateway is down, slow, quiet, busy or dies mid-answer, and when the client hangs up:
a short page a person can read, or a cut-short answer, and nothing left behind."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.web.proxy.conftest import KEY, settled, unused_port
from web.proxy import ProxyLimits

WAIT_S = 10  # only bounds a hang
QUICK = ProxyLimits(connect_timeout_s=0.3, response_timeout_s=0.3, idle_timeout_s=0.3)


def _assert_a_page_for_people(status: int, content_type: str, text: str, port: int) -> None:
    assert content_type == "text/plain"
    assert 0 < len(text) < 200 and "127.0.0.1" not in text and str(port) not in text
    assert "Traceback" not in text and "Error" not in text


async def test_a_gateway_that_is_not_listening_answers_502(proxied) -> None:
    port = unused_port()
    async with proxied(base_url=f"http://127.0.0.1:{port}") as p, p.client.get(p.at("/")) as response:
        assert response.status == 502
        _assert_a_page_for_people(response.status, response.content_type, await response.text(), port)
        assert p.proxy.open_count(KEY) == 0


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose connection attempts are never answered: its listener's queue is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # the kernel answers backlog + 1 attempts, then drops the rest
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for each in [*fillers, listener]:
            each.close()


async def test_a_gateway_that_does_not_accept_answers_502_after_the_connect_timeout(proxied) -> None:
    with unanswered_port() as port:
        async with proxied(QUICK, base_url=f"http://127.0.0.1:{port}") as p, p.client.get(p.at("/")) as response:
            assert response.status == 502


async def test_a_gateway_slow_to_answer_gets_504(proxied, seen) -> None:
    async with proxied(QUICK) as p, p.client.get(p.at("/slow")) as response:
        assert response.status == 504
        _assert_a_page_for_people(response.status, response.content_type, await response.text(), 0)
        assert seen.requests == ["/slow"]


async def test_a_stream_gone_quiet_is_closed(proxied, seen) -> None:
    seen.gate("event 0").set()
    async with proxied(QUICK) as p, p.client.get(p.at("/events")) as response:
        assert await response.content.readuntil(b"\n\n") == b"data: event 0\n\n"
        with pytest.raises(aiohttp.ClientPayloadError):  # cut short: no last chunk
            await asyncio.wait_for(response.read(), WAIT_S)
    await settled(p)


async def test_a_websocket_gone_quiet_is_closed(proxied) -> None:
    async with proxied(QUICK) as p, p.client.ws_connect(p.at("/ws")) as socket:
        message = await asyncio.wait_for(socket.receive(), WAIT_S)
        assert message.type is WSMsgType.CLOSE and message.data == 1001
    await settled(p)


async def test_over_the_cap_answers_503_without_asking_the_gateway(proxied, seen) -> None:
    async with proxied(ProxyLimits(max_connections_per_upstream=2)) as p:
        held = await p.client.get(p.at("/hold"))
        socket = await p.client.ws_connect(p.at("/ws"))
        assert p.proxy.open_count(KEY) == 2
        async with p.client.get(p.at("/echo")) as response:
            assert response.status == 503 and int(response.headers["Retry-After"]) > 0
            _assert_a_page_for_people(response.status, response.content_type, await response.text(), 0)
        async with p.client.get(p.at("/ws-refused"), headers={"Upgrade": "websocket", "Connection": "Upgrade"}) as refused:
            assert refused.status == 503
        assert seen.requests == ["/hold"]  # neither the third request nor the upgrade reached it
        held.close()
        await socket.close()
        await settled(p)
        async with p.client.get(p.at("/echo")) as response:
            assert response.status == 200


@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_a_gateway_that_dies_mid_answer_cuts_the_clients_answer_short(proxied, framing, caplog) -> None:
    query = "?length=100000" if framing == "length" else ""
    async with proxied() as p, p.client.get(p.at(f"/dies{query}")) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(response.read(), WAIT_S)
    await settled(p)
    assert not [record for record in caplog.records if record.levelno >= 40]


async def test_a_gateway_that_dies_before_finishing_a_short_answer_gets_a_502_page(proxied, caplog) -> None:
    async with proxied() as p, p.client.get(p.at("/dies?length=1000")) as response:
        assert response.status == 502  # a short answer is sent whole or not at all
        _assert_a_page_for_people(response.status, response.content_type, await response.text(), 0)
    await settled(p)
    assert not [record for record in caplog.records if record.levelno >= 40]


@pytest.mark.parametrize("handler_cancellation", [True, False])
async def test_a_client_that_hangs_up_mid_answer_lets_go_of_the_gateway(proxied, seen, handler_cancellation) -> None:
    async with proxied(handler_cancellation=handler_cancellation) as p:
        response = await p.client.get(p.at("/hold"))
        assert await response.content.readline() == b"first part\n"
        response.close()  # the browser's tab closed
        await asyncio.wait_for(seen.gate("hold released").wait(), WAIT_S)
        await settled(p)
