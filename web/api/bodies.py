"""Reading JSON request bodies strictly: an object, known fields only."""

from __future__ import annotations

import json

from aiohttp import web

from db.errors import InvalidInput


async def json_object(request: web.Request, allowed: set[str]) -> dict:
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}.", field=unknown[0])
    return body
