"""The proxy in front of a real OpenClaw gateway: its Control UI's page arrives, and a WebSocket
through the proxy reaches the gateway (whatever it answers first counts: its connect challenge)."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from aiohttp import WSMsgType

from tests.web.proxy.conftest import KEY, settled
from tests.web.proxy.real_gateway import running_gateway

WAIT_S = 30  # only bounds a hang


@pytest.fixture
async def openclaw_gateway(tmp_path, openclaw_install):
    async with running_gateway(tmp_path / "data", openclaw_install) as base_url:
        yield base_url


async def test_the_control_ui_and_the_gateways_socket_through_the_proxy(proxied, openclaw_gateway) -> None:
    async with proxied(base_url=openclaw_gateway) as p:
        async with p.client.get(p.at("/")) as response:
            body = await response.read()
            assert response.status == 200 and response.content_type == "text/html", (response.status, body[:300])
            # compressed as the gateway sent it: the browser's to undo
            page = (gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body).decode()
        assert "<html" in page.lower() and "openclaw" in page.lower()

        async with p.client.ws_connect(p.at("/")) as socket:
            message = await asyncio.wait_for(socket.receive(), WAIT_S)
            if message.type is WSMsgType.TEXT:
                assert json.loads(message.data)["type"] in ("event", "res")
            else:  # a refusal still comes from the gateway: a close frame with its reason
                assert message.type is WSMsgType.CLOSE and message.data not in (1006, 1011), message
        await settled(p)
        assert p.proxy.open_count(KEY) == 0
