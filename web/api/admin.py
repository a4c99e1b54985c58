"""/api/admin/...: the admin section's use cases (admin/) for scripts: users and instances
searched and paged, suspending and resuming, the audit log, broadcasts. Admins only; for anyone
else these routes do not exist (404, as the section's pages), so their existence is not told.
Each list is newest first and paged by `?after=` with the `next` of the page before."""

from __future__ import annotations

from aiohttp import web

from admin.audit_search import AuditFilter, AuditRow
from admin.broadcasts import Progress
from admin.directory import InstanceRow, UserRow
from admin.operators import actor_of
from admin.suspensions import Outcome
from admin.tools import AdminTools
from db.errors import NotFound
from db.models import User
from web.api.bodies import json_body
from web.api.operations import Parameter, operation
from web.api.schemas import (AdminInstance, AdminInstanceList, AdminUser, AdminUserList, AuditEntry, AuditPage,
                             BroadcastProgress, BroadcastRequest, SuspensionOutcome, SuspensionOutcomes,
                             SuspensionRequest)
from web.auth import current_user
from web.keys import SERVICES

routes = web.RouteTableDef()

ADMINS = "Admins only: for anyone else the route does not exist (404)."
AFTER = Parameter("after", "query", {"type": "string"}, "Where the page starts: the `next` of the page before.")
QUERY = Parameter("q", "query", {"type": "string"}, "Words to look for (an email, a Telegram name or id, an id…).")
STATUS = Parameter("status", "query", {"type": "string"}, "Only instances in this status.")
AUDIT = tuple(Parameter(name, "query", {"type": "string"}, text) for name, text in (
    ("actor", "Who acted (part of it): user, billing, admin:<email>, cli:<login>…"),
    ("action", "What was done; ending in a dot, a family of actions (`instance.`)."),
    ("user", "Whose account: an email or an account id."),
    ("instance", "An instance id."),
    ("since", "From this ISO date or date and time (UTC unless it says), inclusive."),
    ("until", "To this ISO date or date and time, exclusive; a date alone is the end of that day.")))


def _admin(request: web.Request) -> tuple[User, AdminTools]:
    user, tools = current_user(request), request.app[SERVICES].admin
    if not user.is_admin or tools is None:
        raise NotFound("No such route.")
    return user, tools


def _user(row: UserRow) -> AdminUser:
    user = row.user
    return AdminUser(id=user.id, email=user.email, telegram_user_id=user.telegram_user_id,
                     telegram_username=user.telegram_username, is_admin=user.is_admin, instances=row.instances,
                     plan=row.plan, subscription=row.subscription, created_at=user.created_at)


def _instance(row: InstanceRow) -> AdminInstance:
    instance = row.instance
    return AdminInstance(id=instance.id, user_id=instance.user_id, owner_email=row.owner_email,
                         owner_telegram_id=row.owner_telegram_id, subdomain=instance.subdomain,
                         status=instance.status, status_reason=instance.status_reason,
                         suspended_by_operator=instance.admin_suspended_at is not None,
                         model_provider=instance.model_provider, model=instance.model, memory_mb=instance.memory_mb,
                         restart_count=instance.restart_count, memory_restarts=instance.memory_restarts,
                         created_at=instance.created_at)


def _entry(row: AuditRow) -> AuditEntry:
    entry = row.entry
    return AuditEntry(id=entry.id, at=entry.created_at, actor=entry.actor, action=entry.action, user_id=entry.user_id,
                      user_email=row.user_email, instance_id=entry.instance_id, details=entry.details or {})


def _outcomes(outcomes: list[Outcome]) -> web.Response:
    body = SuspensionOutcomes(outcomes=[SuspensionOutcome(instance_id=o.instance_id, status=o.status,
                                                          message=o.message) for o in outcomes])
    return web.json_response(body.model_dump(mode="json"))


def _broadcast(progress: Progress) -> BroadcastProgress:
    broadcast = progress.broadcast
    return BroadcastProgress(id=broadcast.id, text=broadcast.text, recipients=broadcast.recipients,
                             delivered=progress.delivered, failed=progress.failed, waiting=progress.waiting,
                             done=progress.done, created_at=broadcast.created_at)


