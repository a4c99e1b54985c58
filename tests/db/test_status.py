"""The one status vocabulary: every allowed and refused transition, who pre-empts whom, and no
status spelled out anywhere but db/status.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from db.status import (
    ACTIVE,
    AT_REST,
    BACKGROUND,
    COUNTED,
    TRANSITIONS,
    Action,
    Status,
    TransitionRefused,
    can_move,
    check_move,
    preempts,
)

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("accounts", "billing", "bot", "clawfleet", "db", "provisioner", "web")

S = Status
ALLOWED = {
    (S.AWAITING_PAYMENT, S.PROVISIONING), (S.AWAITING_PAYMENT, S.DELETING),
    (S.PROVISIONING, S.RUNNING), (S.PROVISIONING, S.ERROR), (S.PROVISIONING, S.STOPPED),
    (S.PROVISIONING, S.SUSPENDED), (S.PROVISIONING, S.DELETING),
    (S.RUNNING, S.PROVISIONING), (S.RUNNING, S.STOPPED), (S.RUNNING, S.HIBERNATED), (S.RUNNING, S.ERROR),
    (S.RUNNING, S.SUSPENDED), (S.RUNNING, S.DELETING),
    (S.STOPPED, S.PROVISIONING), (S.STOPPED, S.SUSPENDED), (S.STOPPED, S.DELETING),
    (S.HIBERNATED, S.PROVISIONING), (S.HIBERNATED, S.STOPPED), (S.HIBERNATED, S.SUSPENDED),
    (S.HIBERNATED, S.DELETING),
    (S.ERROR, S.PROVISIONING), (S.ERROR, S.STOPPED), (S.ERROR, S.SUSPENDED), (S.ERROR, S.DELETING),
    (S.SUSPENDED, S.PROVISIONING), (S.SUSPENDED, S.STOPPED), (S.SUSPENDED, S.DELETING),
    (S.AWAITING_PAYMENT, S.SUSPENDED),  # an admin's suspension holds one that waits for payment too
}
EVERY_PAIR = [(a, b) for a in Status for b in Status if a != b]


@pytest.mark.parametrize(("current", "wanted"), EVERY_PAIR, ids=[f"{a}->{b}" for a, b in EVERY_PAIR])
def test_every_transition_is_allowed_or_refused_as_the_table_says(current: Status, wanted: Status) -> None:
    allowed = (current, wanted) in ALLOWED
    assert can_move(current, wanted) is allowed
    if allowed:
        assert check_move(current, wanted) is wanted
    else:
        with pytest.raises(TransitionRefused, match=f"from {current} to {wanted}"):
            check_move(current, wanted)


def test_staying_put_is_allowed_and_a_deleting_instance_goes_nowhere() -> None:
    assert all(can_move(status, status) for status in Status)
    assert TRANSITIONS[Status.DELETING] == frozenset()


def test_the_named_sets_partition_what_runs_and_what_rests() -> None:
    assert ACTIVE | AT_REST == frozenset(Status) - {Status.DELETING}
    assert not ACTIVE & AT_REST
    assert Status.DELETING not in COUNTED and Status.HIBERNATED in COUNTED  # asleep still counts toward the cap


OWNER = [Action.DEPLOY, Action.RESTART, Action.STOP, Action.DELETE, Action.BACKUP, Action.RESTORE]
PREEMPTS = {
    (Action.STOP, Action.DEPLOY), (Action.STOP, Action.RESTART),
    (Action.DELETE, Action.DEPLOY), (Action.DELETE, Action.RESTART), (Action.DELETE, Action.STOP),
    (Action.DELETE, Action.BACKUP), (Action.DELETE, Action.RESTORE),  # a backup or restore yields to a delete only
} | {(owner, background) for owner in OWNER for background in BACKGROUND}
ACTION_PAIRS = [(wanted, current) for wanted in Action for current in Action]


@pytest.mark.parametrize(("wanted", "current"), ACTION_PAIRS, ids=[f"{w}-over-{c}" for w, c in ACTION_PAIRS])
def test_who_pre_empts_whom(wanted: Action, current: Action) -> None:
    assert preempts(wanted, current) is ((wanted, current) in PREEMPTS)


def test_an_idle_instance_takes_any_owner_action_but_no_background_one_is_pushed_aside() -> None:
    assert all(preempts(action, None) for action in OWNER)
    assert not any(preempts(background, Action.DEPLOY) for background in BACKGROUND)


def _status_literals(path: Path) -> list[str]:
    """String constants spelling a status, except dict keys, docstrings (`{"error": ...}` is the
    API's error envelope, not a status) and lines that say `# not a status`."""
    source = path.read_text()
    marked = {number for number, line in enumerate(source.splitlines(), start=1) if line.endswith("# not a status")}
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
    values = {str(status) for status in Status}
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in values and id(node) not in skipped
            and node.lineno not in marked]


def test_no_status_is_spelled_out_outside_the_vocabulary() -> None:
    found = [literal
             for package in PRODUCT
             for path in sorted((ROOT / package).rglob("*.py"))
             if path != ROOT / "db" / "status.py" and "migrations" not in path.parts
             for literal in _status_literals(path)]
    assert found == []
