"""The progress of an instance's latest action, for pages without JavaScript: the events stored
so far, read without waiting for the next one. Pages render them with the shared partial
(templates/progress.html), which static/js/progress.js then follows live over the API's SSE
stream (GET /api/instances/{id}/progress)."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from db.models import User
from web.keys import SERVICES

# The stream reads the stored events in one go, then waits for live ones: the first event may
# take a database read to come, the rest of what is stored comes at once after it.
FIRST_EVENT_S = 1.0
STORED_EVENT_S = 0.05


async def events_so_far(request: web.Request, user: User, instance_id: uuid.UUID | str) -> tuple[list[dict], bool]:
    """The latest action's events so far (as the API sends them) and whether the last one is
    final. NotFound for someone else's instance; ([], True) when no action was ever recorded."""
    events = await request.app[SERVICES].instances.progress(user, instance_id)
    if events is None:
        return [], True
    shown: list[dict] = []
    wait_s = FIRST_EVENT_S
    try:
        while True:
            event = await asyncio.wait_for(anext(events), wait_s)
            shown.append(event.as_dict())
            if event.final:
                return shown, True
            wait_s = STORED_EVENT_S
    except (TimeoutError, StopAsyncIteration):
        return shown, False
    finally:
        await events.aclose()
