"""The reverse proxy to one instance's gateway: HTTP exchanges streamed both ways, WebSockets
handed to web.proxy.websocket, each counted against its upstream's cap while it is open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from web.proxy import websocket
from web.proxy.cap import ConnectionCap, Full
from web.proxy.headers import NO_AUTO_HEADERS, request_headers, response_headers
from web.proxy.pages import error_page, failure_page
from web.proxy.upstream import ProxyLimits, Upstream
from web.proxy.watchdog import Stall, Stalled, Watchdog

WHOLE_BODY_MAX_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


class ReverseProxy:
    def __init__(self, http: aiohttp.ClientSession, limits: ProxyLimits = ProxyLimits()) -> None:
        # A shared jar would hand one user's gateway cookies to the next request, whoever made it.
        if not isinstance(http.cookie_jar, aiohttp.DummyCookieJar):
            raise ValueError("the proxy's client session must not keep cookies (see web.proxy.client_session_options)")
        self.http = http
        self.limits = limits
        self.cap = ConnectionCap(limits.max_connections_per_upstream)
        self.request_timeout = aiohttp.ClientTimeout(total=None, sock_connect=limits.connect_timeout_s)

    def open_count(self, key: str) -> int:
        """Requests in flight plus open WebSockets for this upstream."""
        return self.cap.open_count(key)

    async def forward(self, request: web.Request, upstream: Upstream, *, client_address: str,
                      public_scheme: str, public_host: str) -> web.StreamResponse:
        try:
            with self.cap.slot(upstream.key):
                exchange = Exchange(self, request, upstream, f"{public_scheme}://{public_host}")
                upgrade = websocket.is_upgrade(request)
                headers = request_headers(request.headers, upstream, client_address=client_address,
                                          public_scheme=public_scheme, public_host=public_host, websocket=upgrade)
                if upgrade:
                    return await websocket.forward(exchange, headers)
                return await exchange.http(headers)
        except Full:
            return error_page(503)


class Exchange:
    """One request on its way to the gateway and back."""

    def __init__(self, proxy: ReverseProxy, request: web.Request, upstream: Upstream, public_origin: str) -> None:
        self.proxy = proxy
        self.limits = proxy.limits
        self.request = request
        self.gateway_origin = upstream.base_url.rstrip("/")
        self.public_origin = public_origin
        path = request.raw_path if request.raw_path.startswith("/") else request.rel_url.raw_path_qs
        self.url = URL(self.gateway_origin + path, encoded=True)  # the client's escaping, untouched
        self.response: web.StreamResponse | None = None  # once the client's answer has begun

    def response_headers(self, headers: CIMultiDictProxy[str], dropped: Iterable[str] = (), *,
                         websocket: bool = False) -> CIMultiDict[str]:
        return response_headers(headers, self.gateway_origin, self.public_origin, dropped, websocket=websocket)

    async def http(self, headers: CIMultiDict[str]) -> web.StreamResponse:
        watchdog = Watchdog(self.limits.idle_timeout_s, self.request)
        try:
            with watchdog:
                answer = await self._ask(headers, watchdog)
        except (aiohttp.ClientError, OSError) as error:  # TimeoutError among them
            return failure_page(error)
        except Stalled as stalled:
            return error_page(408 if stalled.why is Stall.IDLE else 502)
        watchdog.resume()
        try:
            with watchdog:
                return await self._stream_back(answer, watchdog)
        except Stalled:
            return self._cut_short(answer)
        finally:
            answer.release()  # read to its end: the connection goes back to the pool (else already closed)

    async def _ask(self, headers: CIMultiDict[str], watchdog: Watchdog) -> aiohttp.ClientResponse:
        """The gateway's answer, up to its headers."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as answer_deadline:
            def sent(allowance_s: float = 0.0) -> None:  # the gateway's time to answer starts once it has it all
                watchdog.pause()
                answer_deadline.reschedule(loop.time() + allowance_s + self.limits.response_timeout_s)

            body = self._body(watchdog, sent) if self.request.body_exists else None
            if body is None:  # sent as soon as connected
                sent(self.limits.connect_timeout_s)
            return await self.proxy.http.request(
                self.request.method, self.url, headers=headers, data=body, allow_redirects=False,
                auto_decompress=False, skip_auto_headers=NO_AUTO_HEADERS, timeout=self.proxy.request_timeout,
                raise_for_status=False)

    async def _body(self, watchdog: Watchdog, sent: Callable[[], None]) -> AsyncIterator[bytes]:
        """The client's body, chunk by chunk as it arrives."""
        async for chunk in self.request.content.iter_any():
            watchdog.touch()
            yield chunk
        sent()

    async def _stream_back(self, answer: aiohttp.ClientResponse, watchdog: Watchdog) -> web.StreamResponse:
        if self._small(answer):
            try:
                body = await answer.read()
            except (aiohttp.ClientError, OSError):  # nothing sent yet: the client gets a page
                return self._cut_short(answer)
            return web.Response(status=answer.status, reason=answer.reason, body=body,
                                headers=self.response_headers(answer.headers))
        response = self.response = web.StreamResponse(status=answer.status, reason=answer.reason,
                                                      headers=self.response_headers(answer.headers))
        try:
            await response.prepare(self.request)
            async for chunk in answer.content.iter_any():
                watchdog.touch()
                await response.write(chunk)
                watchdog.touch()
        except (aiohttp.ClientError, OSError):
            # The gateway went away mid-answer, or the client did: what was sent stays cut short.
            return self._cut_short(answer)
        return response

    def _small(self, answer: aiohttp.ClientResponse) -> bool:
        """A short answer of known length: sent whole with its headers, in one write instead of three."""
        has_body = self.request.method != "HEAD" and answer.status not in NO_BODY_STATUSES
        return has_body and answer.content_length is not None and answer.content_length <= WHOLE_BODY_MAX_BYTES

    def _cut_short(self, answer: aiohttp.ClientResponse) -> web.StreamResponse:
        """An answer the gateway did not finish: a page if the client has had nothing of it yet,
        else its connection closed, so a partial answer never passes for a whole one."""
        answer.close()
        if self.response is None:
            return error_page(502)
        if self.request.transport is not None:
            self.request.transport.close()
        return self.response
