"""What every cluster source offers: a snapshot, and a way to carry out plan actions."""

from __future__ import annotations

from typing import Protocol

from ..execute.result import ActionResult
from ..plan import Plan
from ..snapshot import Snapshot


class Source(Protocol):
    """A cluster the balancer reads and acts on (the embedded simulator, or one vCenter cluster)."""

    name: str

    def snapshot(self) -> Snapshot:
        """Collect the cluster's current state."""
        ...

    def execute(self, plan: Plan) -> list[ActionResult]:
        """Carry out a plan's actions in step order; every attempted action comes back with its outcome.

        The service journals each action through hooks the executing object offers (the source
        itself, or its ``executor``): ``before_action(action)`` just before the cluster is asked,
        ``after_action(action, result)`` when it has an outcome, and ``should_stop()``, polled before
        starting each further action (True: skip the rest). A source with a clock of its own (the
        embedded simulator) also has ``advance()``, called once per cycle.
        """
        ...

    def close(self) -> None:
        ...
