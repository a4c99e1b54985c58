"""The instance routes: thin handlers over provisioner.service. Secrets never leave."""

from __future__ import annotations

import json
from contextlib import aclosing, suppress
from datetime import datetime

from aiohttp import web
from aiohttp_sse import sse_response

from db.errors import InvalidInput
from db.models import Instance
from db.status import Status
from db.types import utcnow
from provisioner.service import InstanceChanges, InstanceService
from web.api.bodies import json_object
from web.auth import current_user
from web.keys import SERVICES

routes = web.RouteTableDef()

CREATE_FIELDS = {"model_provider", "model", "api_key", "telegram_bot_token", "telegram_user_id"}
MAX_LOG_TAIL = 5000


def _service(request: web.Request) -> InstanceService:
    return request.app[SERVICES].instances


def instance_json(service: InstanceService, instance: Instance) -> dict:
    return {
        "id": str(instance.id),
        "status": instance.status,
        "status_reason": instance.status_reason,
        "action": _action(instance),
        "subdomain": instance.subdomain,
        "url": service.public_url(instance),
        "model_provider": instance.model_provider,
        "model": instance.model,
        "telegram_bot_username": instance.telegram_bot_username,
        "telegram_user_id": instance.telegram_allow_from,
        "runtime": instance.runtime,
        "running_since": _iso(instance.running_since),
        "restart_count": instance.restart_count,
        "failure_streak": instance.failure_streak,
        "next_restart_at": _iso(instance.next_attempt_at),
        "created_at": instance.created_at.isoformat(),
        "updated_at": instance.updated_at.isoformat(),
        "progress_url": f"/api/instances/{instance.id}/progress",
    }


def _action(instance: Instance) -> str | None:
    """The action in progress, if any: a lease that lapsed (its holder died) names nothing."""
    expires = instance.lease_expires_at
    return instance.action if instance.lease_holder and expires and expires > utcnow() else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@routes.post("/api/instances")
async def create_instance(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_object(request, CREATE_FIELDS)
    service = _service(request)
    instance = await service.create(user, **{name: body.get(name) for name in CREATE_FIELDS})
    return web.json_response(instance_json(service, instance), status=202)


@routes.get("/api/instances")
async def list_instances(request: web.Request) -> web.Response:
    service = _service(request)
    instances = await service.list(current_user(request))
    return web.json_response({"instances": [instance_json(service, i) for i in instances]})


@routes.get("/api/instances/{id}")
async def get_instance(request: web.Request) -> web.Response:
    service = _service(request)
    instance = await service.get(current_user(request), request.match_info["id"])
    return web.json_response(instance_json(service, instance))


@routes.put("/api/instances/{id}/config")
async def update_config(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_object(request, CREATE_FIELDS)
    if not body:
        raise InvalidInput(f"Send at least one of: {', '.join(sorted(CREATE_FIELDS))}.", field="body")
    service = _service(request)
    update = await service.update_config(user, request.match_info["id"], InstanceChanges(**body))
    return web.json_response({
        "instance": instance_json(service, update.instance),
        "changed": update.changed,
        "restart_required": bool(update.changed) and update.instance.status == Status.RUNNING,
    })


@routes.post("/api/instances/{id}/{action:start|stop|restart}")
async def lifecycle_action(request: web.Request) -> web.Response:
    service = _service(request)
    action = getattr(service, request.match_info["action"])
    instance = await action(current_user(request), request.match_info["id"])
    return web.json_response(instance_json(service, instance), status=202)


@routes.delete("/api/instances/{id}")
async def delete_instance(request: web.Request) -> web.Response:
    purge = request.query.get("purge", "false").lower()
    if purge not in ("true", "false", "1", "0"):
        raise InvalidInput("purge must be true or false.", field="purge")
    service = _service(request)
    instance = await service.delete(current_user(request), request.match_info["id"], purge=purge in ("true", "1"))
    return web.json_response(instance_json(service, instance), status=202)


@routes.get("/api/instances/{id}/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).health(current_user(request), request.match_info["id"]))


@routes.get("/api/instances/{id}/progress")
async def progress(request: web.Request) -> web.StreamResponse:
    events = await _service(request).progress(current_user(request), request.match_info["id"],
                                              last_event_id=request.headers.get("Last-Event-ID"))
    if events is None:
        raise web.HTTPNotFound(text="No action has been recorded for this instance yet.")
    async with sse_response(request) as stream:
        async for event in events:
            await stream.send(json.dumps(event.as_dict()), id=event.event_id, event="progress")
    return stream


@routes.get("/api/instances/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    try:
        tail = int(request.query.get("tail", "200"))
    except ValueError:
        raise InvalidInput("tail must be a number of lines.", field="tail") from None
    if not 0 <= tail <= MAX_LOG_TAIL:
        raise InvalidInput(f"tail must be between 0 and {MAX_LOG_TAIL}.", field="tail")
    follow = request.query.get("follow", "0").lower() in ("1", "true")
    lines = await _service(request).logs(current_user(request), request.match_info["id"], tail=tail, follow=follow)
    # A follower whose client went away ends here: the server cancels the handler (handler
    # cancellation) or the next write fails; either way the reading underneath is closed.
    async with aclosing(lines):
        if "text/event-stream" in request.headers.get("Accept", ""):
            async with sse_response(request) as stream:
                with suppress(ConnectionResetError):
                    async for line in lines:
                        await stream.send(line, event="log")
            return stream
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with suppress(ConnectionResetError):
            async for line in lines:
                await response.write(line.encode() + b"\n")
            await response.write_eof()
        return response


@routes.post("/api/instances/{id}/pairing")
async def approve_pairing(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_object(request, {"code"})
    service = _service(request)
    instance = await service.approve_pairing(user, request.match_info["id"], body.get("code"))
    return web.json_response(instance_json(service, instance))
