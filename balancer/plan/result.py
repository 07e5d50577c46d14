"""The outcome of one attempted plan action (ActionResult): what the sources return, the journal keeps and
the reports show."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from .model import Move, PowerAction, StorageMove

# cancelled: vCenter ended the task at the balancer's request (CancelTask, sent when it ran past its deadline)
Outcome = Literal["success", "failed", "skipped", "cancelled"]
# the outcomes that count as a failure of the plan (an action depending on one is skipped)
FAILURES = ("failed", "cancelled")
# move: a VM to another host (with any disks that go along); storage: a Storage vMotion of a VM's
# disks; power: a host action; datastore: a datastore action (entering maintenance)
ActionKind = Literal["move", "storage", "power", "datastore"]

# ends the message of an action skipped because it had already been made (checks/premise.py)
ALREADY_MADE = "(done before)"


@dataclass(frozen=True)
class ActionResult:
    step: int
    kind: ActionKind
    subject: str  # the VM moved, or the host or datastore acted on
    action: str  # "esx01 -> esx02" for a move; "ds-01 -> ds-03" for a storage move; "standby" / ... for a host
    outcome: Outcome
    reason: str = ""
    message: str = ""
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        """Succeeded, or skipped because it had already been made (its VM or host is where the plan wants it)."""
        return self.outcome == "success" or (self.outcome == "skipped" and self.message.endswith(ALREADY_MADE))

    def to_json_dict(self) -> dict:
        return asdict(self)


def datastores_of(moves) -> tuple[str, str]:
    """(sources, targets) of a list of DiskMove, each as "ds-01" or "ds-01+ds-02" (in first-seen order)."""
    src = list(dict.fromkeys(m.source for m in moves))
    dst = list(dict.fromkeys(m.target for m in moves))
    return "+".join(src), "+".join(dst)


def action_endpoints(action: "Move | StorageMove | PowerAction") -> tuple[ActionKind, str, str | None, str]:
    """(kind, subject, source, target) of a plan action, as the journal keeps it: a move's hosts, a
    storage move's datastores, a host action's name as its target."""
    if isinstance(action, Move):
        return "move", action.vm, action.source, action.target
    if isinstance(action, StorageMove):
        src, dst = datastores_of(action.disks)
        return "storage", action.vm, src, dst
    return "power", action.host, None, action.action


def action_words(action: "Move | StorageMove | PowerAction") -> tuple[ActionKind, str, str]:
    """(kind, subject, action) of an ActionResult for ``action``: "esx01 -> esx02", "ds-01 -> ds-03", "standby"."""
    kind, subject, source, target = action_endpoints(action)
    return kind, subject, target if source is None else f"{source} -> {target}"


def action_result(action: "Move | StorageMove | PowerAction", outcome: Outcome, message: str = "",
                  seconds: float = 0.0) -> ActionResult:
    """The ActionResult of a plan action (seconds rounded to the millisecond)."""
    kind, subject, what = action_words(action)
    return ActionResult(action.step, kind, subject, what, outcome, action.reason, message, round(seconds, 3))
