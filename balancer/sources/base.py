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
        """Carry out a plan's actions in step order; every attempted action comes back with its outcome."""
        ...

    def close(self) -> None:
        ...
