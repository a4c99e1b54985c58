"""Stripe's idempotent requests (https://docs.stripe.com/api/idempotent_requests).

Mimics: a POST with an `Idempotency-Key` that this API key used before, on the same path with
the same parameters, gets the first answer again (status and body) with `Idempotent-Replayed:
true` and does nothing; the key with other parameters or another path answers 400
`idempotency_error`; a key whose first request is still running answers 409. Results are
saved whatever they were, except parameter validation failures (400), as Stripe does.
Known gaps: keys never expire (Stripe forgets them after 24 hours); GET and DELETE keys are
ignored, as Stripe ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from tests.fakes.stripe.protocol import StripeError

MISMATCH = ("Keys for idempotent requests can only be used with the same parameters they were first used "
            "with. Try using a key other than '{key}' if you meant to execute a different request.")
IN_PROGRESS = ("There is currently another in-progress request using this Idempotent Key (that probably means "
               "you submitted twice, and the other request is still going through): {key}. Please try again later.")


@dataclass(frozen=True)
class SavedResponse:
    status: int
    body: bytes
    content_type: str


@dataclass
class _Entry:
    path: str
    params: tuple[tuple[str, str], ...]
    response: SavedResponse | None = None  # None while the first request runs


class IdempotencyKeys:
    """What each (API key, Idempotency-Key) pair was first used for, and its answer."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    def begin(self, api_key: str, key: str, path: str, body: bytes) -> SavedResponse | None:
        """The saved answer to replay, or None when this request is the first (it is then
        running until `finish` or `abandon`); raises the StripeError to answer otherwise."""
        params = tuple(sorted(parse_qsl(body.decode(errors="replace"), keep_blank_values=True)))
        entry = self._entries.get((api_key, key))
        if entry is None:
            self._entries[(api_key, key)] = _Entry(path, params)
            return None
        if entry.path != path or entry.params != params:
            raise StripeError(400, MISMATCH.format(key=key), type="idempotency_error")
        if entry.response is None:
            raise StripeError(409, IN_PROGRESS.format(key=key), type="idempotency_error")
        return entry.response

    def finish(self, api_key: str, key: str, response: SavedResponse) -> None:
        if response.status == 400:  # validation failed: Stripe saves nothing, the key stays free
            self.abandon(api_key, key)
        else:
            self._entries[(api_key, key)].response = response

    def abandon(self, api_key: str, key: str) -> None:
        self._entries.pop((api_key, key), None)
