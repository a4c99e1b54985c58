"""One model call passed on: the instance's request to its provider with the real key put in,
and the provider's answer back as it comes, metered on the way.

What changes on the way out: the credential the instance sent is taken off and the key put on
as its provider's API style wants it (Provider.auth_headers); hop-by-hop headers go; a
streamed Chat Completions request that did not ask for its usage asks for it (the usage chunk
is then passed on too: OpenClaw reads it). Nothing else: the body, the path, the query and the
other headers (anthropic-version, anthropic-beta, ...) go as they came. The answer's status,
headers and body come back as the provider sent them, a stream chunk by chunk as it arrives;
a provider that drops the connection mid-stream has the instance's connection dropped too.
Bodies are never logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict

from model_gateway.routes import Route
from model_gateway.usage import StreamMeter, Usage, asking_for_usage, requested_model, usage_of_body

log = structlog.get_logger(__name__)

# Not passed on in either direction: hop-by-hop (RFC 9110 7.6.1), what aiohttp sets again, and
# what carries a credential.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length"})
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "cookie"})
# The answer is passed on decoded (the meter reads it), so its encoding goes too.
ANSWER_DROPPED = HOP_BY_HOP | {"content-encoding"}
MAX_METERED_BODY = 8 * 1024 * 1024  # a non-streamed answer read for its usage up to this size


@dataclass(frozen=True)
class Outcome:
    """What the meter learnt of one call."""

    model: str | None
    usage: Usage | None
    failed: bool  # an error status, or the answer did not arrive whole


def upstream_headers(request: web.Request, route: Route) -> CIMultiDict[str]:
    headers = CIMultiDict((name, value) for name, value in request.headers.items()
                          if name.lower() not in HOP_BY_HOP | CREDENTIAL_HEADERS)
    headers.update(route.provider.auth_headers(route.key.get_secret_value()))
    return headers


async def forward(http: aiohttp.ClientSession, request: web.Request, route: Route, tail: str,
                  body: bytes) -> tuple[web.StreamResponse, Outcome]:
    style = route.provider.api
    model = requested_model(body)
    rewritten = asking_for_usage(style, body)
    url = f"{route.upstream}/{tail}"
    if request.query_string:
        url += f"?{request.query_string}"
    try:
        upstream = await http.request(request.method, url, data=rewritten if rewritten is not None else body,
                                      headers=upstream_headers(request, route), allow_redirects=False)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("model provider unreachable", provider=route.provider.id, instance_id=str(route.instance_id),
                    reason=type(exc).__name__)
        return unreachable(route), Outcome(model, None, True)
    async with upstream:
        headers = CIMultiDict((name, value) for name, value in upstream.headers.items()
                              if name.lower() not in ANSWER_DROPPED)
        if upstream.content_type != "text/event-stream" and (upstream.content_length or 0) <= MAX_METERED_BODY:
            return await _answered_whole(request, upstream, headers, style, model)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
        meter = StreamMeter(style) if upstream.content_type == "text/event-stream" else None
        whole = True
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)  # first: the meter must never hold a chunk back
                if meter is not None:
                    meter.feed(chunk)
        except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError):
            whole = False  # the provider went away mid-answer: so does the instance's connection
            if request.transport is not None:
                request.transport.abort()
        else:
            await response.write_eof()
    if meter is None:  # an answer too big to meter: passed on as it came
        return response, Outcome(model, None, failed=upstream.status >= 400 or not whole)
    return response, Outcome(meter.model or model, meter.usage, failed=upstream.status >= 400 or not whole
                             or not meter.completed)


async def _answered_whole(request: web.Request, upstream: aiohttp.ClientResponse, headers: CIMultiDict[str],
                          style: str, model: str | None) -> tuple[web.StreamResponse, Outcome]:
    """A plain (not streamed) answer: read whole, metered, and passed on in one write."""
    try:
        body = await upstream.read()
    except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError):
        if request.transport is not None:
            request.transport.abort()  # cut short by the provider: so it is for the instance
        return web.Response(status=502), Outcome(model, None, failed=True)
    usage = usage_of_body(style, body) if upstream.status < 400 else None
    response = web.Response(status=upstream.status, reason=upstream.reason, body=body, headers=headers)
    return response, Outcome(model, usage, failed=upstream.status >= 400)


def unreachable(route: Route) -> web.Response:
    """What a provider that cannot be reached looks like to the instance: a 502 in the
    provider's own error shape, so OpenClaw treats it as the provider's trouble."""
    return error_response(route.provider.api, 502, "api_error",
                          f"ClawFleet could not reach {route.provider.display_name}. Try again in a moment.")


def error_response(style: str, status: int, kind: str, message: str, code: str | None = None) -> web.Response:
    """An error of the platform's own, in the shape the provider's clients read."""
    if style == "anthropic-messages":
        body = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": code or kind}}
    return web.json_response(body, status=status)


def cap_reached(route: Route, text: str) -> web.Response:
    """The refusal of a call past the owner's spending cap (model_gateway.caps says why a 429)."""
    anthropic = route.provider.api == "anthropic-messages"
    return error_response(route.provider.api, 429, "rate_limit_error" if anthropic else "rate_limit_exceeded", text,
                          code="spend_cap_reached")
