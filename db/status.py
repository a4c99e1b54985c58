"""The one vocabulary of what an instance is and what is being done to it.

`Status` is the persisted state machine (the instance row's `status` column): every layer names
statuses through it, groups them through the named sets below, and moves between them only
along `TRANSITIONS`. `Action` names the work that holds an instance's lease, and `preempts`
says which request may cut which work short. What a runtime observes of a gateway has words of
its own (provisioner.runtimes.base), so "running" means one thing.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"  # created, waiting for its first payment
    PROVISIONING = "provisioning"  # its gateway is being started (or restarted after a crash)
    RUNNING = "running"  # its gateway answered ready
    STOPPED = "stopped"  # stopped by its owner
    HIBERNATED = "hibernated"  # asleep while idle; the owner's next message wakes it
    ERROR = "error"  # could not be started; `status_reason` says why
    SUSPENDED = "suspended"  # billing stopped it, or an operator did (Instance.admin_suspended_at)
    DELETING = "deleting"  # on its way out; the row goes when it is done


# Counted against the host's memory budget: their gateways run or are starting.
ACTIVE = frozenset({Status.PROVISIONING, Status.RUNNING})
# Their gateway should run; the reconciler drives them there from what it observes.
SHOULD_RUN = ACTIVE
# Take one of the places the owner's plan gives to running assistants (asleep ones keep theirs).
RUNNING_OR_ASLEEP = frozenset({Status.PROVISIONING, Status.RUNNING, Status.HIBERNATED})
# Their gateway must not run.
AT_REST = frozenset({Status.STOPPED, Status.HIBERNATED, Status.ERROR, Status.AWAITING_PAYMENT, Status.SUSPENDED})
# Count toward the owner's instance cap (a deleting one is already let go).
COUNTED = frozenset(Status) - {Status.DELETING}
# Their owner cannot start, stop or restart them; the reason is said in words.
LOCKED = {
    Status.DELETING: "it is being deleted",
    Status.AWAITING_PAYMENT: "it is waiting for payment",
    Status.SUSPENDED: "it is suspended (billing)",
}
SUSPENDED_BY_OPERATOR = "it is suspended by the platform's operator"  # LOCKED's word when an admin did it

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.AWAITING_PAYMENT: frozenset({Status.PROVISIONING, Status.SUSPENDED, Status.DELETING}),
    Status.PROVISIONING: frozenset({Status.RUNNING, Status.ERROR, Status.STOPPED,
                                    Status.SUSPENDED, Status.DELETING}),
    Status.RUNNING: frozenset({Status.PROVISIONING, Status.STOPPED, Status.HIBERNATED, Status.ERROR,
                               Status.SUSPENDED, Status.DELETING}),
    Status.STOPPED: frozenset({Status.PROVISIONING, Status.SUSPENDED, Status.DELETING}),
    Status.HIBERNATED: frozenset({Status.PROVISIONING, Status.STOPPED, Status.SUSPENDED, Status.DELETING}),
    Status.ERROR: frozenset({Status.PROVISIONING, Status.STOPPED, Status.SUSPENDED, Status.DELETING}),
    Status.SUSPENDED: frozenset({Status.PROVISIONING, Status.STOPPED, Status.DELETING}),
    Status.DELETING: frozenset(),
}


class TransitionRefused(ValueError):
    """A move the state machine does not allow: a bug, never a user's mistake."""


def can_move(current: str, wanted: str) -> bool:
    """Staying put is always allowed (a re-adopted gateway is running again, say)."""
    return current == wanted or Status(wanted) in TRANSITIONS[Status(current)]


def check_move(current: str, wanted: str) -> Status:
    if not can_move(current, wanted):
        raise TransitionRefused(f"an instance cannot go from {current} to {wanted}")
    return Status(wanted)


class Action(StrEnum):
    """Work that holds an instance's lease. The owner's come from the API and the bot; the
    platform's own (`BACKGROUND`) always yield to them."""

    DEPLOY = "deploy"  # start on the owner's request (create, start, retry)
    RESTART = "restart"
    STOP = "stop"
    DELETE = "delete"
    RECOVER = "recover"  # the reconciler: adopt a running gateway, or start one after a crash
    HALT = "halt"  # the reconciler: stop a gateway that runs although its status says it should not
    CRASHED = "crashed"  # the reconciler: count a crash, schedule the restart
    FREE_MEMORY = "free_memory"  # the memory watch: restart a gateway grown too big, at a quiet moment
    BACKUP = "backup"  # an instance backup the owner asked for; the gateway keeps running
    SCHEDULED_BACKUP = "scheduled_backup"  # the schedule's instance backup: yields to the owner like the reconciler
    RESTORE = "restore"  # stop, put a backup's state in place, start again


BACKGROUND = frozenset({Action.RECOVER, Action.HALT, Action.CRASHED, Action.FREE_MEMORY, Action.SCHEDULED_BACKUP})
# What a person reads when their request finds the instance busy.
DOING = {
    Action.DEPLOY: "it is starting",
    Action.RESTART: "it is restarting",
    Action.STOP: "it is stopping",
    Action.DELETE: "it is being deleted",
    Action.RECOVER: "the platform is bringing it back up",
    Action.HALT: "the platform is stopping it",
    Action.CRASHED: "the platform is handling a crash",
    Action.FREE_MEMORY: "the platform is restarting it to free memory",
    Action.BACKUP: "it is being backed up",
    Action.SCHEDULED_BACKUP: "it is being backed up (scheduled)",
    Action.RESTORE: "a backup is being restored into it",
}


def preempts(wanted: str, current: str | None) -> bool:
    """Whether a request for `wanted` cancels the `current` action (then acts) rather than
    being refused. The owner's requests pre-empt the platform's background work; stop and
    delete pre-empt a start or restart (a hung one included); delete pre-empts everything."""
    wanted, current = Action(wanted), Action(current) if current else None
    if current is None or current in BACKGROUND:
        return wanted not in BACKGROUND
    if wanted is Action.DELETE:
        return current is not Action.DELETE
    return wanted is Action.STOP and current in (Action.DEPLOY, Action.RESTART)
