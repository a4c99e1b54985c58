"""Who is visiting an instance's host: the instance host's own cookie, sealed with the key ring
and bound to that instance (a cookie carried to another instance's host does not open), naming
the owner and the dashboard session it came from. That session is checked on every request, so
signing out of the dashboard (or any end of that session) ends the instance host's too.

The cookie is host-only like the dashboard's, on the instance's host alone: the dashboard never
sees it and the instance host never sees the dashboard's."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from db.sealing import KeyRing, SealedSecretError
from db.types import utcnow

LIFETIME = timedelta(hours=12)  # then the browser goes through the dashboard again, unseen when signed in
MAX_COOKIE = 1024


@dataclass(frozen=True)
class Visitor:
    user_id: uuid.UUID
    session_id: uuid.UUID  # the dashboard session this visit comes from


def cookie_name(secure: bool) -> str:
    return "__Host-clawfleet_instance" if secure else "clawfleet_instance"


def sealed_visitor(ring: KeyRing, instance_id: uuid.UUID, visitor: Visitor, *, now: datetime | None = None) -> str:
    expires = (now or utcnow()) + LIFETIME
    payload = {"u": str(visitor.user_id), "s": str(visitor.session_id), "e": int(expires.timestamp())}
    return ring.seal(json.dumps(payload, separators=(",", ":")), _bound_to(instance_id))


def opened_visitor(ring: KeyRing, value: str, instance_id: uuid.UUID) -> Visitor | None:
    """The visitor a cookie names on this instance's host; None for anything else (another
    instance's cookie, an expired or altered one, garbage)."""
    if not value or len(value) > MAX_COOKIE or not value.isascii():
        return None
    try:
        payload = json.loads(ring.open(value, _bound_to(instance_id)))
        visitor = Visitor(uuid.UUID(payload["u"]), uuid.UUID(payload["s"]))
        expires = int(payload["e"])
    except (SealedSecretError, ValueError, KeyError, TypeError):
        return None
    return visitor if expires > utcnow().timestamp() else None


def _bound_to(instance_id: uuid.UUID) -> bytes:
    return f"clawfleet:instance-host:{instance_id}".encode()
