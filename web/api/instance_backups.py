"""The instance-backup routes: thin handlers over provisioner.instance_backups.service. A
download is the decrypted archive, streamed; nothing is held whole in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, suppress

from aiohttp import web

from db.errors import Unavailable
from db.models import InstanceBackup
from provisioner.instance_backups.service import InstanceBackups
from web.api.bodies import json_body
from web.api.instances import ACTION_ERRORS, instance_json
from web.api.operations import operation
from web.api.schemas import InstanceBackupInfo, InstanceBackupList, InstanceInfo, RestoreRequest
from web.auth import current_user
from web.keys import SERVICES

routes = web.RouteTableDef()
ARCHIVE = "application/gzip"


def _backups(request: web.Request) -> InstanceBackups:
    backups = request.app[SERVICES].backups
    if backups is None:
        raise Unavailable("Instance backups are not available on this server.")
    return backups


def backup_info(backup: InstanceBackup) -> InstanceBackupInfo:
    stored = [name for name, where in (("local", backup.local_path), ("s3", backup.s3_key)) if where]
    return InstanceBackupInfo(
        id=backup.id, instance_id=backup.instance_id, created_at=backup.created_at, kind=backup.kind,
        size=backup.size, sha256=backup.sha256, openclaw_version=backup.openclaw_version, stored=stored,
        download_url=f"/api/instances/{backup.instance_id}/backups/{backup.id}/download")


def download_name(backup: InstanceBackup) -> str:
    return f"openclaw-backup-{backup.created_at:%Y-%m-%dT%H-%M-%SZ}-{str(backup.instance_id)[:8]}.tar.gz"


@routes.get("/api/instances/{id}/backups")
@operation("The instance's backups, newest first", tag="instance backups", responses={200: InstanceBackupList},
           errors=(404, 503))
async def list_backups(request: web.Request) -> web.Response:
    found = await _backups(request).list(current_user(request), request.match_info["id"])
    return web.json_response(InstanceBackupList(backups=[backup_info(b) for b in found]).model_dump(mode="json"))


@routes.post("/api/instances/{id}/backups")
@operation("Back up the instance now", tag="instance backups", responses={202: InstanceInfo},
           errors=ACTION_ERRORS, description="Answers at once; follow the backup at the instance's progress_url. "
                                             "Its gateway keeps running (OpenClaw's online backup).")
async def create_backup(request: web.Request) -> web.Response:
    instance = await _backups(request).back_up(current_user(request), request.match_info["id"])
    return web.json_response(instance_json(request.app[SERVICES].instances, instance), status=202)


@routes.get("/api/instances/{id}/backups/{backup_id}/download")
@operation("Download a backup: the decrypted openclaw backup archive", tag="instance backups",
           responses={200: ARCHIVE}, errors=(404, 503),
           description="A .tar.gz that `openclaw backup verify` accepts and `openclaw backup restore` restores.")
async def download_backup(request: web.Request) -> web.StreamResponse:
    backup, chunks = await _backups(request).download(current_user(request), request.match_info["id"],
                                                      request.match_info["backup_id"])
    return await send_archive(request, backup, chunks)


async def send_archive(request: web.Request, backup: InstanceBackup,
                       chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    """A downloaded backup as a file the browser saves (the dashboard's download sends it too)."""
    response = web.StreamResponse(headers={
        "Content-Type": ARCHIVE,
        "Content-Length": str(backup.size),
        "Content-Disposition": f'attachment; filename="{download_name(backup)}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })
    await response.prepare(request)
    async with aclosing(chunks):
        with suppress(ConnectionResetError):
            async for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
    return response


@routes.post("/api/instances/{id}/backups/{backup_id}/restore")
@operation("Restore a backup into this instance or into a new one", tag="instance backups", body=RestoreRequest,
           responses={202: InstanceInfo}, errors=ACTION_ERRORS,
           description="Answers with the instance the restore runs on; follow it at its progress_url. The current "
                       "state is backed up first (kind pre-restore) and kept until the restored one starts.")
async def restore_backup(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_body(request, RestoreRequest)
    instance = await _backups(request).restore(user, request.match_info["id"], request.match_info["backup_id"],
                                               body.target)
    return web.json_response(instance_json(request.app[SERVICES].instances, instance), status=202)


@routes.delete("/api/instances/{id}/backups/{backup_id}")
@operation("Delete a backup", tag="instance backups", responses={204: None}, errors=(404, 503))
async def delete_backup(request: web.Request) -> web.Response:
    await _backups(request).delete(current_user(request), request.match_info["id"], request.match_info["backup_id"])
    return web.Response(status=204)
