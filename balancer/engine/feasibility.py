"""Can the mandatory rules all hold? Conflicts found here are reported by name; nothing is moved."""

from __future__ import annotations

import numpy as np

from .cluster import Cluster


def _candidate_hosts(cluster: Cluster, v: int) -> set[int]:
    if not cluster.powered[v]:
        return {int(cluster.place[v])}
    if not cluster.movable[v]:
        return {int(cluster.place[v])}
    return set(int(h) for h in np.flatnonzero(cluster.allowed[v]))


def _host_rules_of(cluster: Cluster, vms) -> list[str]:
    names = []
    members = set(int(v) for v in vms)
    for g in cluster.vmhost:
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


def find_conflicts(cluster: Cluster) -> list[str]:
    conflicts: list[str] = []
    hosts_on = int(cluster.on.sum())
    # 1. a powered-on VM with nowhere to run
    for v in np.flatnonzero(cluster.powered & cluster.movable):
        v = int(v)
        if not cluster.allowed[v].any():
            rules = _host_rules_of(cluster, [v])
            if rules:
                conflicts.append(f"VM {cluster.vm_names[v]}: no powered-on host satisfies rule(s) {', '.join(rules)}")
            else:
                conflicts.append(f"VM {cluster.vm_names[v]}: no host is on to run it")
    # 2. anti-affinity: VMs need distinct hosts
    for g in cluster.anti:
        if not g.mandatory:
            continue
        options = [_candidate_hosts(cluster, int(v)) for v in g.vms if cluster.powered[int(v)]]
        if _matching_size(options) < len(options):
            rules = [g.rule] + _host_rules_of(cluster, g.vms)
            conflicts.append(
                f"rule(s) {', '.join(rules)}: {len(options)} VMs must run on separate hosts, "
                f"but the rules leave room for only {_matching_size(options)} ({hosts_on} host(s) on)"
            )
    # 3. affinity: a connected group of VMs needs one common host
    parent = list(range(cluster.n_vms))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    groups = [g for g in cluster.affine if g.mandatory]
    for g in groups:
        for v in g.vms[1:]:
            parent[find(int(v))] = find(int(g.vms[0]))
    components: dict[int, list] = {}
    for g in groups:
        components.setdefault(find(int(g.vms[0])), []).append(g)
    for gs in components.values():
        members = sorted({int(v) for g in gs for v in g.vms if cluster.powered[int(v)]})
        if not members:
            continue
        common = set.intersection(*(_candidate_hosts(cluster, v) for v in members))
        if not common:
            rules = [g.rule for g in gs] + _host_rules_of(cluster, members)
            conflicts.append(f"rule(s) {', '.join(rules)}: VMs that must run together have no host they may all run on")
            continue
        demand = cluster.load[members].sum(axis=0)
        if not any(np.all(demand <= cluster.cap[h]) for h in common):
            rules = [g.rule for g in gs]
            conflicts.append(f"rule(s) {', '.join(rules)}: VMs that must run together need more than any one host's capacity")
    # anti-affinity inside an affinity group is rejected when the snapshot is read
    return conflicts
