"""The Backups section's forms (web/pages/backups_panel.py shows it): back up now, download,
and restore and delete, each after a page that says what will happen. Thin calls into
provisioner.instance_backups.service; someone else's instance or backup is its 404."""

from __future__ import annotations

from aiohttp import web

from db.errors import NotFound, ServiceError
from db.models import Instance, InstanceBackup, User
from provisioner.instance_backups.service import InstanceBackups
from web.api.instance_backups import send_archive
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES
from web.pages.backups_panel import backup_view
from web.pages.guard import signed_in
from web.pages.instance import instance_response
from web.pages.instance_view import instance_view
from web.pages.render import redirect, render

routes = web.RouteTableDef()

BACKUP = "/instances/{id}/backups/{backup_id}"
TARGET_FIELD = "target"
CONFIRMATIONS = {"restore": "instances/backup_restore.html", "delete": "instances/backup_delete.html"}
CHOOSE_TARGET = "Choose where to restore it: into this assistant or into a new one."


def _backups(request: web.Request) -> InstanceBackups:
    backups = request.app[SERVICES].backups
    if backups is None:
        raise web.HTTPNotFound()  # the section is not shown: nothing links here
    return backups


def _refusal(exc: ServiceError) -> int:
    """The status a refusal answers with; a 404 is raised as the 404 page instead."""
    status = STATUS_OF.get(type(exc), 400)
    if status == 404:
        raise exc
    return status


@routes.post("/instances/{id}/backups")
async def back_up_now(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    try:
        instance = await _backups(request).back_up(user, request.match_info["id"])
    except ServiceError as exc:
        return await instance_response(request, user, backup_problem=f"Back up refused: {exc.message}",
                                       status=_refusal(exc))
    raise redirect(f"/instances/{instance.id}?notice=backup")


@routes.get(f"{BACKUP}/download")
async def download(request: web.Request) -> web.StreamResponse:
    user = signed_in(request)
    await request.app[SERVICES].instances.get(user, request.match_info["id"])  # another's: the 404 page
    try:
        backup, chunks = await _backups(request).download(user, request.match_info["id"],
                                                          request.match_info["backup_id"])
    except NotFound as exc:  # a backup gone (or its file): said in the section, the page kept
        return await instance_response(request, user, backup_problem=f"Download refused: {exc.message}",
                                       status=404)
    return await send_archive(request, backup, chunks)


@routes.get(f"{BACKUP}/{{step:restore|delete}}")
async def confirmation_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    instance, backup = await _instance_and_backup(request, user)
    return _confirmation(request, CONFIRMATIONS[request.match_info["step"]], instance, backup)


@routes.post(f"{BACKUP}/restore")
async def restore(request: web.Request) -> web.Response:
    user = signed_in(request)
    form = await form_fields(request, {TARGET_FIELD})
    instance, backup = await _instance_and_backup(request, user)
    target = form.get(TARGET_FIELD)
    if target not in ("same", "new"):
        return _confirmation(request, CONFIRMATIONS["restore"], instance, backup, error=CHOOSE_TARGET,
                             status=400)
    try:
        restored_into = await _backups(request).restore(user, instance.id, backup.id, target)
    except ServiceError as exc:
        return _confirmation(request, CONFIRMATIONS["restore"], instance, backup, error=exc.message,
                             target=target, status=_refusal(exc))
    notice = "restore" if target == "same" else "restore_new"
    raise redirect(f"/instances/{restored_into.id}?notice={notice}")


@routes.post(f"{BACKUP}/delete")
async def delete(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    instance, backup = await _instance_and_backup(request, user)
    await _backups(request).delete(user, instance.id, backup.id)
    raise redirect(f"/instances/{instance.id}?notice=backup_deleted#backups")


async def _instance_and_backup(request: web.Request, user: User) -> tuple[Instance, InstanceBackup]:
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])
    return instance, await _backups(request).get(user, instance.id, request.match_info["backup_id"])


def _confirmation(request: web.Request, template: str, instance: Instance, backup: InstanceBackup, *,
                  error: str | None = None, target: str | None = None, status: int = 200) -> web.Response:
    return render(request, template, {
        "instance": instance_view(request.app[SERVICES].instances, instance),
        "backup": backup_view(backup),
        "error": error,
        "target": target,
    }, status=status)
