"""Faults a test arms on the fake Stripe's API, and the log of what it was asked."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.stripe.protocol import JsonDict, StripeError

# The error type Stripe answers with for each status a test may ask for
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 402: "card_error",
               404: "invalid_request_error", 409: "invalid_request_error", 429: "invalid_request_error"}
MESSAGES = {429: "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            500: "An unknown error occurred", 502: "Bad gateway", 503: "Service unavailable"}


@dataclass
class StripeRequest:
    """One API request as the fake received it and answered it."""

    method: str
    path: str
    idempotency_key: str | None
    params: JsonDict  # the form body of a POST, else the query
    status: int = 0
    replayed: bool = False  # answered from a saved idempotent result
    fault: str | None = None  # "fail" or "delay" when an armed fault met this request


@dataclass
class _Armed:
    path_prefix: str
    status: int = 500
    seconds: float = 0.0


@dataclass
class Faults:
    """`fail_next` and `delay_next`, each met once by the next request whose path starts so."""

    failures: list[_Armed] = field(default_factory=list)
    delays: list[_Armed] = field(default_factory=list)

    def fail_next(self, path_prefix: str, status: int = 500) -> None:
        self.failures.append(_Armed(path_prefix, status=status))

    def delay_next(self, path_prefix: str, seconds: float) -> None:
        self.delays.append(_Armed(path_prefix, seconds=seconds))

    def failure_for(self, path: str) -> StripeError | None:
        armed = _take(self.failures, path)
        if armed is None:
            return None
        kind = ERROR_TYPES.get(armed.status, "api_error")
        return StripeError(armed.status, MESSAGES.get(armed.status, "An error occurred (injected by the test)"),
                           type=kind)

    def delay_for(self, path: str) -> float:
        armed = _take(self.delays, path)
        return armed.seconds if armed else 0.0


def _take(armed: list[_Armed], path: str) -> _Armed | None:
    for index, item in enumerate(armed):
        if path.startswith(item.path_prefix):
            return armed.pop(index)
    return None
