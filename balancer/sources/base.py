"""What every cluster source offers: a snapshot, and a way to carry out plan actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from ..plan.result import ActionResult
from ..plan import Plan
from ..snapshot import Snapshot


@dataclass(frozen=True)
class ClusterTask:
    """A task the cluster has queued, is running, or ended a short while ago, in the balancer's words.

    ``subject`` is the VM or host it works on (by name); ``action`` what it does: ``relocate`` (a VM's
    vMotion or Storage vMotion, within the cluster or out of it) or a host action (``standby``,
    ``power-on``, ``enter-maintenance``, ``exit-maintenance``); ``name`` is the cluster's own name for
    it (vCenter: ``RelocateVM_Task``); ``state`` ``queued``, ``running``, ``success`` or ``error``;
    ``key`` the cluster's id of the task (vCenter: the Task's managed object id, "" when unknown) and
    ``error`` the cluster's message when it ended in error; ``queued_at`` when the cluster queued it, by the
    cluster's own clock (vCenter: ``info.queueTime``; None when unknown).
    """

    subject: str
    action: str
    name: str
    state: str
    key: str = ""
    error: str = ""
    queued_at: datetime | None = None  # by the cluster's clock: compared only with other readings of that clock

    @property
    def cancelled(self) -> bool:
        """Ended in error because it was cancelled (vCenter: RequestCanceled)."""
        return self.state == "error" and self.error.split(":", 1)[0] == "RequestCanceled"

    @property
    def active(self) -> bool:
        """Queued or running: the cluster is still carrying it out."""
        return self.state in ("queued", "running")


class Source(Protocol):
    """A cluster the balancer reads and acts on (the embedded simulator, or one vCenter cluster).

    Every source collects and carries out plans; what else it can do it declares in ``abilities``
    (the Protocols of sources/abilities.py), asked with ``abilities.has(source, CanX)``.
    """

    name: str
    abilities: ClassVar[frozenset[type]]

    def snapshot(self) -> Snapshot:
        """Collect the cluster's current state."""
        ...

    def execute(self, plan: Plan) -> list[ActionResult]:
        """Carry out a plan's actions (by the shared plan runner, sources/plan_runner.py); every
        attempted action comes back with its outcome, in step order.

        The service journals each action through the hooks of the object ``execution_hooks()``
        returns (the source itself, or its executor; abilities.ExecutionHooks): ``before_action``,
        ``after_action``, ``should_stop`` and, for a source whose actions go on in the cluster
        without the balancer (CanReportTasks: vCenter runs a vMotion's task to its end even when
        the balancer that asked for it is gone), ``task_started(action, key)`` once the cluster has
        accepted an action's task: after a restart, an action left started whose task is still
        running is in flight, not interrupted, and one whose task ended in error failed, with the
        cluster's message. A source without tasks (the embedded simulator, whose actions end with
        the process) has nothing running once the balancer has stopped.
        """
        ...

    def close(self) -> None:
        ...
