"""The model gateway's HTTP server: a listener of its own, apart from the web app's (which the
world reaches), answering only the instances.

    ANY /i/<instance id>/<the provider's own path>   e.g. /i/<id>/v1/messages, /i/<id>/responses

Who may call: a peer on loopback (process-runtime gateways) or in the instance networks'
address pool (docker), and nobody else, whatever they send; then only with the credential of
the instance the route names (as `x-api-key` or a Bearer token, whichever the provider's API
style sends): no credential, or another instance's, is a 401 in the provider's error shape.
A call carrying the instance's live warm-up nonce is answered here (model_gateway.warm_up).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp import web

from model_gateway.activity import ModelActivity
from model_gateway.caps import SpendCaps
from model_gateway.forward import cap_reached, forward
from model_gateway.routes import Routes
from model_gateway.usage_book import Call, UsageBook
from model_gateway.warm_up import WarmUpNonces, answer_warm_up
from provisioner.model_access import ROUTE_PREFIX

log = structlog.get_logger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # a long conversation with images still fits
# Providers answer slowly at times (a long generation pauses between chunks) but never for this long.
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)


@dataclass(frozen=True)
class ModelGatewayConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free one (tests)
    peers: tuple[Network, ...] = LOOPBACK  # who may connect at all
    flush_interval_s: float = 1.0


@dataclass
class ModelGateway:
    """The running listener; `port` is the one it got."""

    port: int
    book: UsageBook
    app: web.Application = field(repr=False)
    warm_ups: WarmUpNonces  # the warm-up turns' nonces, registered by the lifecycle manager
    caps: SpendCaps | None = None
    activity: ModelActivity = field(default_factory=ModelActivity)  # who used their model lately


def allowed_peers(pools: Sequence[str]) -> tuple[Network, ...]:
    return LOOPBACK + tuple(ipaddress.ip_network(pool) for pool in pools)


class Handler:
    def __init__(self, routes: Routes, book: UsageBook, http: aiohttp.ClientSession,
                 peers: tuple[Network, ...], warm_ups: WarmUpNonces, caps: SpendCaps | None = None,
                 activity: ModelActivity | None = None) -> None:
        self.routes, self.book, self.http, self.peers, self.caps = routes, book, http, peers, caps
        self.warm_ups = warm_ups
        self.activity = activity or ModelActivity()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._peer_allowed(request):
            raise web.HTTPForbidden(text="The model gateway answers only ClawFleet's instances.\n")
        try:
            instance_id = uuid.UUID(request.match_info["instance"])
        except ValueError:
            raise web.HTTPNotFound(text="No such route.\n") from None
        credential = presented_credential(request)
        route = await self.routes.resolve(instance_id, credential) if credential else None
        if route is None:
            # The style is not known before the route is: both shapes' fields in one body.
            return web.json_response({"type": "error", "error": {
                "type": "authentication_error", "message": "invalid model gateway credential"}}, status=401)
        body = await request.read()
        nonce = self.warm_ups.carried_by(route.instance_id, body)
        if nonce is not None:  # the platform's warm-up turn, not the owner's: no meter, no cap
            response = await answer_warm_up(request, route.provider.api, request.match_info["tail"], body)
            self.warm_ups.answered(route.instance_id, nonce)
            return response
        if self.caps is not None:
            refused = await self.caps.refusal(route.user_id, route.key_source)
            if refused is not None:
                return cap_reached(route, refused)
        with self.activity.call(route.instance_id):
            response, outcome = await forward(self.http, request, route, request.match_info["tail"], body)
        self.book.record(Call(route.instance_id, route.user_id, route.provider.id,
                              outcome.model or "unknown", outcome.usage, outcome.failed, route.key_source))
        if self.caps is not None:  # the answer is out already: this holds nothing up
            await self.caps.after_call(route.user_id)
        return response

    def _peer_allowed(self, request: web.Request) -> bool:
        try:
            peer = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self.peers)


def presented_credential(request: web.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_model_gateway_app(handler: Handler) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, handler_args={"max_field_size": 16384})
    app.router.add_route("*", ROUTE_PREFIX + "{instance}/{tail:.*}", handler.handle)
    return app


def upstream_session_options() -> dict:
    """How the HTTP client to the providers is made (by the composition root): no cap on
    connections (every stream holds one), answers decoded (the meter reads them)."""
    return {"connector": aiohttp.TCPConnector(limit=0, ttl_dns_cache=300), "timeout": UPSTREAM_TIMEOUT,
            "auto_decompress": True}


@asynccontextmanager
async def running_model_gateway(config: ModelGatewayConfig, routes: Routes, book: UsageBook,
                                http: aiohttp.ClientSession, caps: SpendCaps | None = None) -> AsyncIterator[ModelGateway]:
    """The listener and the usage book's flusher, from start to close (what is not flushed yet
    is written on the way out). `http`: the client to the providers (upstream_session_options);
    `caps`: the spending caps enforced (None: none)."""
    warm_ups, activity = WarmUpNonces(), ModelActivity()
    app = create_model_gateway_app(Handler(routes, book, http, config.peers, warm_ups, caps, activity))
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=5)
    await runner.setup()
    try:
        # reuse_port: replicas on one host share the one port every instance's config names; the
        # kernel spreads connections over them, and when one dies the others keep answering
        site = web.TCPSite(runner, config.host, config.port, reuse_port=True)
        await site.start()
        port = runner.addresses[0][1]  # the port given, when 0 asked for any
        log.info("model gateway listening", host=config.host, port=port)
        book.start()
        try:
            yield ModelGateway(port, book, app, warm_ups, caps, activity)
        finally:
            await book.close()
            if caps is not None:
                await caps.close()
    finally:
        await runner.cleanup()
