"""Reading JSON request bodies, the one way every route reads one: at most `max_bytes` of UTF-8,
nested MAX_DEPTH levels at most, an object (of known fields, when the route says which), every
number one a field can hold and every string one that can be stored. Each refusal is an
InvalidInput naming the field the bad value sits under (`body` for the body as a whole)."""

from __future__ import annotations

import json
import math
import re
from typing import TypeVar

from aiohttp import web
from pydantic import ValidationError

from db.errors import InvalidInput
from web.api.schemas import RequestBody

MAX_BODY_BYTES = 64 * 1024  # the largest request of the API is a few keys and tokens
MAX_DEPTH = 32  # levels of objects and arrays, the body's own object being the first
MAX_INTEGER = 2**63 - 1  # what a signed 64-bit column holds: no field takes more
MAX_DIGITS = len(str(MAX_INTEGER))
UTF8 = {"utf-8", "utf8"}  # JSON is UTF-8 (RFC 8259)
BODY = "body"
WHOLE_NUMBER = "a whole number that fits in 64 bits"
FINITE_NUMBER = "a finite number"

# NUL, which PostgreSQL's text refuses, and lone surrogates (a "\ud800" escape), which no
# encoder takes: both would fail deep inside a use case instead of here
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class UnknownField(InvalidInput):
    """A field the route does not take; `allowed` lists those it does."""

    def __init__(self, field: str, allowed: set[str]) -> None:
        self.allowed = sorted(allowed)
        super().__init__(f"Unknown field {field!r}; allowed: {', '.join(self.allowed)}.", field=field)


Model = TypeVar("Model", bound=RequestBody)


async def json_body(request: web.Request, model: type[Model]) -> Model:
    """The body read as `json_object` reads it (only the model's fields), then validated by the
    route's model: a value of the wrong shape is an InvalidInput naming its field."""
    body = await json_object(request, set(model.model_fields))
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(model, exc) from None


def _invalid(model: type[RequestBody], exc: ValidationError) -> InvalidInput:
    """The first problem, said for a person: the model's own words for the field when it has
    some, else what the field must be."""
    problem = exc.errors(include_url=False, include_input=False)[0]
    field = str(problem["loc"][0]) if problem["loc"] else BODY  # bodies are flat: the top-level field
    if field in model.problems:
        return InvalidInput(model.problems[field], field=field)
    return InvalidInput(_said(field, problem["type"], problem.get("ctx") or {}, problem["msg"]), field=field)


def _said(field: str, kind: str, ctx: dict, fallback: str) -> str:
    if kind == "missing":
        return f"{field} is required."
    if kind == "string_type":
        return f"{field} must be text (a JSON string)."
    if kind in ("int_type", "int_parsing"):
        return f"{field} must be {WHOLE_NUMBER}."
    if kind == "bool_type":
        return f"{field} must be true or false."
    if kind == "string_too_short":
        return f"{field} must be at least {ctx.get('min_length')} character(s) long."
    if kind == "string_too_long":
        return f"{field} must be at most {ctx.get('max_length')} characters long."
    return f"{field}: {fallback}."


class _Unfit:
    """Stands in for a number no field can hold, until the walk knows which field it is in."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted


async def json_object(request: web.Request, allowed: set[str] | None, *, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The body's object (`{}` when there is no body); `allowed=None` takes any field, for bodies
    whose shape someone else defines (Telegram's updates)."""
    if not request.can_read_body:
        return {}
    body = _parse(_text(request, await read_limited(request, max_bytes)))
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.", field=BODY)
    unknown = sorted(set(body) - allowed) if allowed is not None else []
    if unknown:
        raise UnknownField(unknown[0], allowed)
    for name, value in body.items():
        _check(name, value)
    return body


async def read_limited(request: web.Request, max_bytes: int) -> bytes:
    """The raw body, refused (413) once it passes `max_bytes`, announced or not."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=length)
    body = bytearray()
    try:
        async for chunk in request.content.iter_any():  # chunked bodies announce no length
            body += chunk
            if len(body) > max_bytes:
                raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=len(body))
    except web.RequestPayloadError:  # aiohttp could not take it apart: one that does not decompress, say
        raise InvalidInput("The request body could not be read (is its Content-Encoding right?).",
                           field=BODY) from None
    return bytes(body)


def _text(request: web.Request, raw: bytes) -> str:
    charset = request.charset
    if charset is not None and charset.lower() not in UTF8:
        raise InvalidInput("Send JSON as UTF-8: charset=utf-8, or no charset at all.", field="Content-Type")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The request body is not valid UTF-8.", field=BODY) from None


def _parse(text: str) -> object:
    try:
        return json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:  # nested deeper than the parser goes: too deep by far
        raise InvalidInput(f"The request body is nested too deeply ({MAX_DEPTH} levels at most).",
                           field=BODY) from None
    except json.JSONDecodeError:
        raise InvalidInput("The request body is not valid JSON.", field=BODY) from None


def _integer(digits: str) -> int | _Unfit:
    if len(digits.lstrip("-")) > MAX_DIGITS:  # before int(), which refuses more than 4300 digits
        return _Unfit(WHOLE_NUMBER)
    number = int(digits)
    return number if -MAX_INTEGER - 1 <= number <= MAX_INTEGER else _Unfit(WHOLE_NUMBER)


def _float(digits: str) -> float | _Unfit:
    number = float(digits)
    return number if math.isfinite(number) else _Unfit(FINITE_NUMBER)


def _constant(name: str) -> _Unfit:  # NaN, Infinity and -Infinity, which JSON does not have
    return _Unfit(FINITE_NUMBER)


def _check(field: str, value: object) -> None:
    """Everything under one top-level field, walked without recursion (the client chose the depth)."""
    _check_text(field, field)
    pending = [(value, 2)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"{field} is nested too deeply ({MAX_DEPTH} levels at most).", field=field)
        if isinstance(item, _Unfit):
            raise InvalidInput(f"{field} must be {item.wanted}.", field=field)
        if isinstance(item, str):
            _check_text(field, item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_text(field, key)
                pending.append((inner, depth + 1))
        elif isinstance(item, list):
            pending.extend((inner, depth + 1) for inner in item)


def _check_text(field: str, text: str) -> None:
    if _UNSTORABLE.search(text):
        raise InvalidInput(f"{field} holds a character that cannot be stored (NUL, or half of a "
                           "UTF-16 surrogate pair).", field=field)
