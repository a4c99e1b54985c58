"""What each route of the app takes and answers, attached to its handler: `@operation(...)`
under the route's decorator. The OpenAPI document (web.api.openapi) is made from these and the
app's router, so a route with no description is found (and refused) there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

from web.errors import Handler

ATTRIBUTE = "__openapi_operation__"
# who may call: a signed-in user, anyone, Telegram, Stripe, a metrics scraper (web/metrics.py)
Security = Literal["user", "none", "telegram", "stripe", "metrics"]

# what most routes can answer whatever they do: input that is not JSON, no token, a token of nobody
ERRORS_OF_A_BODY = (400, 413)
ERRORS_OF_A_USER = (401,)


@dataclass(frozen=True)
class Parameter:
    name: str
    where: Literal["query", "header"]
    schema: dict
    description: str


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    # status -> the model of its JSON body, None for no body, or a media type for text and streams
    responses: dict[int, type[BaseModel] | str | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()  # statuses it answers with the error shape, besides the usual ones
    parameters: tuple[Parameter, ...] = ()
    security: Security = "user"
    description: str = ""
    # when it answers with Server-Sent Events: their event name, and the model of their JSON data
    # (None: a line of text)
    streams: tuple[str, type[BaseModel] | None] | None = None

    @property
    def error_statuses(self) -> list[int]:
        usual = (ERRORS_OF_A_BODY if self.body is not None else ()) + \
            (ERRORS_OF_A_USER if self.security == "user" else ())
        return sorted(set(usual) | set(self.errors))


H = TypeVar("H", bound=Handler)


def operation(summary: str, *, tag: str, **details) -> Callable[[H], H]:
    """Describes the handler it decorates (see Operation for the details)."""
    described = Operation(summary, tag, **details)

    def attach(handler: H) -> H:
        setattr(handler, ATTRIBUTE, described)
        return handler

    return attach


def operation_of(handler: object) -> Operation | None:
    return getattr(handler, ATTRIBUTE, None)
