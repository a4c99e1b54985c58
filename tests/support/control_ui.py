"""OpenClaw's Control UI as a test drives it (OpenClaw 2026.9.6): its WebSocket handshake with a
browser device key of its own, and requests over the socket."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

UI_SCOPES = ["operator.admin", "operator.read", "operator.write", "operator.approvals", "operator.questions",
             "operator.pairing"]  # what OpenClaw's Control UI asks for (2026.9.6)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextlib.asynccontextmanager
async def control_ui(http: aiohttp.ClientSession, url: str, headers: dict[str, str],
                     origin: str) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]]:
    """The Control UI's handshake (OpenClaw 2026.9.6): the gateway's challenge, then a connect request
    signed with a fresh browser device key; yields the socket and the connect's answer."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    device_id = hashlib.sha256(public).hexdigest()
    async with http.ws_connect(url, headers=headers, origin=origin) as ws:
        nonce = (await ws.receive_json(timeout=20))["payload"]["nonce"]  # the connect.challenge event
        signed_at = int(time.time() * 1000)
        signed = "|".join(["v2", device_id, "openclaw-control-ui", "webchat", "operator", ",".join(UI_SCOPES),
                           str(signed_at), "", nonce])  # "": no token, the proxy vouches for the user
        await ws.send_json({"type": "req", "id": "connect", "method": "connect", "params": {
            "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": UI_SCOPES,
            "client": {"id": "openclaw-control-ui", "version": "2026.9.6", "platform": "linux", "mode": "webchat"},
            "device": {"id": device_id, "publicKey": b64url(public), "signature": b64url(key.sign(signed.encode())),
                       "signedAt": signed_at, "nonce": nonce}}})
        yield ws, await answer(ws, "connect")


@contextlib.asynccontextmanager
async def operator_client(http: aiohttp.ClientSession, url: str, token: str,
                          headers: dict[str, str] | None = None) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A backend client of a token-auth gateway's socket (no device: read scope alone, as OpenClaw
    lets a shared-token client in), once its connect is answered."""
    async with http.ws_connect(url, headers=headers or {}) as ws:
        await ws.receive_json(timeout=20)  # the connect.challenge event
        await ws.send_json({"type": "req", "id": "connect", "method": "connect", "params": {
            "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": ["operator.read"],
            "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "mode": "cli"},
            "auth": {"token": token}}})
        connected = await answer(ws, "connect")
        if not connected.get("ok"):
            raise RuntimeError(f"the gateway refused the connect: {connected.get('error')}")
        yield ws


async def answer(ws: aiohttp.ClientWebSocketResponse, request_id: str) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=30)
        if frame.get("type") == "res" and frame.get("id") == request_id:
            return frame


async def call(ws: aiohttp.ClientWebSocketResponse, method: str, params: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json({"type": "req", "id": method, "method": method, "params": params})
    return await answer(ws, method)


def frame_of(payload: str | bytes) -> dict[str, Any]:
    """A frame the Control UI's socket carried, as the JSON object it is (anything else: {})."""
    try:
        value = json.loads(payload)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}
