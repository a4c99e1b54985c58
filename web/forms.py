"""Reading HTML form posts, the one way every page reads one: at most MAX_FORM_BYTES of
URL-encoded UTF-8, known fields only, each value once, no NUL. The parse is the standard
library's (linear); refusals are InvalidInput naming the field, as for JSON bodies."""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from db.errors import InvalidInput
from web.api.bodies import UnknownField, read_limited

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 32
FORM_TYPE = "application/x-www-form-urlencoded"
CSRF_FIELD = "csrf_token"  # every form carries it; web.csrf checks it before any page reads the form


FORM_PAIRS = web.RequestKey("form_pairs", list)  # the body parsed once: web.csrf reads it before the page


async def form_pairs(request: web.Request) -> list[tuple[str, str]]:
    """The form's (name, value) pairs as sent, read and parsed once per request."""
    if FORM_PAIRS in request:
        return request[FORM_PAIRS]
    if request.content_type != FORM_TYPE:
        raise InvalidInput("Send the form as the page does (application/x-www-form-urlencoded).",
                           field="Content-Type")
    raw = await read_limited(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except (UnicodeError, ValueError):
        raise InvalidInput("The form could not be read: send it as UTF-8, as the page does.", field="body") from None
    request[FORM_PAIRS] = pairs
    return pairs


async def form_fields(request: web.Request, allowed: set[str]) -> dict[str, str]:
    """The form's fields (absent ones missing), CSRF_FIELD taken out."""
    fields: dict[str, str] = {}
    for name, value in await form_pairs(request):
        if name == CSRF_FIELD:
            continue
        if name not in allowed:
            raise UnknownField(name, allowed)
        if name in fields:
            raise InvalidInput(f"The field {name!r} came twice.", field=name)
        if "\x00" in value:
            raise InvalidInput("The field holds a character that cannot be stored.", field=name)
        fields[name] = value
    return fields
