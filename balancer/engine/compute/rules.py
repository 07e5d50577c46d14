"""Rule and capacity checks on a placement."""

from __future__ import annotations

import numpy as np

from ...plan import Violation
from .cluster import CPU, MEM, Cluster, tally_over
from ...words import counted

_RES = {CPU: "CPU", MEM: "memory"}


def rule_violations(cluster: Cluster, place: np.ndarray, mandatory_only: bool = False) -> list[Violation]:
    hn, vn = cluster.host_names, cluster.vm_names
    return [Violation(kind="rule", name=g.rule, mandatory=g.mandatory, detail=g.detail(place, hn, vn))
            for g in cluster.rules if (g.mandatory or not mandatory_only) and not g.holds(place)]


def capacity_violations(cluster: Cluster, loads: np.ndarray) -> list[Violation]:
    """Hosts that are on above their physical capacity (kind ``capacity``: hard) or, within it, above
    capacity minus headroom (kind ``headroom``: the balancer's own limit, mended after the hard ones)."""
    out: list[Violation] = []
    for h in np.flatnonzero(cluster.on & np.any(loads > cluster.limit + 1e-6, axis=1)):
        h = int(h)
        for r in (CPU, MEM):
            if loads[h, r] > cluster.limit[h, r] + 1e-6 and loads[h, r] > 0:
                pct = 100 * loads[h, r] / cluster.cap[h, r]
                if loads[h, r] > cluster.cap[h, r] + 1e-6:
                    out.append(Violation(kind="capacity", name=cluster.host_names[h],
                                         detail=f"{_RES[r]} {pct:.0f} % of capacity, above its physical capacity"))
                    continue
                lim = 100 * cluster.limit[h, r] / cluster.cap[h, r]
                out.append(Violation(kind="headroom", name=cluster.host_names[h],
                                     detail=f"{_RES[r]} {pct:.0f} % of capacity, above the {lim:.0f} % limit"))
        # the tallies: vCPUs above the over-commitment limit is hard (capacity), VMs above the distribution
        # limit is ours (headroom)
        for r, tally in enumerate(cluster.tallies, start=MEM + 1):
            if loads[h, r] > cluster.limit[h, r] + 1e-6:
                kind = "capacity" if loads[h, r] > cluster.cap[h, r] + 1e-6 else "headroom"
                out.append(Violation(kind=kind, name=cluster.host_names[h],
                                     detail=tally_over(tally, float(loads[h, r]), float(cluster.limit[h, r]))))
    return out


def evacuation_violations(cluster: Cluster, place: np.ndarray) -> list[Violation]:
    out: list[Violation] = []
    stranded = cluster.stranded(place)
    for h in np.unique(place[stranded]):
        n = int(((place == h) & stranded).sum())
        state = cluster.snapshot.hosts[int(h)].state.words
        out.append(Violation(kind="capacity", name=cluster.host_names[int(h)],
                             detail=f"{counted(n, 'powered-on VM')} on a host that is {state}"))
    return out


def all_violations(cluster: Cluster, place: np.ndarray) -> list[Violation]:
    loads = cluster.host_loads(place)
    return rule_violations(cluster, place) + capacity_violations(cluster, loads) + evacuation_violations(cluster, place)


def move_allowed(cluster: Cluster, vm: int, target: int, place: np.ndarray, loads: np.ndarray) -> bool:
    """May ``vm`` go to ``target`` now, given the current placement and loads? (one step of a plan)"""
    if not cluster.allowed[vm, target]:
        return False
    if np.any(loads[target] + cluster.load[vm] > cluster.bound[target] + 1e-6):
        return False
    for g in cluster.apart_of.get(vm, ()):
        for other in g.vms:
            if other != vm and place[other] == target:
                return False
    return True
