"""What stands before every `/v1/` request, handled or forwarded alike: the request log, the
API key check, the faults a test armed, and Stripe's idempotency (see `idempotency`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from tests.fakes.stripe.faults import Faults, StripeRequest
from tests.fakes.stripe.idempotency import IdempotencyKeys, SavedResponse
from tests.fakes.stripe.protocol import StripeError, api_key_of, new_id, parse_form

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NO_KEY = ("You did not provide an API key. You need to provide your API key in the Authorization header, using "
          "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
          "for details, or we can help at https://support.stripe.com/.")


class ApiGuard:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.keys = IdempotencyKeys()
        self.requests: list[StripeRequest] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        body = await request.read()
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        record = StripeRequest(request.method, request.path, key,
                               parse_form(body if request.method == "POST" else request.query_string))
        self.requests.append(record)
        response = await self._answer(request, handler, record, body)
        record.status = response.status
        response.headers["Request-Id"] = new_id("req_", 14)
        if key:
            response.headers["Idempotency-Key"] = key
        return response

    async def _answer(self, request: web.Request, handler: Handler, record: StripeRequest,
                      body: bytes) -> web.StreamResponse:
        api_key = api_key_of(request)
        if api_key is None:
            return StripeError(401, NO_KEY).response()
        failure = self.faults.failure_for(request.path)
        if failure is not None:
            record.fault = "fail"
            return failure.response()
        key = record.idempotency_key
        if key:
            try:
                saved = self.keys.begin(api_key, key, request.path, body)
            except StripeError as error:
                return error.response()
            if saved is not None:
                record.replayed = True
                return web.Response(body=saved.body, status=saved.status,
                                    headers={"Content-Type": saved.content_type, "Idempotent-Replayed": "true"})
        try:
            response = await self._run(handler, request)
        except BaseException:
            if key:
                self.keys.abandon(api_key, key)
            raise
        if key:
            assert isinstance(response, web.Response)  # every API answer here is a whole body
            self.keys.finish(api_key, key, SavedResponse(response.status, bytes(response.body or b""),
                                                          response.headers.get("Content-Type", "application/json")))
        delay = self.faults.delay_for(request.path)
        if delay:
            record.fault = "delay"
            await asyncio.sleep(delay)  # the work is done and saved: only the answer is late
        return response

    @staticmethod
    async def _run(handler: Handler, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StripeError as error:
            return error.response()
