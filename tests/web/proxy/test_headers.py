"""Which headers cross the proxy: hop-by-hop ones never, the client's claims about who it is
never, the proxy's own X-Forwarded-* always; and the gateway's origin never reaches the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from yarl import URL

from tests.web.proxy.conftest import PUBLIC_ORIGIN
from tests.web.proxy.proxy_server import CLIENT_ADDRESS, PUBLIC_HOST
from tests.web.raw_http import raw_request

CLIENT_HEADERS = {
    "X-Forwarded-For": b"6.6.6.6",
    "X-Forwarded-Proto": b"http",
    "X-Forwarded-Host": b"evil.example",
    "X-Forwarded-Port": b"1",
    "Forwarded": b"for=6.6.6.6;proto=http",
    "X-Real-IP": b"6.6.6.6",
    "X-Owner": b"mallory",  # the proxy's identity header: the client's copy must never arrive
    "X-Session-Secret": b"platform-cookie",
    "Keep-Alive": b"timeout=5",
    "TE": b"trailers",
    "Trailer": b"X-Checksum",
    "Proxy-Authorization": b"Basic bWFsbG9yeTpzZWNyZXQ=",
    "Upgrade": b"h2c",
    "Connection": b"X-Secret-Hop",  # besides raw_request's own "Connection: close"
    "X-Secret-Hop": b"for the next hop only",
    "X-Kept": b"end to end",
}


def _header_values(answer) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in answer.json()["headers"]:
        found.setdefault(name.lower(), []).append(value)
    return found


async def test_the_gateway_hears_the_proxy_about_the_client_never_the_client_itself(proxied, gateway) -> None:
    async with proxied(set_headers={"X-Owner": "ada@example.com"}, strip_headers=frozenset({"x-session-secret"})) as p:
        url = URL(p.url)
        answer = await raw_request(url.host, url.port, "GET", "/echo", headers=CLIENT_HEADERS)
    assert answer.status == 200
    headers = _header_values(answer)
    assert headers["x-forwarded-for"] == [CLIENT_ADDRESS]
    assert headers["x-forwarded-proto"] == ["https"]
    assert headers["x-forwarded-host"] == [PUBLIC_HOST]
    assert headers["x-owner"] == ["ada@example.com"]
    assert headers["host"] == [f"127.0.0.1:{gateway.port}"]
    assert headers["x-kept"] == ["end to end"]
    for gone in ("x-forwarded-port", "forwarded", "x-real-ip", "x-session-secret", "keep-alive", "te", "trailer",
                 "proxy-authorization", "upgrade", "x-secret-hop"):
        assert gone not in headers, gone
    assert "close" not in headers.get("connection", [""])[0] and "x-secret-hop" not in str(headers.get("connection"))


async def test_a_chunked_request_reaches_the_gateway_whole_and_unframed(proxied) -> None:
    async with proxied() as p:
        url = URL(p.url)
        answer = await raw_request(url.host, url.port, "POST", "/echo", body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                                   headers={"Transfer-Encoding": b"chunked"})
    assert answer.json()["body"] == "hello world"


@asynccontextmanager
async def raw_gateway(answer: bytes) -> AsyncIterator[str]:
    """A gateway that writes one answer byte for byte, whatever it is asked."""
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


HOP_BY_HOP_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
                     b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\nX-Keep: yes\r\n\r\nok")


async def test_the_gateways_hop_by_hop_headers_stay_on_its_side(proxied) -> None:
    async with raw_gateway(HOP_BY_HOP_ANSWER) as base_url, proxied(base_url=base_url) as p:
        async with p.client.get(p.at("/anything")) as response:
            assert await response.read() == b"ok"
            headers = response.headers
    assert headers["X-Keep"] == "yes"
    for gone in ("X-Drop", "Keep-Alive", "Proxy-Authenticate", "Trailer"):
        assert gone not in headers, gone
    assert "x-drop" not in headers.get("Connection", "").lower()


async def test_cookies_lose_their_domain_and_stay_with_the_instance_host(proxied) -> None:
    async with proxied() as p, p.client.get(p.at("/cookies")) as response:
        cookies = response.headers.getall("Set-Cookie")
    assert cookies == ["session=abc; Path=/; HttpOnly", "theme=dark; Path=/; Secure", "plain=1; Path=/"]


async def test_a_redirect_to_the_gateway_itself_points_at_the_public_origin_and_is_not_followed(proxied, gateway,
                                                                                                  seen) -> None:
    own = f"http://127.0.0.1:{gateway.port}/echo/landed?x=1"
    async with proxied() as p:
        async with p.client.get(p.at("/redirect"), params={"to": own}, allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == f"{PUBLIC_ORIGIN}/echo/landed?x=1"
        elsewhere = "https://docs.example.org/help"
        async with p.client.get(p.at("/redirect"), params={"to": elsewhere}, allow_redirects=False) as response:
            assert response.headers["Location"] == elsewhere
    assert seen.requests == []  # the proxy followed neither
