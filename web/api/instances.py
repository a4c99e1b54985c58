"""The instance routes: thin handlers over provisioner.service. Secrets never leave."""

from __future__ import annotations

import json
from contextlib import aclosing, suppress

from aiohttp import web
from aiohttp_sse import sse_response

from db.errors import InvalidInput, ServiceError
from db.models import Instance, User
from db.status import Status
from db.types import utcnow
from provisioner.service import InstanceChanges, InstanceService
from web.api.bodies import json_body
from web.api.operations import Parameter, operation
from web.api.schemas import (
    ErrorDetail,
    InstanceChanged,
    InstanceChangeRequest,
    InstanceCreated,
    InstanceHealth,
    InstanceInfo,
    InstanceList,
    InstanceRequest,
    PairingApproval,
    ProgressEventData,
)
from web.auth import current_user
from web.errors import BillingOff
from web.keys import SERVICES

routes = web.RouteTableDef()

MAX_LOG_TAIL = 5000
SSE = "text/event-stream"
TEXT = "text/plain"
# what acting on an instance may answer: not theirs, busy, over the plan, no room, no runtime
ACTION_ERRORS = (404, 409, 402, 503)
PURGE = Parameter("purge", "query", {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
                  "Also delete the instance's data (by default it is kept under DATA_DIR/deleted).")
TAIL = Parameter("tail", "query", {"type": "integer", "minimum": 0, "maximum": MAX_LOG_TAIL, "default": 200},
                 "How many of the last lines to send.")
FOLLOW = Parameter("follow", "query", {"type": "string", "enum": ["1", "0", "true", "false"], "default": "0"},
                   "Keep sending new lines as the gateway writes them.")
LAST_EVENT_ID = Parameter("Last-Event-ID", "header", {"type": "string"},
                          "The id of the last event seen: the stream resumes after it.")


def _service(request: web.Request) -> InstanceService:
    return request.app[SERVICES].instances


def instance_info(service: InstanceService, instance: Instance) -> InstanceInfo:
    return InstanceInfo(
        id=instance.id,
        status=instance.status,
        status_reason=instance.status_reason,
        action=_action(instance),
        subdomain=instance.subdomain,
        url=service.public_url(instance),
        model_provider=instance.model_provider,
        model=instance.model,
        key=instance.key_source,
        telegram_bot_username=instance.telegram_bot_username,
        telegram_user_id=instance.telegram_allow_from,
        runtime=instance.runtime,
        running_since=instance.running_since,
        restart_count=instance.restart_count,
        memory_restarts=instance.memory_restarts,
        failure_streak=instance.failure_streak,
        next_restart_at=instance.next_attempt_at,
        created_at=instance.created_at,
        updated_at=instance.updated_at,
        progress_url=f"/api/instances/{instance.id}/progress",
    )


def instance_json(service: InstanceService, instance: Instance) -> dict:
    return instance_info(service, instance).model_dump(mode="json")


def _action(instance: Instance) -> str | None:
    """The action in progress, if any: a lease that lapsed (its holder died) names nothing."""
    expires = instance.lease_expires_at
    return instance.action if instance.lease_holder and expires and expires > utcnow() else None


@routes.post("/api/instances")
@operation("Create and deploy an instance", tag="instances", body=InstanceRequest, responses={202: InstanceCreated},
           errors=(402, 403, 409, 503),
           description="Answers at once; follow the deploy at its progress_url. With billing on and no active "
                       "subscription the instance is kept with status awaiting_payment and deploys once paid: "
                       "send the person to checkout_url (for `plan`, the default one when left out). When no "
                       "checkout page could be made, checkout_error says why and the instance still waits: pay "
                       "later with POST /api/billing/checkout. `plan` with billing off: 400.")
async def create_instance(request: web.Request) -> web.Response:
    user = current_user(request)
    body = (await json_body(request, InstanceRequest)).model_dump()
    plan = body.pop("plan")
    billing = request.app[SERVICES].billing
    if billing is None and plan is not None:
        raise InvalidInput(BillingOff().message, field="plan")
    if billing is not None:
        billing.plan(plan)  # a plan that does not exist is refused before anything is made
    service = _service(request)
    instance = await service.create(user, **body)
    url, problem = await checkout_for(request, user, instance, plan)
    answer = InstanceCreated(**dict(instance_info(service, instance)), checkout_url=url, checkout_error=problem)
    return web.json_response(answer.model_dump(mode="json"), status=202)


async def checkout_for(request: web.Request, user: User, instance: Instance, plan: str | None, *,
                       via: str = "web") -> tuple[str | None, ErrorDetail | None]:
    """Where to pay for an instance that waits for payment (None, None for any other). A refusal
    (Stripe down) is said, not raised: the instance exists and waits, to be paid for later."""
    billing = request.app[SERVICES].billing
    if billing is None or instance.status != Status.AWAITING_PAYMENT:
        return None, None
    try:
        return await billing.checkout_url(user, plan, via=via), None
    except ServiceError as exc:
        later = " Your assistant is kept and waits: pay later from the billing page."
        return None, ErrorDetail(code=exc.code, message=exc.message + later, field=exc.field)


@routes.get("/api/instances")
@operation("Your instances", tag="instances", responses={200: InstanceList})
async def list_instances(request: web.Request) -> web.Response:
    service = _service(request)
    instances = await service.list(current_user(request))
    answer = InstanceList(instances=[instance_info(service, i) for i in instances])
    return web.json_response(answer.model_dump(mode="json"))


@routes.get("/api/instances/{id}")
@operation("One of your instances (never a secret)", tag="instances", responses={200: InstanceInfo}, errors=(404,))
async def get_instance(request: web.Request) -> web.Response:
    service = _service(request)
    instance = await service.view(current_user(request), request.match_info["id"])
    return web.json_response(instance_json(service, instance))


@routes.put("/api/instances/{id}/config")
@operation("Change an instance's configuration (applied by the next restart)", tag="instances",
           body=InstanceChangeRequest, responses={200: InstanceChanged}, errors=(404, 409))
async def update_config(request: web.Request) -> web.Response:
    user = current_user(request)
    body = (await json_body(request, InstanceChangeRequest)).model_dump(exclude_unset=True)
    if not body:
        fields = ", ".join(sorted(InstanceChangeRequest.model_fields))
        raise InvalidInput(f"Send at least one of: {fields}.", field="body")
    service = _service(request)
    update = await service.update_config(user, request.match_info["id"], InstanceChanges(**body))
    answer = InstanceChanged(instance=instance_info(service, update.instance), changed=update.changed,
                             restart_required=update.restart_required)
    return web.json_response(answer.model_dump(mode="json"))


@routes.post("/api/instances/{id}/{action:start|stop|restart}")
@operation("Start, stop or restart an instance", tag="instances", responses={202: InstanceInfo},
           errors=ACTION_ERRORS, description="Answers with the state it has set; the action goes on.")
async def lifecycle_action(request: web.Request) -> web.Response:
    service = _service(request)
    action = getattr(service, request.match_info["action"])
    instance = await action(current_user(request), request.match_info["id"])
    return web.json_response(instance_json(service, instance), status=202)


@routes.delete("/api/instances/{id}")
@operation("Delete an instance", tag="instances", responses={202: InstanceInfo}, errors=(404,),
           parameters=(PURGE,))
async def delete_instance(request: web.Request) -> web.Response:
    purge = request.query.get("purge", "false").lower()
    if purge not in ("true", "false", "1", "0"):
        raise InvalidInput("purge must be true or false.", field="purge")
    service = _service(request)
    instance = await service.delete(current_user(request), request.match_info["id"], purge=purge in ("true", "1"))
    return web.json_response(instance_json(service, instance), status=202)


@routes.get("/api/instances/{id}/health")
@operation("Whether the instance's gateway is live and ready, and its memory", tag="instances",
           responses={200: InstanceHealth}, errors=(404,))
async def health(request: web.Request) -> web.Response:
    answer = await _service(request).health(current_user(request), request.match_info["id"])
    return web.json_response(InstanceHealth.model_validate(answer).model_dump(mode="json"))


@routes.get("/api/instances/{id}/progress")
@operation("The latest action's progress (Server-Sent Events)", tag="instances", responses={200: SSE},
           errors=(404,), parameters=(LAST_EVENT_ID,), streams=("progress", ProgressEventData),
           description="Replays the action's events, then follows them until its final one (done or failed); "
                       "each event is `progress`, its data one JSON object.")
async def progress(request: web.Request) -> web.StreamResponse:
    events = await _service(request).progress(current_user(request), request.match_info["id"],
                                              last_event_id=request.headers.get("Last-Event-ID"))
    if events is None:
        raise web.HTTPNotFound(text="No action has been recorded for this instance yet.")
    async with sse_response(request) as stream:
        async for event in events:
            data = ProgressEventData.model_validate(event.as_dict()).model_dump(mode="json", exclude_none=True)
            await stream.send(json.dumps(data), id=event.event_id, event="progress")
    return stream


@routes.get("/api/instances/{id}/logs")
@operation("The gateway's log (secrets masked)", tag="instances", responses={200: (TEXT, SSE)},
           errors=(404,), parameters=(TAIL, FOLLOW), streams=("log", None),
           description="Plain text, one line each; with `Accept: text/event-stream`, Server-Sent Events "
                       "(`log`, one line each). `follow` keeps the answer open for new lines.")
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
@operation("Approve a Telegram pairing code: its sender becomes the instance's owner", tag="instances",
           body=PairingApproval, responses={200: InstanceInfo}, errors=(404, 409),
           description="For an instance whose owner's Telegram id is unknown: its bot answers a newcomer with "
                       "a code, and approving it lets that person, and only them, talk to the assistant.")
async def approve_pairing(request: web.Request) -> web.Response:
    user = current_user(request)  # before the body: an anonymous post is a 401, as on every route here
    body = await json_body(request, PairingApproval)
    service = _service(request)
    instance = await service.approve_pairing(user, request.match_info["id"], body.code)
    return web.json_response(instance_json(service, instance))
