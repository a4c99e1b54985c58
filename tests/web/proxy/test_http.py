"""HTTP through the proxy: any method, the path exactly as sent, bodies streamed both ways as
they come and passed as the gateway wrote them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from yarl import URL

from tests.web.proxy.fake_gateway import GZIPPED, LARGE_CHUNK, LARGE_CHUNKS
from web.proxy import ReverseProxy

EVENT_WAIT_S = 10  # only bounds a hang: a proxy that buffers never delivers, however long one waits


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])
async def test_every_method_reaches_the_gateway_with_its_body(proxied, method) -> None:
    async with proxied() as p, p.client.request(method, p.at("/echo"), data=b"payload") as response:
        echoed = await response.json(content_type=None)
    assert (echoed["method"], echoed["body"]) == (method, "payload")


async def test_the_path_and_query_keep_their_escaping(proxied) -> None:
    path = "/echo/a%2Fb%20c/%E2%9C%93;v=1?q=a%2Bb&x=%2F&empty=&flag&plus=a+b"
    async with proxied() as p, p.client.get(URL(p.url + path, encoded=True)) as response:
        assert (await response.json())["raw_path"] == path


async def test_an_upload_reaches_the_gateway_before_the_client_has_finished_sending(proxied, seen) -> None:
    async def body():
        yield b"x" * 1000
        # the rest only once the gateway holds the first part: a buffering proxy never gets here
        await asyncio.wait_for(seen.gate("upload began").wait(), EVENT_WAIT_S)
        for _ in range(100):
            yield b"y" * 10_000

    async with proxied() as p, p.client.post(p.at("/upload"), data=body()) as response:
        assert await response.json() == {"received": 1_001_000}


async def test_server_sent_events_reach_the_client_one_by_one(proxied, seen) -> None:
    async with proxied() as p, p.client.get(p.at("/events")) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        for number in range(3):
            seen.gate(f"event {number}").set()  # the gateway sends the next only after the client has this one
            line = await asyncio.wait_for(response.content.readuntil(b"\n\n"), EVENT_WAIT_S)
            assert line == f"data: event {number}\n\n".encode()


@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_a_large_answer_arrives_whole_in_either_framing(proxied, framing) -> None:
    query = "?length=1" if framing == "length" else ""
    async with proxied() as p, p.client.get(p.at(f"/large{query}")) as response:
        if framing == "length":
            assert response.headers["Content-Length"] == str(len(LARGE_CHUNK) * LARGE_CHUNKS)
        else:
            assert response.headers["Transfer-Encoding"] == "chunked"
        total, chunks = 0, 0
        async for chunk in response.content.iter_any():
            assert LARGE_CHUNK.startswith(chunk[:16]) or chunk[:16] in LARGE_CHUNK
            total += len(chunk)
            chunks += 1
    assert total == len(LARGE_CHUNK) * LARGE_CHUNKS


async def test_compressed_answers_pass_compressed(proxied) -> None:
    async with proxied() as p, p.client.get(p.at("/gzipped"), headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert await response.read() == GZIPPED


async def test_a_head_request_gets_headers_only(proxied) -> None:
    async with proxied() as p, p.client.head(p.at("/large?length=1")) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(LARGE_CHUNK) * LARGE_CHUNKS)
        assert await response.read() == b""


async def test_a_client_session_that_keeps_cookies_is_refused() -> None:
    # one user's gateway cookies would ride along on the next user's requests
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ValueError):
            ReverseProxy(http)
