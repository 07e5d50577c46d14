"""The engine's entry point: a snapshot goes in, a plan comes out. No I/O, no clock."""

from __future__ import annotations

from ..plan import Plan
from ..snapshot import Snapshot
from .compute import PLANNERS, plan_compute
from .history import NO_HISTORY, History
from .options import PlanOptions
from .storage import plan_storage
from .storage.growth import with_trends

__all__ = ["PLANNERS", "make_plan"]


def make_plan(snapshot: Snapshot, options: PlanOptions | None = None, history: History | None = None) -> Plan:
    """Plan one snapshot: the compute planner (hosts), then the storage planner (datastores)."""
    options = options or PlanOptions()
    history = history or NO_HISTORY
    plan = plan_compute(snapshot, options, history)
    if history.datastore_growth and options.storage is not None and options.storage.growth_days > 0:
        snapshot = with_trends(snapshot, history.datastore_growth)  # thin disks' growth from their datastores' trend
    return plan_storage(snapshot, options, plan)
