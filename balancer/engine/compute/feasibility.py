"""Can the mandatory rules all hold? Conflicts found here are reported by name; nothing is moved.

A mandatory rule that is already broken by VMs that may not move (a ``manual`` / ``disabled``
override, powered off, or outside the hosts an evacuation empties) cannot be repaired by any
plan. That is not a conflict: ``exempt_pinned`` relaxes the rule for those VMs only -- two
pinned members sharing a host count as one, pinned members of an affinity rule on several
hosts split it per host, a pinned VM on a host a VM-host rule forbids may stay there -- so the
rest of the plan goes ahead (and keeps every other rule), and the plan's notes name the rule
and the VMs. The relaxed cluster is for planning only; violations are reported on the real rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ...snapshot import HostState
from .cluster import Cluster
from .constraints import Constraint, Shape
from .repair import host_refusals
from ...words import counted, plural


def _candidate_hosts(cluster: Cluster, v: int) -> set[int]:
    return set(int(h) for h in np.flatnonzero(_candidate_mask(cluster, v)))


def _candidate_mask(cluster: Cluster, v: int) -> np.ndarray:
    """(H,) the hosts ``v`` may end on: where it is when it may not move (or is powered off), else the allowed ones."""
    if not cluster.powered[v] or not cluster.movable[v]:
        out = np.zeros(cluster.n_hosts, dtype=bool)
        out[int(cluster.place[v])] = True
        return out
    return cluster.allowed[v]


def _host_rules_of(cluster: Cluster, vms) -> list[str]:
    names = []
    members = set(int(v) for v in vms)
    for g in cluster.host_sets:
        if g.mandatory and members.intersection(int(v) for v in g.vms):
            names.append(g.rule)
    return names


def _matching_size(options: list[set[int]]) -> int:
    """Size of a maximum matching of items to distinct hosts (augmenting paths)."""
    owner: dict[int, int] = {}

    def try_assign(i: int, seen: set[int]) -> bool:
        for h in options[i]:
            if h in seen:
                continue
            seen.add(h)
            if h not in owner or try_assign(owner[h], seen):
                owner[h] = i
                return True
        return False

    return sum(1 for i in range(len(options)) if try_assign(i, set()))


@dataclass
class Exemptions:
    """How the mandatory rules are relaxed for VMs that may not move and already break them."""

    rules: list[Constraint]  # the cluster's rules, relaxed
    stay: list[int] = field(default_factory=list)  # pinned VMs on a host a mandatory VM-host rule forbids
    broken: list[tuple[str, list[int]]] = field(default_factory=list)  # (rule, the pinned VMs that break it)

    def apply(self, cluster: Cluster) -> Cluster:
        if not self.broken:
            return cluster
        allowed = cluster.allowed
        if self.stay:
            allowed = allowed.copy()
            allowed[self.stay, cluster.place[self.stay]] = True
        return replace(cluster, rules=self.rules, allowed=allowed)

    def notes(self, cluster: Cluster, context: str | None = None) -> list[str]:
        out = []
        for rule, vms in self.broken:
            names = ", ".join(cluster.vm_names[v] for v in vms[:5]) + (" ..." if len(vms) > 5 else "")
            hosts = sorted({cluster.host_names[int(cluster.place[v])] for v in vms})
            causes = sorted({_why_pinned(cluster, v, context) for v in vms})
            out.append(f"rule {rule} stays broken: {names} on {', '.join(hosts)} may not move "
                       f"({'; '.join(causes)}); the rest of the plan goes ahead")
        return out


def _why_pinned(cluster: Cluster, v: int, context: str | None) -> str:
    vm = cluster.snapshot.vms[v]
    if cluster.snapshot.hosts[int(cluster.place[v])].state is HostState.DISCONNECTED:
        return "its host is disconnected"
    if not vm.powered_on:
        return "powered off"
    if not vm.automation.moves:
        return f"{vm.automation.value} DRS override"
    return context or "held in place"


def pinned_exemptions(cluster: Cluster, pinned: np.ndarray | None = None) -> Exemptions:
    """The rules broken by ``pinned`` VMs (default: those that may not move) and how to relax them."""
    if pinned is None:
        pinned = ~cluster.movable
    place = cluster.place
    out = Exemptions(rules=list(cluster.rules))
    extra_together: list[Constraint] = []
    for i, g in enumerate(cluster.rules):
        if not g.mandatory:
            continue
        if g.shape is Shape.APART:
            keep, dup, first = [], [], {}
            for v in (int(v) for v in g.vms):
                h = int(place[v])
                if pinned[v] and h in first:
                    dup.append(v)
                    continue
                if pinned[v]:
                    first[h] = v
                keep.append(v)
            if dup:
                out.rules[i] = replace(g, vms=np.array(keep, dtype=np.int64))
                out.broken.append((g.rule, sorted({first[int(place[v])] for v in dup} | set(dup))))
            continue
        if g.shape is not Shape.TOGETHER:
            continue
        members = [int(v) for v in g.vms]
        pinned_hosts = sorted({int(place[v]) for v in members if pinned[v]})
        if len(pinned_hosts) == 1 and len({int(place[v]) for v in members}) > 1:
            # broken now, and members that may move cannot join the ones that may not (not allowed
            # there, or the host is not on): the rule stays broken for them, the rest goes ahead
            p = pinned_hosts[0]
            stuck = [v for v in members if not pinned[v] and not (cluster.on[p] and cluster.allowed[v, p])]
            if stuck:
                out.rules[i] = replace(g, vms=np.array([v for v in members if v not in stuck], dtype=np.int64))
                if len(stuck) > 1:
                    extra_together.append(replace(g, vms=np.array(stuck, dtype=np.int64)))
                out.broken.append((g.rule, [v for v in members if pinned[v]]))
            continue
        if len(pinned_hosts) < 2:
            continue
        parts = [[v for v in members if int(place[v]) == h] for h in pinned_hosts]
        out.rules[i] = replace(g, vms=np.array(parts[0], dtype=np.int64))
        extra_together += [replace(g, vms=np.array(p, dtype=np.int64)) for p in parts[1:]]
        out.broken.append((g.rule, [v for v in members if pinned[v]]))
    if extra_together:  # the split parts follow the last rule of their shape (the rules' order is the models' order)
        last = max(i for i, g in enumerate(out.rules) if g.shape is Shape.TOGETHER)
        out.rules[last + 1:last + 1] = extra_together
    for g in cluster.host_sets:
        if not g.mandatory:
            continue
        bad = [int(v) for v in g.vms if pinned[v] and cluster.powered[v] and not g.allows(int(place[v]))]
        if bad:
            out.stay += bad
            out.broken.append((g.rule, bad))
    return out


def exempt_pinned(cluster: Cluster, context: str | None = None) -> tuple[Cluster, list[str]]:
    """``cluster`` with the rules its unmovable VMs already break relaxed for them, and notes naming them."""
    ex = pinned_exemptions(cluster)
    return ex.apply(cluster), ex.notes(cluster, context)


def find_conflicts(cluster: Cluster) -> list[str]:
    """Why the mandatory rules cannot all hold ([] when they can). A rule broken only by VMs that
    may not move is no conflict: those VMs are exempted (see ``exempt_pinned``)."""
    cluster = pinned_exemptions(cluster).apply(cluster)
    conflicts: list[str] = []
    hosts_on = int(cluster.on.sum())
    # 1. a powered-on VM with nowhere to run
    for v in np.flatnonzero(cluster.powered & cluster.movable & ~cluster.allowed.any(axis=1)):
        v = int(v)
        rules = _host_rules_of(cluster, [v])
        if rules:
            conflicts.append(f"VM {cluster.vm_names[v]}: no powered-on host satisfies {plural(len(rules), 'rule')} {', '.join(rules)}")
        elif cluster.on.any():
            conflicts.append(f"VM {cluster.vm_names[v]}: no host that is on may run it "
                             f"({host_refusals(cluster, np.array([v]))})")
        else:
            conflicts.append(f"VM {cluster.vm_names[v]}: no host is on to run it")
    # 2. anti-affinity: VMs need distinct hosts
    for g in cluster.apart:
        if not g.mandatory:
            continue
        # a powered-off member stays where it is registered, and the rule counts it there
        counts = [int(_candidate_mask(cluster, int(v)).sum()) for v in g.vms]
        if min(counts) >= len(g.vms):
            continue  # every member has as many hosts to choose from as there are members: they fit apart
        options = [_candidate_hosts(cluster, int(v)) for v in g.vms]
        if _matching_size(options) < len(options):
            rules = [g.rule] + _host_rules_of(cluster, g.vms)
            conflicts.append(
                f"{plural(len(rules), 'rule')} {', '.join(rules)}: {len(options)} VMs must run on separate hosts, "
                f"but the rules leave room for only {_matching_size(options)} ({counted(hosts_on, 'host')} on)"
            )
    # 3. affinity: a connected group of VMs needs one common host
    parent = list(range(cluster.n_vms))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    groups = [g for g in cluster.together if g.mandatory]
    for g in groups:
        for v in g.vms[1:]:
            parent[find(int(v))] = find(int(g.vms[0]))
    components: dict[int, list] = {}
    for g in groups:
        components.setdefault(find(int(g.vms[0])), []).append(g)
    for gs in components.values():
        members = sorted({int(v) for g in gs for v in g.vms})  # powered-off members stay where they are
        if not members:
            continue
        common_mask = np.logical_and.reduce([_candidate_mask(cluster, v) for v in members])
        common = [int(h) for h in np.flatnonzero(common_mask)]
        if not common:
            rules = [g.rule for g in gs] + _host_rules_of(cluster, members)
            conflicts.append(f"{plural(len(rules), 'rule')} {', '.join(rules)}: VMs that must run together have no host they may all run on")
            continue
        demand = cluster.load[members].sum(axis=0)
        if not any(np.all(demand <= cluster.cap[h]) for h in common):
            rules = [g.rule for g in gs]
            conflicts.append(f"{plural(len(rules), 'rule')} {', '.join(rules)}: VMs that must run together need more than any one host's capacity")
    # anti-affinity inside an affinity group is rejected when the snapshot is read
    return conflicts
