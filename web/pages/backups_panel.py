"""The Backups section of an instance's page: its backups as the owner reads them (when, how
big, what made each), what can be done with them now, and why a request about them was refused."""

from __future__ import annotations

from aiohttp import web

from db.models import Instance, InstanceBackup, User
from db.status import LOCKED
from provisioner.instance_backups.words import kind_text, size_text, when_text
from web.keys import SERVICES
from web.pages.instance_view import moment_text


def backup_view(backup: InstanceBackup) -> dict:
    page = f"/instances/{backup.instance_id}/backups/{backup.id}"
    return {
        "id": str(backup.id),
        "created_at": backup.created_at.isoformat(),
        "when": when_text(backup.created_at),
        "exact": moment_text(backup.created_at),
        "size": size_text(backup.size),
        "kind": kind_text(backup.kind),
        "download_url": f"{page}/download",
        "restore_url": f"{page}/restore",
        "delete_url": f"{page}/delete",
    }


async def backups_panel(request: web.Request, user: User, instance: Instance, *, busy: bool,
                        problem: str | None = None) -> dict | None:
    """None when this server keeps no instance backups (the section is not shown). `busy`: an
    action is in progress, so a backup would be refused until it ends."""
    backups = request.app[SERVICES].backups
    if backups is None:
        return None
    return {
        "backups": [backup_view(backup) for backup in await backups.list(user, instance.id)],
        "can_back_up": instance.status not in LOCKED and not busy,
        "problem": problem,
    }
