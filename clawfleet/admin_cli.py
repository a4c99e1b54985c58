"""`clawfleet admin grant|revoke|users|instances|suspend|resume|audit|broadcast`: the admin
section's tools at the command line (admin/). Each is an async function of the parsed arguments
and a session factory, run by clawfleet.cli. Suspensions and broadcasts are queued: the running
platform carries them out (it alone can stop a gateway or send through the bot); the command
waits a moment to say whether it did."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.login_links import LoginLinks
from admin import requests
from admin.audit_search import AuditFilter, AuditSearch
from admin.broadcasts import Broadcasts
from admin.directory import Directory
from admin.operators import Operators
from admin.suspensions import as_uuid
from db.errors import InvalidInput, NotFound
from db.models import Instance, OutboxEffect, User

Sessions = async_sessionmaker[AsyncSession]


def cli_actor() -> str:
    """How the audit log names whoever runs these commands: their login on this machine."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def add_admin_commands(commands: argparse._SubParsersAction, handler: Callable) -> None:
    """Register the commands under `clawfleet admin`; `handler` runs each one's `tool`."""

    def command(name: str, tool, text: str, description: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=text, description=description)
        parser.set_defaults(handler=handler, tool=tool)
        return parser

    for name, tool, verb in (("grant", grant, "make"), ("revoke", revoke, "no longer make")):
        command(name, tool, f"{verb} the account of EMAIL an admin",
                f"{verb.capitalize()} the account of EMAIL an admin of the dashboard's admin section "
                "(audited).").add_argument("email", metavar="EMAIL")
    users = command("users", list_users, "list accounts, newest first",
                    "Accounts, newest first: email, Telegram id, instances, created, admin, plan.")
    users.add_argument("--search", default="", help="email, Telegram username or id, or account id")
    users.add_argument("--limit", type=int, default=50, help="how many at the most (default 50, up to 1000)")
    instances = command("instances", list_instances, "list instances, newest first",
                        "Instances, newest first: id, owner, status, provider/model, memory, created, last error.")
    instances.add_argument("--search", default="", help="subdomain, bot username, owner email or instance id")
    instances.add_argument("--status", default="", help="only this status")
    instances.add_argument("--user", default=None, metavar="EMAIL", help="only this owner's")
    instances.add_argument("--limit", type=int, default=50, help="how many at the most (default 50, up to 1000)")
    for name, tool, text in (("suspend", suspend, "suspend an instance, or all of a user's"),
                             ("resume", resume, "resume what an admin suspended")):
        parser = command(name, tool, text, f"{text.capitalize()}: queued, and carried out by the running platform "
                         "(its owner is told in chat). Billing neither lifts an admin's suspension nor is lifted by it.")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("instance", nargs="?", metavar="INSTANCE_ID")
        target.add_argument("--user", metavar="EMAIL", help="every instance of this account")
        if name == "suspend":
            parser.add_argument("--reason", default="", help="what the owner reads")
        parser.add_argument("--wait", type=float, default=30, help="seconds to wait for the platform (default 30)")
    audit = command("audit", list_audit, "the audit log, newest first",
                    "The audit log, newest first: when, actor, action, user, instance, details.")
    audit.add_argument("--actor", default="", help="part of the actor (admin:ada@, cli:, billing)")
    audit.add_argument("--action", default="", help="an action, or a family ending in a dot (instance.)")
    audit.add_argument("--user", default="", help="an account's email or id")
    audit.add_argument("--instance", default="", help="an instance id")
    audit.add_argument("--since", default="", help="UTC date or time, e.g. 2026-05-01 or 2026-05-01T14:30")
    audit.add_argument("--until", default="", help="before this UTC date or time")
    audit.add_argument("--limit", type=int, default=50, help="how many at the most (default 50, up to 1000)")
    broadcast = command("broadcast", queue_broadcast, "send TEXT to every bot user",
                        "Queue TEXT for everyone with a Telegram chat with the bot; the running platform's sender "
                        "delivers it, paced to Telegram's limits, once each.")
    broadcast.add_argument("text", metavar="TEXT")


async def grant(args: argparse.Namespace, sessions: Sessions) -> int:
    user = await Operators(sessions, LoginLinks(sessions)).grant(args.email, actor=cli_actor())
    print(f"{user.email} is an admin")
    return 0


