"""The `clawfleet` command: serve, migrate, keys, runtime, image, egress-guard, invites, refusals,
admin, backup, restore, version."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError

from accounts.account_links import AccountLinks
from accounts.delivery import Delivery
from accounts.invites import Invites
from accounts.login_links import LoginLinks
from accounts.refusals import CAPACITY as REFUSALS_KEPT
from accounts.refusals import Refusals
from billing.outbox import pending_effects, retry_given_up
from clawfleet import __version__
from clawfleet import backup as backups
from clawfleet.admin_cli import add_admin_commands
from clawfleet.logs import configure_logging
from clawfleet.settings import Settings, SettingsError, load_settings
from db.engine import create_engine, create_session_factory, describe_url, missing_sqlite_file
from db.backup_cipher import BackupError
from db.errors import ServiceError
from db.keyfile import key_file, load_keyring, read_key_file, write_key_file
from db.migrate import pending_model_changes, upgrade
from db.redaction import redact
from db.rotation import rotate_secrets
from db.sealing import KeyRingError, SealedSecretError, generate_key

log = structlog.get_logger("clawfleet")


class CommandError(Exception):
    """Ends the command with one readable line on stderr and exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clawfleet",
        description="ClawFleet: a private OpenClaw assistant for everyone. "
        "Configured by CLAWFLEET_* environment variables (or a .env file).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the platform (web app, bot, provisioner) in one process",
                                description="Apply pending migrations, then serve until SIGTERM or Ctrl-C.")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date",
                                  description="Apply every pending migration to CLAWFLEET_DATABASE_URL.")
    migrate.add_argument("--check", action="store_true",
                         help="apply nothing; exit 1 unless the database matches the models")
    migrate.set_defaults(handler=cmd_migrate)

    keys = commands.add_parser("keys", help="manage the keys that seal secrets at rest",
                               description="Manage the key ring that seals API keys and bot tokens.")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    rotate = key_commands.add_parser(
        "rotate",
        help="re-seal every secret under the first key",
        description="Re-seal every stored secret under the first key of the ring, so older keys can be "
        "dropped. With CLAWFLEET_SECRET_KEYS set: put the new key first there, run this, then remove the "
        "old keys. With the generated key file: --new-key and --drop-old do both steps for you.",
    )
    rotate.add_argument("--new-key", action="store_true", help="key file only: add a fresh key in front first")
    rotate.add_argument("--drop-old", action="store_true",
                        help="key file only: after re-sealing, remove every key but the first")
    rotate.set_defaults(handler=cmd_keys_rotate)
    generate = key_commands.add_parser("generate", help="print a new random key",
                                       description="Print a new key for CLAWFLEET_SECRET_KEYS.")
    generate.set_defaults(handler=cmd_keys_generate)

    runtime = commands.add_parser("runtime", help="manage the process runtime's OpenClaw",
                                  description="The process runtime runs gateways with Node.js 24 and a pinned "
                                  "OpenClaw installed into CLAWFLEET_RUNTIME_DIR (default: DATA_DIR/runtime).")
    runtime_commands = runtime.add_subparsers(dest="runtime_command", required=True, metavar="ACTION")
    runtime_install = runtime_commands.add_parser(
        "install", help="install Node.js 24 and the pinned OpenClaw (nothing to do when present)",
        description="Install Node.js 24 and OpenClaw CLAWFLEET_OPENCLAW_VERSION from the npm registry into "
        "CLAWFLEET_RUNTIME_DIR. Safe to repeat: present parts are kept, interrupted ones redone.")
    runtime_install.add_argument("--dir", type=Path, default=None, metavar="DIR",
                                 help="install here (default: CLAWFLEET_RUNTIME_DIR, else DATA_DIR/runtime)")
    runtime_install.set_defaults(handler=cmd_runtime_install)

    image = commands.add_parser("image", help="the OpenClaw container image of the docker runtime",
                                description="The image CLAWFLEET_OPENCLAW_IMAGE that the docker runtime runs.")
    image_commands = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    image_build = image_commands.add_parser(
        "build", help="build the OpenClaw image (--offline: without a registry)",
        description="Build CLAWFLEET_OPENCLAW_IMAGE for OpenClaw CLAWFLEET_OPENCLAW_VERSION on the engine at "
        "CLAWFLEET_DOCKER_URL (else DOCKER_HOST): `docker build` of images/openclaw, which needs a registry; "
        "or with --offline, from a Debian mirror (debootstrap, as root; CLAWFLEET_DEBIAN_MIRROR, else the one "
        "this host's apt sources name) and the Node.js 24 and OpenClaw of "
        "`clawfleet runtime install` (installed when missing). An offline image already built from the same "
        "recipe is kept: nothing to do.")
    image_build.add_argument("--offline", action="store_true",
                             help="build without a registry, from this machine's OpenClaw install")
    image_build.set_defaults(handler=cmd_image_build)

    guard = commands.add_parser(
        "egress-guard", help="install the host firewall rules that keep instances off the metadata service",
        description="Install (or refresh) the iptables rules that refuse instance containers the cloud metadata "
        "service and CLAWFLEET_DOCKER_EGRESS_DENY (default 169.254.0.0/16) and every address of this host "
        "but DNS, for the instance networks of CLAWFLEET_DOCKER_SUBNET_POOL. Run as root on the Docker engine's "
        "host. `clawfleet serve` does this itself when it can; run it where it cannot (compose).")
    guard_action = guard.add_mutually_exclusive_group()
    guard_action.add_argument("--print", dest="action", action="store_const", const="print",
                              help="print the rules as a shell script instead")
    guard_action.add_argument("--check", dest="action", action="store_const", const="check",
                              help="exit 0 when the rules are in place, 1 when not")
    guard_action.add_argument("--remove", dest="action", action="store_const", const="remove",
                              help="take the rules out")
    guard.set_defaults(handler=cmd_egress_guard, action="install")

    invites = commands.add_parser("invites", help="invite codes for CLAWFLEET_ACCESS=invite",
                                  description="One-time invite codes: a person redeems one by sending "
                                  "/start <code> to the bot.")
    invite_commands = invites.add_subparsers(dest="invites_command", required=True, metavar="ACTION")
    invites_create = invite_commands.add_parser("create", help="make new codes and print them (shown once)",
                                                description="Make new one-time invite codes; only their hashes "
                                                "are stored, so copy them now.")
    invites_create.add_argument("--count", type=int, default=1, help="how many (default 1)")
    invites_create.add_argument("--days", type=float, default=None,
                                help="valid this many days (default: until used)")
    invites_create.set_defaults(handler=cmd_invites_create)

    refusals = commands.add_parser("refusals", help="who the bot kept out lately (allowlist, invite)",
                                   description="The people the access policy kept out of the bot, newest "
                                   "first: Telegram id, username, how often, first and last time. No account "
                                   "is made for them; add an id to CLAWFLEET_ALLOWED_TELEGRAM_IDS to let it in.")
    refusals.add_argument("--limit", type=int, default=50, help="how many at the most (default 50)")
    refusals.set_defaults(handler=cmd_refusals)

    billing = commands.add_parser("billing", help="billing's state for the operator",
                                  description="What billing is doing, for the operator.")
    billing_commands = billing.add_subparsers(dest="billing_command", required=True, metavar="ACTION")
    effects = billing_commands.add_parser(
        "effects", help="billing's effects not carried out yet (retrying or given up)",
        description="The outbox's effects not done yet, oldest first: when queued, kind, attempts, the next "
        "attempt (or GIVEN UP) and the last error. A given-up effect is retried again with --retry.")
    effects.add_argument("--retry", action="store_true", help="try the given-up effects again, from now")
    effects.set_defaults(handler=cmd_billing_effects)

    admin = commands.add_parser("admin", help="the operator's tools: admins, users, instances, audit, broadcasts",
                                description="What the operator does by hand: admins, accounts, suspensions, the "
                                "audit log, broadcasts (the dashboard's admin section has the same).")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    link = admin_commands.add_parser(
        "link", help="print a one-time link for an account, to hand over yourself",
        description="Make a one-time link for the account of EMAIL and print it (shown once), for when no "
        "email (CLAWFLEET_SMTP_URL) or Telegram chat can carry it: give it to its owner privately. Links open "
        "under CLAWFLEET_PUBLIC_URL; a new one voids the account's older unused links of the same kind.")
    link_kinds = link.add_subparsers(dest="link_kind", required=True, metavar="KIND")
    for kind, purpose, text in (("verify-email", "verify_email", "prove the account's email (valid 24 hours)"),
                                ("reset-password", "reset_password", "choose a new password (valid 1 hour)"),
                                ("login", "login", "log in to the dashboard (valid 10 minutes)")):
        kind_parser = link_kinds.add_parser(kind, help=text, description=f"Print a link to {text}.")
        kind_parser.add_argument("email", metavar="EMAIL", help="the account's email")
        kind_parser.set_defaults(handler=cmd_admin_link, purpose=purpose)
    add_admin_commands(admin_commands, cmd_admin_tool)

    backup = commands.add_parser("backup", help="write an encrypted backup of the database and the key ring",
                                 description=backups.BACKUP_DESCRIPTION)
    backup.add_argument("--output", "-o", type=Path, required=True, metavar="FILE", help="where to write it")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", help="restore a backup into this install's database and key ring",
                                  description=backups.RESTORE_DESCRIPTION)
    restore.add_argument("file", type=Path, metavar="FILE", help="the backup file")
    restore.add_argument("--force", action="store_true",
                         help="replace a database that already holds accounts or instances (all its rows)")
    restore.add_argument("--keys-output", type=Path, metavar="KEYFILE",
                         help="write the backup's key ring to KEYFILE (0600) instead, for CLAWFLEET_SECRET_KEYS_FILE")
    restore.set_defaults(handler=cmd_restore)

    version = commands.add_parser("version", help="print the version", description="Print ClawFleet's version.")
    version.set_defaults(handler=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.handler is cmd_version or args.handler is cmd_keys_generate:
        return args.handler(args, None)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"clawfleet: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return args.handler(args, settings)
    except CommandError as exc:
        print(f"clawfleet: {redact(str(exc))}", file=sys.stderr)
        return 1


def cmd_version(_args: argparse.Namespace, _settings: None) -> int:
    print(f"clawfleet {__version__}")
    return 0


def cmd_keys_generate(_args: argparse.Namespace, _settings: None) -> int:
    print(generate_key())
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    if args.check:
        changes = asyncio.run(_with_engine(settings, pending_model_changes))
        for change in changes:
            print(f"not migrated: {change}")
        print("database matches the models" if not changes else f"{len(changes)} difference(s)")
        return 1 if changes else 0
    asyncio.run(_with_engine(settings, upgrade))
    print(f"database at {describe_url(settings.database_url)} is up to date")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from clawfleet.server import serve  # imports the web stack only when serving

    if not args.no_migrate:
        asyncio.run(_with_engine(settings, upgrade))
    serve(settings)
    return 0


def cmd_runtime_install(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from provisioner.openclaw.install import InstallError, find_install, install

    target = args.dir or settings.resolved_runtime_dir
    present = find_install(target, settings.openclaw_version) is not None
    began = time.monotonic()
    try:
        done = install(target, settings.openclaw_version)
    except InstallError as exc:
        raise CommandError(f"could not install OpenClaw {settings.openclaw_version} into {target}: {exc}") from None
    what = "was already installed" if present else f"installed in {time.monotonic() - began:.0f} s"
    print(f"OpenClaw {done.version} with Node.js 24 in {done.root}: {what}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    configured = [key.get_secret_value() for key in settings.secret_keys]
    path = key_file(settings.data_dir)
    if (args.new_key or args.drop_old) and configured:
        source = "CLAWFLEET_SECRET_KEYS_FILE" if settings.secret_keys_file else "CLAWFLEET_SECRET_KEYS"
        raise CommandError(
            f"--new-key and --drop-old manage the generated key file, but {source} is set: "
            f"put a new key (clawfleet keys generate) first in {source}, run rotate, "
            "then remove the old keys"
        )
    try:
        if args.new_key:
            load_keyring(settings.data_dir, [])  # makes the file if this is the first run
            write_key_file(path, [generate_key(), *read_key_file(path)])
        ring = load_keyring(settings.data_dir, configured)
        report = asyncio.run(_with_engine(settings, lambda engine: rotate_secrets(engine, ring)))
    except (KeyRingError, SealedSecretError) as exc:
        raise CommandError(f"cannot rotate: {exc}") from None
    tables = ", ".join(f"{table}: {count}" for table, count in report.per_table.items())
    print(f"re-sealed {report.resealed} secret(s) under key {ring.primary_id} ({tables}); "
          f"{report.already_current} already under it")
    if args.drop_old:
        write_key_file(path, read_key_file(path)[:1])
        print(f"removed the old keys from {path}")
    return 0


def cmd_invites_create(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.count <= 1000:
        raise CommandError("--count must be between 1 and 1000")
    if args.days is not None and args.days <= 0:
        raise CommandError("--days must be more than 0")
    valid_for = timedelta(days=args.days) if args.days else None

    async def create(engine):
        return await Invites(create_session_factory(engine)).create(args.count, valid_for)

    for code in asyncio.run(_with_engine(settings, create)):
        print(code)
    if settings.access != "invite":
        print("note: CLAWFLEET_ACCESS is not 'invite', so nobody needs these codes yet", file=sys.stderr)
    return 0


def cmd_refusals(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= REFUSALS_KEPT:
        raise CommandError(f"--limit must be between 1 and {REFUSALS_KEPT}")

    async def latest(engine):
        return await Refusals(create_session_factory(engine)).recent(args.limit)

    for row in asyncio.run(_with_engine(settings, latest)):
        username = f"@{row.telegram_username}" if row.telegram_username else "-"
        print(f"{row.telegram_user_id}\t{username}\t{row.count}\t{row.first_seen_at:%Y-%m-%d %H:%M}"
              f"\t{row.last_seen_at:%Y-%m-%d %H:%M}")
    return 0


def cmd_billing_effects(args: argparse.Namespace, settings: Settings) -> int:
    async def listed(engine):
        sessions = create_session_factory(engine)
        if args.retry:
            await retry_given_up(sessions)
        return await pending_effects(sessions)

    rows = asyncio.run(_with_engine(settings, listed))
    for row in rows:
        when = "GIVEN UP" if row.given_up_at else f"next {row.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        print(f"{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.kind}\t{row.attempts} attempts\t{when}"
              f"\t{row.last_error or '-'}")
    if not rows:
        print("nothing pending: every billing effect was carried out", file=sys.stderr)
    return 0


def cmd_admin_link(args: argparse.Namespace, settings: Settings) -> int:
    async def make(engine):
        sessions = create_session_factory(engine)
        links = AccountLinks(sessions, LoginLinks(sessions), Delivery(settings.public_url))
        return await links.operator_link(args.email, args.purpose)

    try:
        made = asyncio.run(_with_engine(settings, make))
    except ServiceError as exc:
        raise CommandError(exc.message) from None
    print(made.url)
    print(f"works once, until {made.link.expires_at:%Y-%m-%d %H:%M} UTC: give it to its owner privately",
          file=sys.stderr)
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        phrase = backups.passphrase(settings, confirm=True)
        missing = missing_sqlite_file(settings.database_url)
        if missing is not None:  # opening it would make an empty database, and back that up
            raise BackupError(f"there is no database at {missing}, so nothing to back up (are CLAWFLEET_DATA_DIR "
                              "and CLAWFLEET_DATABASE_URL the install's?)")
        print(asyncio.run(_with_engine(settings, lambda engine: backups.back_up(engine, settings, args.output, phrase))))
    except BackupError as exc:
        raise CommandError(f"backup: {exc}") from None
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        phrase = backups.passphrase(settings, confirm=False)
        archive = asyncio.run(backups.open_backup(settings, args.file, phrase, keys_output=args.keys_output))
        print(asyncio.run(_with_engine(settings, lambda engine: backups.restore_into(
            engine, settings, archive, force=args.force, keys_output=args.keys_output))))
    except BackupError as exc:
        raise CommandError(f"restore: {exc}; nothing was changed") from None
    return 0


def cmd_admin_tool(args: argparse.Namespace, settings: Settings) -> int:
    """One of clawfleet.admin_cli's commands, over the database."""
    try:
        return asyncio.run(_with_engine(settings, lambda engine: args.tool(args, create_session_factory(engine))))
    except ServiceError as exc:
        raise CommandError(exc.message) from None


async def _with_engine(settings: Settings, action):
    engine = create_engine(settings.database_url)
    try:
        return await action(engine)
    except (OSError, OperationalError, InterfaceError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CommandError(f"cannot use the database at {describe_url(settings.database_url)}: {reason}") from None
    finally:
        await engine.dispose()


def cmd_image_build(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from provisioner.images.dockerfile import build_with_registry
    from provisioner.images.errors import ImageBuildError
    from provisioner.images.offline import build_offline, default_cache_dir, image_id
    from provisioner.openclaw.install import InstallError, install

    tag, version = settings.openclaw_image, settings.openclaw_version
    docker_host = settings.docker_url or os.environ.get("DOCKER_HOST") or None
    began = time.monotonic()
    try:
        if args.offline:
            runtime_dir = settings.resolved_runtime_dir
            try:
                openclaw = install(runtime_dir, version)  # nothing to do, and no network, when present
            except InstallError as exc:
                raise CommandError(f"could not install OpenClaw {version} into {runtime_dir}: {exc}") from None
            image = build_offline(openclaw, tag, docker_host, default_cache_dir(runtime_dir),
                                  mirror=settings.debian_mirror, log=lambda message: print(message, flush=True))
        else:
            build_with_registry(version, tag, docker_host)
            image = image_id(tag, docker_host)
    except ImageBuildError as exc:
        raise CommandError(f"could not build {tag}: {exc}") from None
    print(f"{tag} is image {image.removeprefix('sha256:')[:12]} on {docker_host or 'the default Docker engine'} "
          f"({time.monotonic() - began:.1f} s)")
    return 0


def cmd_egress_guard(args: argparse.Namespace, settings: Settings) -> int:
    from clawfleet.runtime import egress_rules
    from provisioner.runtimes import egress

    rules = egress_rules(settings)
    if args.action == "print":
        print(rules.script(), end="")
        return 0
    if os.geteuid() != 0:
        raise CommandError("egress guard: the host's firewall needs root; run this as root on the engine's host, "
                           "or use --print")
    try:
        if args.action == "check":
            present = asyncio.run(egress.installed(rules))
            print(f"egress guard for {rules.pool}: {'in place' if present else 'missing'}")
            return 0 if present else 1
        if args.action == "remove":
            asyncio.run(egress.remove(rules))
            print(f"egress guard for {rules.pool}: removed")
            return 0
        asyncio.run(egress.install(rules))
    except egress.EgressGuardError as exc:
        raise CommandError(f"egress guard: {exc}") from None
    print(f"egress guard for {rules.pool}: installed (refused: {', '.join(rules.denied)} and this host but DNS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
