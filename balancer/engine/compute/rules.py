"""Rule and capacity checks on a placement."""

from __future__ import annotations

import numpy as np

from ...plan import Violation
from .cluster import CPU, MEM, Cluster

_RES = {CPU: "CPU", MEM: "memory"}


def rule_violations(cluster: Cluster, place: np.ndarray, mandatory_only: bool = False) -> list[Violation]:
    out: list[Violation] = []
    hn, vn = cluster.host_names, cluster.vm_names
    for g in cluster.anti:
        if mandatory_only and not g.mandatory:
            continue
        seen: dict[int, int] = {}
        for v in g.vms:
            h = int(place[v])
            if h in seen:
                out.append(Violation(kind="rule", name=g.rule, mandatory=g.mandatory,
                                     detail=f"{vn[seen[h]]} and {vn[v]} share {hn[h]}"))
                break
            seen[h] = int(v)
    for g in cluster.affine:
        if mandatory_only and not g.mandatory:
            continue
        hosts = sorted({int(place[v]) for v in g.vms})
        if len(hosts) > 1:
            out.append(Violation(kind="rule", name=g.rule, mandatory=g.mandatory,
                                 detail="VMs split over " + ", ".join(hn[h] for h in hosts)))
    for g in cluster.vmhost:
        if mandatory_only and not g.mandatory:
            continue
        bad = [int(v) for v in g.vms if not g.allows(int(place[v]))]
        if bad:
            verb = "outside" if g.affine else "inside"
            names = ", ".join(f"{vn[v]} on {hn[place[v]]}" for v in bad[:3]) + (" ..." if len(bad) > 3 else "")
            out.append(Violation(kind="rule", name=g.rule, mandatory=g.mandatory,
                                 detail=f"{len(bad)} VM(s) {verb} the host group: {names}"))
    return out


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
    return out


def evacuation_violations(cluster: Cluster, place: np.ndarray) -> list[Violation]:
    out: list[Violation] = []
    stranded = cluster.stranded(place)
    for h in np.unique(place[stranded]):
        n = int(((place == h) & stranded).sum())
        state = cluster.snapshot.hosts[int(h)].state.words
        out.append(Violation(kind="capacity", name=cluster.host_names[int(h)],
                             detail=f"{n} powered-on VM(s) on a host that is {state}"))
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
    for g in cluster.anti_of.get(vm, ()):
        for other in g.vms:
            if other != vm and place[other] == target:
                return False
    return True
