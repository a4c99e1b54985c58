"""What a person reads for each instance status (db.status) and each action in progress: one
mapping, used by the pages and handed to their scripts, so a status is said the same way
everywhere. Also which buttons each status offers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from db.status import LOCKED, Action, Status


@dataclass(frozen=True)
class Words:
    label: str  # the badge
    badge: str  # the badge's class beside `badge` ("" for a plain one)
    meaning: str  # one sentence beside it


STATUS_WORDS: dict[Status, Words] = {
    Status.AWAITING_PAYMENT: Words("Waiting for payment", "badge-busy", "It starts once the first payment is through."),
    Status.PROVISIONING: Words("Starting", "badge-busy", "Its gateway is starting; this takes about a minute."),
    Status.RUNNING: Words("Running", "badge-running", "It is up and answering."),
    Status.STOPPED: Words("Stopped", "", "You stopped it. Start it again whenever you like."),
    Status.HIBERNATED: Words("Asleep", "", "It sleeps while idle; your next message wakes it."),
    Status.ERROR: Words("Failed", "badge-failed", "It could not be started."),
    Status.SUSPENDED: Words("Suspended", "badge-failed", "Your subscription ended, so it is stopped; its data is kept for a while."),
    Status.DELETING: Words("Deleting", "badge-busy", "It is being deleted."),
}

ACTION_WORDS: dict[Action, str] = {
    Action.DEPLOY: "Starting",
    Action.RESTART: "Restarting",
    Action.STOP: "Stopping",
    Action.DELETE: "Deleting",
    Action.RECOVER: "Coming back up",
    Action.HALT: "Stopping",
    Action.CRASHED: "Recovering from a crash",
    Action.FREE_MEMORY: "Restarting to free memory",
    Action.BACKUP: "Backing up",
    Action.SCHEDULED_BACKUP: "Backing up (scheduled)",
    Action.RESTORE: "Restoring a backup",
}

# The buttons each status offers when nothing is in progress (a locked status offers none).
OFFERS: dict[Status, tuple[str, ...]] = {
    Status.PROVISIONING: ("restart", "stop"),  # waiting to be restarted after a crash
    Status.RUNNING: ("restart", "stop"),
    Status.STOPPED: ("start",),
    Status.HIBERNATED: ("start", "stop"),
    Status.ERROR: ("start",),
    **{status: () for status in LOCKED},
}
# Statuses whose uptime means something: their gateway answers.
SHOWS_UPTIME = frozenset({Status.RUNNING})
BUTTONS = {"start": "Start", "restart": "Restart", "stop": "Stop"}  # in the order shown


def status_words(status: str) -> Words:
    return STATUS_WORDS[Status(status)]


def action_words(action: str | None) -> str | None:
    return ACTION_WORDS[Action(action)] if action else None


def offered(status: str, action: str | None) -> tuple[str, ...]:
    """The actions to offer: none while one is in progress."""
    return () if action else OFFERS[Status(status)]


def for_scripts() -> dict:
    """The same words for the page's scripts (a data attribute), so they never keep their own."""
    return {
        "statuses": {status.value: asdict(words) for status, words in STATUS_WORDS.items()},
        "actions": {action.value: words for action, words in ACTION_WORDS.items()},
        "offers": {status.value: list(actions) for status, actions in OFFERS.items()},
        "shows_uptime": sorted(SHOWS_UPTIME),
    }
