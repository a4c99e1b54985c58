"""Serving one call on a bot: the method registry, the record of each call, the faults a test asked
for, and methods answered without being implemented."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram.params import Params, Upload, normalise
from tests.fakes.telegram.protocol import (
    ACCEPTED_BY_DEFAULT,
    NOT_FOUND,
    BotApiError,
    Described,
    JsonDict,
)
from tests.fakes.telegram.records import ApiCall, Fault
from tests.fakes.telegram.state import BotState, deep_copy

API_METHODS: dict[str, str] = {}  # lower-case method name -> FakeBot attribute


def api_method(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        API_METHODS[name.lower()] = handler.__name__
        return handler

    return register


class Dispatch(BotState):
    """FakeBot's entry point for every call, and the faults tests ask for."""

    # -- faults tests ask for --------------------------------------------------------------------
    def fail_next(
        self, method: str | None, error_code: int, description: str, *,
        parameters: JsonDict | None = None, times: int = 1,
    ) -> None:
        """The next `times` calls of `method` (any method when None) answer this error."""
        error = BotApiError(error_code, description, parameters)
        self._faults.append(Fault(method.lower() if method else None, error, times))

    def rate_limit(self, method: str | None = "sendMessage", retry_after: int = 5, times: int = 1) -> None:
        """Flood control, exactly as Telegram answers it."""
        self.fail_next(method, 429, f"Too Many Requests: retry after {retry_after}",
                       parameters={"retry_after": retry_after}, times=times)

    def flood(self, seconds: int, method: str | None = None) -> None:
        """The next call (of `method`, or of any method) answers 429 "Too Many Requests: retry
        after <seconds>" with parameters.retry_after, as Telegram's flood control does."""
        self.rate_limit(method, retry_after=seconds)

    def accept(self, method: str, result: Any = True) -> None:
        """Answer a method the fake does not implement: `result`, or `result(params)` if callable."""
        self._accepted[method.lower()] = result

    def revoke(self) -> None:
        """The token stops working (as after /revoke at @BotFather): every call answers 401."""
        self.revoked = True
        self._changed.notify()

    # -- serving one call --------------------------------------------------------------------------
    async def call(self, method: str, values: JsonDict, uploads: dict[str, Upload], http_method: str) -> ApiCall:
        params = normalise(values)
        record = ApiCall(method, params, {k: u.data for k, u in uploads.items()}, http_method)
        self.calls.append(record)
        try:
            result = await self._run(method, Params(params, uploads))
        except asyncio.CancelledError:
            record.status = 0  # the client went away before the answer (a long poll, usually)
            raise
        except BotApiError as error:
            record.status, record.response = error.error_code, error.payload()
        else:
            record.response = {"ok": True, "result": result}
            if isinstance(result, Described):
                record.response = {"ok": True, "result": result.result, "description": result.description}
        return record

    async def _run(self, method: str, params: Params) -> Any:
        name = method.lower()
        handler = getattr(self, API_METHODS[name]) if name in API_METHODS else None
        accepted = self._accepted.get(name, self.telegram.accepted.get(name))
        if handler is None and accepted is None:
            accepted = ACCEPTED_BY_DEFAULT.get(name)
        if handler is None and accepted is None:
            print(f"[fake Telegram] unknown Bot API method {method!r} called on @{self.username}: "
                  "answered 404 Not Found", file=sys.stderr, flush=True)
            raise BotApiError(404, NOT_FOUND)
        for fault in self._faults:
            if fault.method in (None, name) and fault.remaining > 0:
                fault.remaining -= 1
                raise fault.error
        if self.flood_control is not None:
            self.flood_control.check(name, params.values)
        if handler is None:
            return accepted(params.values) if callable(accepted) else deep_copy(accepted)
        return await handler(params)