async def revoke(args: argparse.Namespace, sessions: Sessions) -> int:
    user = await Operators(sessions, LoginLinks(sessions)).revoke(args.email, actor=cli_actor())
    print(f"{user.email} is no longer an admin")
    return 0


async def list_users(args: argparse.Namespace, sessions: Sessions) -> int:
    page = await Directory(sessions).users(args.search, size=_limit(args.limit))
    for row in page.rows:
        user = row.user
        print("\t".join([user.email or "-", str(user.telegram_user_id or "-"), str(row.instances),
                         f"{user.created_at:%Y-%m-%d %H:%M}", "admin" if user.is_admin else "-",
                         f"{row.plan} ({row.subscription})" if row.plan else "-"]))
    return 0


async def list_instances(args: argparse.Namespace, sessions: Sessions) -> int:
    owner = (await _user(sessions, args.user)).id if args.user else None
    page = await Directory(sessions).instances(args.search, status=args.status, owner=owner, size=_limit(args.limit))
    for row in page.rows:
        instance = row.instance
        held = " (by an admin)" if instance.admin_suspended_at else ""
        print("\t".join([str(instance.id), row.owner_email or f"telegram:{row.owner_telegram_id}",
                         instance.status + held, f"{instance.model_provider}/{instance.model}",
                         f"{instance.memory_mb} MB" if instance.memory_mb else "-",
                         f"{instance.created_at:%Y-%m-%d %H:%M}", instance.status_reason or "-"]))
    return 0


async def suspend(args: argparse.Namespace, sessions: Sessions) -> int:
    return await _request(args, sessions, requests.SUSPEND, "suspension")


async def resume(args: argparse.Namespace, sessions: Sessions) -> int:
    return await _request(args, sessions, requests.RESUME, "resume")


async def _request(args: argparse.Namespace, sessions: Sessions, kind: str, done: str) -> int:
    reason = getattr(args, "reason", "")
    if args.user:
        user = await _user(sessions, args.user)
        key = await requests.queue(sessions, kind, actor=cli_actor(), user_id=user.id, reason=reason)
        what = f"every instance of {user.email}"
    else:
        instance_id = as_uuid(args.instance, "instance")
        async with sessions() as session:
            row = await session.get(Instance, instance_id)
        if row is None:
            raise NotFound(f"No instance has the id {instance_id}.", field="instance")
        key = await requests.queue(sessions, kind, actor=cli_actor(), instance_id=instance_id,
                                   user_id=row.user_id, reason=reason)
        what = f"instance {instance_id}"
    effect = await _wait_for(sessions, key, args.wait)
    if effect.done_at is not None:
        print(f"{what}: {done} carried out")
    elif effect.last_error:
        print(f"{what}: {done} not carried out yet, the platform retries ({effect.last_error})")
    else:
        print(f"{what}: queued; the running platform carries it out (`clawfleet billing effects` lists it until then)")
    return 0


async def _wait_for(sessions: Sessions, key: str, wait_s: float) -> OutboxEffect:
    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        async with sessions() as session:
            effect = await session.scalar(select(OutboxEffect).where(OutboxEffect.key == key))
        if effect.done_at is not None or effect.attempts or time.monotonic() >= deadline:
            return effect
        await asyncio.sleep(0.5)


async def list_audit(args: argparse.Namespace, sessions: Sessions) -> int:
    wanted = AuditFilter(actor=args.actor, action=args.action, user=args.user, instance=args.instance,
                         since=args.since, until=args.until)
    page = await AuditSearch(sessions).search(wanted, size=_limit(args.limit))
    for row in page.rows:
        entry = row.entry
        details = ", ".join(f"{key}={value}" for key, value in sorted((entry.details or {}).items()))
        print("\t".join([f"{entry.created_at:%Y-%m-%d %H:%M:%S}", entry.actor, entry.action,
                         row.user_email or str(entry.user_id or "-"), str(entry.instance_id or "-"), details or "-"]))
    return 0


async def queue_broadcast(args: argparse.Namespace, sessions: Sessions) -> int:
    broadcast = await Broadcasts(sessions).queue(args.text, actor=cli_actor())
    print(f"broadcast {broadcast.id} queued for {broadcast.recipients} bot user(s); the running platform sends it")
    return 0


async def _user(sessions: Sessions, email: str) -> User:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No account has the email {email}.", field="user")
    return user


def _limit(value: int) -> int:
    if not 1 <= value <= 1000:
        raise InvalidInput("--limit must be between 1 and 1000", field="limit")
    return value
