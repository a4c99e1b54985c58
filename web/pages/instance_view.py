"""An instance as its pages show it: the API's own shape (web.api.instances.instance_json, the
one the pages' scripts poll) plus the words a person reads: status, uptime, what needs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.models import Instance
from db.status import Status
from db.types import utcnow
from provisioner.providers import get_provider
from provisioner.service import InstanceService
from web.api.instances import instance_json
from web.pages.status_words import SHOWS_UPTIME, action_words, offered, status_words


OPERATOR_SUSPENDED = "The platform's operator suspended it: it stays stopped, with its data, until they resume it."


@dataclass(frozen=True)
class Attention:
    kind: str  # what it is about (action, status, bot, owner): the page's script drops it once resolved
    alert: str  # its class beside `alert`
    text: str
    link: str | None = None  # where to deal with it
    link_text: str | None = None


def instance_view(service: InstanceService, instance: Instance) -> dict:
    shown = instance_json(service, instance)
    action = shown["action"]
    return {
        **shown,
        "words": status_words(instance.status),
        "doing": action_words(action),
        "provider_name": _provider_name(instance.model_provider),
        "uptime": uptime(instance.running_since) if instance.status in SHOWS_UPTIME else None,
        "created_text": moment_text(instance.created_at),
        "running_since_text": moment_text(instance.running_since),
        "offers": offered(instance.status, action),
        "needs_owner": _needs_owner(instance),
        "attention": attention(instance, action),
    }


def attention(instance: Instance, action: str | None) -> list[Attention]:
    """What the owner should know or do, most urgent first."""
    page = f"/instances/{instance.id}"
    items: list[Attention] = []
    if action:
        items.append(Attention("action", "alert-warn", f"{action_words(action)}: in progress.", f"{page}#progress",
                               "Follow it"))
    if instance.status == Status.ERROR:
        reason = instance.status_reason or "no reason was given"
        items.append(Attention("status", "alert-error", f"It could not start: {reason}", page, "Try again"))
    elif instance.failure_streak and instance.status == Status.PROVISIONING:
        next_try = f" Next try at {moment_text(instance.next_attempt_at)}." if instance.next_attempt_at else ""
        reason = f" Last error: {instance.status_reason}" if instance.status_reason else ""
        crashes = f"It keeps crashing ({instance.failure_streak} times in a row).{next_try}{reason}"
        items.append(Attention("status", "alert-error", crashes, f"{page}#logs", "See its logs"))
    elif instance.admin_suspended_at is not None:  # the operator's, not billing's: paying does not lift it
        items.append(Attention("status", "alert-warn", instance.status_reason or OPERATOR_SUSPENDED))
    elif instance.status in (Status.SUSPENDED, Status.AWAITING_PAYMENT):
        items.append(Attention("status", "alert-warn", status_words(instance.status).meaning, "/billing", "Billing"))
    if instance.status != Status.DELETING and instance.telegram_bot_id is None:
        items.append(Attention("bot", "alert-warn", "No Telegram bot yet: add the token @BotFather gave you.",
                               f"{page}/settings", "Add your bot"))
    elif _needs_owner(instance):
        items.append(Attention("owner", "alert-warn", "No Telegram owner yet: message your bot, then approve the "
                               "pairing code it answers with.", f"{page}#pairing", "Approve a code"))
    return items


def uptime(since: datetime | None, now: datetime | None = None) -> str | None:
    """'up 3 h 12 min', to the minute."""
    if since is None:
        return None
    minutes = max(0, int(((now or utcnow()) - since).total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"up {days} d {hours} h"
    if hours:
        return f"up {hours} h {minutes} min"
    return f"up {minutes} min" if minutes else "up less than a minute"


def moment_text(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else None


def _needs_owner(instance: Instance) -> bool:
    """Its bot answers nobody yet: a pairing code must be approved."""
    return (instance.telegram_bot_id is not None and instance.telegram_allow_from is None
            and instance.status != Status.DELETING)


def _provider_name(provider_id: str) -> str:
    try:
        return get_provider(provider_id).display_name
    except ValueError:  # a provider retired since: its id is all there is to say
        return provider_id
