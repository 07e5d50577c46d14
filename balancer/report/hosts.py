"""Per-host utilisation before and after a plan, for reports.

The plan carries the cluster-wide imbalance but not per-host loads; the report works them out
from the snapshot the plan was made from and the plan's actions: each VM ends on the target of
its last move, each host in the state its last power action leaves it in. Loads are DRS's
entitlements (demand raised to the reservation, nothing for a powered-off VM), as in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..plan import Move, Plan, StorageMove
from ..engine.compute.entitlement import entitle
from ..snapshot import HostState, Snapshot, snapshot_digest

# The state a host is in once a power action has completed.
_STATE_AFTER = {
    "standby": HostState.STANDBY,
    "power-on": HostState.ON,
    "enter-maintenance": HostState.MAINTENANCE,
    "exit-maintenance": HostState.ON,
}


@dataclass(frozen=True)
class HostLoad:
    """One host before and after the plan; utilisation is demand / capacity (0.5 = 50 %)."""

    name: str
    state_before: str
    state_after: str
    vms_before: int
    vms_after: int
    cpu_before: float
    cpu_after: float
    mem_before: float
    mem_after: float


def check_pair(plan: Plan, snapshot: Snapshot) -> None:
    """The report needs the snapshot the plan was made from; anything else would chart wrong numbers."""
    digest = snapshot_digest(snapshot)
    if plan.cluster != snapshot.cluster or plan.snapshot_digest != digest:
        raise InputError(
            f"plan for cluster {plan.cluster} ({plan.snapshot_digest}) was not made from snapshot of cluster "
            f"{snapshot.cluster} ({digest}); a report needs the snapshot the plan was made from"
        )


def host_loads(plan: Plan, snapshot: Snapshot) -> list[HostLoad]:
    """Per-host utilisation before and after `plan`, in the snapshot's host order."""
    check_pair(plan, snapshot)
    hosts = snapshot.hosts_by_name()
    vms = snapshot.vms_by_name()
    place = {v.name: v.host for v in snapshot.vms}
    state = {h.name: h.state for h in snapshot.hosts}
    for a in plan.actions:
        if isinstance(a, Move):
            if a.vm not in vms or a.target not in hosts:
                raise InputError(f"plan step {a.step}: VM {a.vm} or host {a.target} is not in the snapshot")
            place[a.vm] = a.target
        elif isinstance(a, StorageMove):  # disks only: no host load changes
            if a.vm not in vms:
                raise InputError(f"plan step {a.step}: VM {a.vm} is not in the snapshot")
        else:
            if a.host not in hosts:
                raise InputError(f"plan step {a.step}: host {a.host} is not in the snapshot")
            state[a.host] = _STATE_AFTER[a.action]

    before = snapshot.host_totals()
    after = snapshot.host_totals(place)
    # what the planner balanced: each VM's entitlement (its demand unless the cluster or a pool's limit
    # cannot give it all of it: engine/compute/entitlement.py)
    load = np.array([[v.cpu_load_mhz, v.mem_load_mb] for v in snapshot.vms], dtype=float).reshape(len(snapshot.vms), 2)
    entitled = entitle(snapshot, load)
    sums = {(h.name, when): np.zeros(2) for h in snapshot.hosts for when in ("before", "after")}
    for v, e in zip(snapshot.vms, entitled):
        sums[v.host, "before"] += e
        sums[place[v.name], "after"] += e
    rows = []
    for h in snapshot.hosts:
        b, a = before[h.name], after[h.name]
        eb, ea = sums[h.name, "before"], sums[h.name, "after"]
        rows.append(HostLoad(
            name=h.name,
            state_before=h.state.value,
            state_after=state[h.name].value,
            vms_before=b.vms,
            vms_after=a.vms,
            cpu_before=eb[0] / h.cpu_capacity_mhz,
            cpu_after=ea[0] / h.cpu_capacity_mhz,
            mem_before=eb[1] / h.mem_capacity_mb,
            mem_after=ea[1] / h.mem_capacity_mb,
        ))
    return rows
