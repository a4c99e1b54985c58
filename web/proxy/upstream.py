"""Where a proxied request goes, and how long and how many the proxy will wait for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Upstream:
    base_url: str  # the gateway, e.g. "http://127.0.0.1:18789"
    key: str  # what the connection cap counts by (an instance id)
    # set on the forwarded request after the client's copies are removed (e.g. the owner's identity header)
    set_headers: Mapping[str, str] = field(default_factory=dict)
    # lower-case request header names never passed on from the client (besides hop-by-hop and X-Forwarded-*)
    strip_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ProxyLimits:
    connect_timeout_s: float = 5.0
    response_timeout_s: float = 60.0  # until the gateway's response headers, once the request is sent
    idle_timeout_s: float = 300.0  # no bytes either way on a streamed body or a WebSocket
    max_connections_per_upstream: int = 64  # requests in flight plus open WebSockets, per Upstream.key
