"""The progress of an instance's latest action, for pages without JavaScript: the events stored
so far, read without waiting for the next one. Pages render them with the shared partial
(templates/progress.html), which static/js/progress.js then follows live over the API's SSE
stream (GET /api/instances/{id}/progress)."""

from __future__ import annotations

import uuid

from aiohttp import web

from db.models import User
from web.keys import SERVICES

async def events_so_far(request: web.Request, user: User, instance_id: uuid.UUID | str) -> tuple[list[dict], bool]:
    """The latest action's events so far (as the API sends them) and whether the last one is
    final. NotFound for someone else's instance; ([], True) when no action was ever recorded."""
    events, final = await request.app[SERVICES].instances.progress_so_far(user, instance_id)
    return [event.as_dict() for event in events], final