@routes.get("/api/admin/users")
@operation("Every account, newest first", tag="admin", responses={200: AdminUserList}, errors=(400, 404),
           parameters=(QUERY, AFTER), description=ADMINS)
async def admin_list_users(request: web.Request) -> web.Response:
    _, tools = _admin(request)
    page = await tools.directory.users(request.query.get("q", ""), after=request.query.get("after"))
    body = AdminUserList(users=[_user(row) for row in page.rows], next=page.next_cursor)
    return web.json_response(body.model_dump(mode="json"))


@routes.get("/api/admin/instances")
@operation("Every instance, newest first", tag="admin", responses={200: AdminInstanceList}, errors=(400, 404),
           parameters=(QUERY, STATUS, AFTER), description=ADMINS)
async def admin_list_instances(request: web.Request) -> web.Response:
    _, tools = _admin(request)
    page = await tools.directory.instances(request.query.get("q", ""), status=request.query.get("status", ""),
                                           after=request.query.get("after"))
    body = AdminInstanceList(instances=[_instance(row) for row in page.rows], next=page.next_cursor)
    return web.json_response(body.model_dump(mode="json"))


@routes.post(r"/api/admin/{kind:instances|users}/{id}/suspend")
@operation("Suspend an instance, or every instance of a user, as the operator", tag="admin",
           body=SuspensionRequest, responses={200: SuspensionOutcomes}, errors=(404, 409),
           description=ADMINS + " Billing never lifts it; the owner is told in chat; the audit log names you.")
async def admin_suspend(request: web.Request) -> web.Response:
    admin, tools = _admin(request)
    body = await json_body(request, SuspensionRequest)
    target, actor = request.match_info["id"], actor_of(admin)
    if request.match_info["kind"] == "users":
        return _outcomes(await tools.suspensions.suspend_user(target, actor=actor, reason=body.reason))
    return _outcomes([await tools.suspensions.suspend(target, actor=actor, reason=body.reason)])


@routes.post(r"/api/admin/{kind:instances|users}/{id}/resume")
@operation("Resume what an operator suspended: an instance, or every instance of a user", tag="admin",
           responses={200: SuspensionOutcomes}, errors=(404, 409),
           description=ADMINS + " It gets back the status it had, unless billing still holds it.")
async def admin_resume(request: web.Request) -> web.Response:
    admin, tools = _admin(request)
    target, actor = request.match_info["id"], actor_of(admin)
    if request.match_info["kind"] == "users":
        return _outcomes(await tools.suspensions.resume_user(target, actor=actor))
    return _outcomes([await tools.suspensions.resume(target, actor=actor)])


@routes.get("/api/admin/audit")
@operation("The audit log, newest first", tag="admin", responses={200: AuditPage}, errors=(400, 404),
           parameters=(*AUDIT, AFTER), description=ADMINS)
async def admin_audit_log(request: web.Request) -> web.Response:
    _, tools = _admin(request)
    wanted = AuditFilter(**{parameter.name: request.query.get(parameter.name, "") for parameter in AUDIT})
    page = await tools.audit.search(wanted, after=request.query.get("after"))
    return web.json_response(AuditPage(entries=[_entry(row) for row in page.rows],
                                       next=page.next_cursor).model_dump(mode="json"))


@routes.post("/api/admin/broadcasts")
@operation("Send a message to every bot user", tag="admin", body=BroadcastRequest, responses={202: BroadcastProgress},
           errors=(404,), description=ADMINS + " Queued, then sent at Telegram's pace by the running bot, once each.")
async def admin_broadcast(request: web.Request) -> web.Response:
    admin, tools = _admin(request)
    body = await json_body(request, BroadcastRequest)
    broadcast = await tools.broadcasts.queue(body.text, actor=actor_of(admin), created_by=admin.id)
    progress = await tools.broadcasts.progress(broadcast.id)
    return web.json_response(_broadcast(progress).model_dump(mode="json"), status=202)


@routes.get("/api/admin/broadcasts/{id}")
@operation("How far a broadcast is", tag="admin", responses={200: BroadcastProgress}, errors=(404,),
           description=ADMINS)
async def admin_broadcast_progress(request: web.Request) -> web.Response:
    _, tools = _admin(request)
    progress = await tools.broadcasts.progress(request.match_info["id"])
    return web.json_response(_broadcast(progress).model_dump(mode="json"))
