"""Moves between the clusters of a balancing domain: pure, snapshots in, a domain plan out.

A cluster is *over* when its demand (CPU or memory, powered-on VMs' entitlements) passes
``high`` of the capacity of its usable hosts: those on and those in standby, since waking a
host of its own is cheaper than sending VMs away, and its own DPM will do that. An over
cluster sheds VMs, one at a time, to the clusters that stay at or below ``room`` with the VM
added (the gap between the two keeps a VM from coming straight back), until it is no longer
over or ``max_moves`` is reached.

Which VM: of the movable ones (powered on, automation default, on a host that is on, in no
rule of its cluster -- rules do not follow a VM to another cluster -- and not held), the one
that takes the most off the over dimension (up to what is needed) per second of migration
(vMotion, plus the copy of its disks when the target host cannot reach them, plus
``MOVE_OVERHEAD_S`` for the move itself). Where: the other cluster with the lowest
share after the move, on the compatible host (engine/domain/compat.py) that is least loaded
after it and stays within its cluster's headroom; never a host its cluster's duties close (a degraded
health, NICs above the network limit: compute/compat.py's ``closed_hosts``, as its own planners judge). Each choice is greedy and explainable; a
cross-cluster move is rare and dear, so there are few of them and each is judged on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from ...plan.domain_plan import ClusterLoad, CrossMove, DomainPlan, Refusal
from ...plan.model import CopyEstimate, VMotionEstimate
from ...snapshot import VM, Host, HostState, Snapshot, VmdkRule, VmDatastoreRule
from ...snapshot.io import snapshot_digest
from ...snapshot.model import clamp
from ..words import pct as _pct
from ..compute.vmotion import estimate, modelled_dirty_rate_mbps
from ..options import DomainMember, DomainOptions
from ..storage.copy import copy_seconds
from ..compute.compat import closed_hosts
from .compat import (check_cpu, check_duties, check_headroom, check_network, check_size, check_tallies, disks_reachable,
                     pick_datastore, same_in_target)
from ...words import counted

CANDIDATES = 40  # VMs of an over cluster judged in full per move, the cheapest per unit of relief first
# Each move between clusters is priced this many seconds on top of its migration time: such moves
# are capped and dear however small, so a VM that relieves a little quickly should not win over
# one that relieves much in a little longer.
MOVE_OVERHEAD_S = 120.0


@dataclass
class _Cluster:
    name: str
    snapshot: Snapshot
    cap: list[float]  # cpu, mem of the hosts that count for judging it: on, in standby or in maintenance
    room_cap: list[float]  # ... and for receiving VMs: on or in standby, less what HA keeps for failover
    load: list[float]
    vm_load: dict[str, tuple[float, float]] = field(default_factory=dict)
    host_load: dict[str, list[float]] = field(default_factory=dict)  # hosts that are on
    host_vcpus: dict[str, int] = field(default_factory=dict)  # hosts that are on: vCPUs of their powered-on VMs
    host_vms: dict[str, int] = field(default_factory=dict)  # ... and how many powered-on VMs they hold
    ds_used: dict[str, float] = field(default_factory=dict)
    vm_names: set[str] = field(default_factory=set)
    closed: dict[str, str] = field(default_factory=dict)  # hosts that receive no VM: its host duties (compat.py)

    @property
    def usable(self) -> bool:
        return self.cap[0] > 0 and self.cap[1] > 0

    def share(self) -> tuple[float, float]:
        """Demand over the capacity that counts for judging it (0 when there is none)."""
        return tuple(self.load[i] / self.cap[i] if self.cap[i] > 0 else 0.0 for i in range(2))  # type: ignore[return-value]

    def room_share(self, extra: tuple[float, float] = (0.0, 0.0)) -> float:
        """With ``extra`` more demand, the larger share of the capacity it may fill (inf: none)."""
        return max((self.load[i] + extra[i]) / self.room_cap[i] if self.room_cap[i] > 0 else float("inf")
                   for i in range(2))


def _ha_reserve(snap: Snapshot, hosts: list[Host]) -> list[float]:
    """The CPU and memory HA admission control keeps free for failover, of ``hosts``' capacity."""
    ha = snap.ha
    if ha is None or not hosts:
        return [0.0, 0.0]
    caps = [[h.cpu_capacity_mhz for h in hosts], [h.mem_capacity_mb for h in hosts]]
    if ha.policy == "percentage":
        return [sum(caps[0]) * ha.cpu_percent / 100.0, sum(caps[1]) * ha.mem_percent / 100.0]
    if ha.policy == "failover-hosts":
        kept = [h for h in hosts if h.name in ha.failover_hosts]
        return [sum(h.cpu_capacity_mhz for h in kept), sum(h.mem_capacity_mb for h in kept)]
    return [sum(sorted(c, reverse=True)[:ha.host_failures]) for c in caps]  # host-failures


def _cluster(name: str, snap: Snapshot, demand: Mapping[str, tuple[float, float]] | None,
             duties: DomainMember) -> _Cluster:
    judged = [h for h in snap.hosts if h.state in (HostState.ON, HostState.STANDBY, HostState.MAINTENANCE)]
    receiving = [h for h in judged if h.state is not HostState.MAINTENANCE]
    reserve = _ha_reserve(snap, receiving)
    c = _Cluster(name, snap, [sum(h.cpu_capacity_mhz for h in judged), sum(h.mem_capacity_mb for h in judged)],
                 [max(0.0, sum(h.cpu_capacity_mhz for h in receiving) - reserve[0]),
                  max(0.0, sum(h.mem_capacity_mb for h in receiving) - reserve[1])], [0.0, 0.0])
    c.host_load = {h.name: [0.0, 0.0] for h in snap.hosts if h.is_on}
    c.host_vcpus = {name: 0 for name in c.host_load}
    c.host_vms = {name: 0 for name in c.host_load}
    for v in snap.vms:
        c.vm_names.add(v.name)
        load = (v.cpu_load_mhz, v.mem_load_mb)
        if demand is not None and v.name in demand and v.powered_on:
            cpu, mem = demand[v.name]
            load = (clamp(cpu, v.cpu_reservation_mhz, v.cpu_limit_mhz), clamp(mem, v.mem_reservation_mb, v.mem_limit_mb))
        c.vm_load[v.name] = load
        c.load[0] += load[0]
        c.load[1] += load[1]
        if v.host in c.host_load:
            c.host_load[v.host][0] += load[0]
            c.host_load[v.host][1] += load[1]
            if v.powered_on:
                c.host_vcpus[v.host] += v.vcpus
                c.host_vms[v.host] += 1
    c.ds_used = {d.name: d.used_gb for d in snap.datastores}
    c.closed = closed_hosts(snap, duties)  # health, network: the same duties its own planners keep
    return c


def _ruled(snap: Snapshot) -> set[str]:
    """VMs named by an enabled rule of their cluster (they stay: the rule would not follow them)."""
    out: set[str] = set()
    for r in snap.rules:
        if not r.enabled:
            continue
        if isinstance(r, VmdkRule):
            out.add(r.vm)
        elif isinstance(r, VmDatastoreRule):
            out.update(r.vms)
        else:
            out.update(snap.rule_vms(r))
    return out


@dataclass
class _Option:
    vm: VM
    target: _Cluster
    host: Host
    datastore: str | None
    vmotion: VMotionEstimate
    copy: CopyEstimate | None
    score: float


def plan_domain(snapshots: Mapping[str, Snapshot], options: DomainOptions,
                demand: Mapping[str, Mapping[str, tuple[float, float]]] | None = None) -> DomainPlan:
    """The domain plan for these snapshots (keyed by the members' cluster names).

    ``demand``: per cluster, VM -> (CPU MHz, memory MB) to judge it on instead of the snapshot's
    figures (the service's recent demand over ``drs.demand_window``)."""
    missing = [m.cluster for m in options.members if m.cluster not in snapshots]
    if missing:
        raise ValueError(f"domain {options.name}: no snapshot of cluster {missing[0]}")
    clusters = {m.cluster: _cluster(m.cluster, snapshots[m.cluster], (demand or {}).get(m.cluster), m)
                for m in options.members}
    notes: list[str] = [f"cluster {n} has no host that is on, in standby or in maintenance: left out"
                        for n, c in clusters.items() if not c.usable]
    before = {n: c.share() for n, c in clusters.items()}
    over = sorted((n for n, s in before.items() if max(s) > options.high and clusters[n].usable),
                  key=lambda n: -max(before[n]))
    moves: list[CrossMove] = []
    refused: list[Refusal] = []
    refused_keys: set[tuple[str, str]] = set()
    moved: set[str] = set()

    def refuse(vm: str, target: str, why: str) -> None:
        key = (target, why.replace(vm, "VM"))  # one line per reason, not one per VM it applies to
        if key not in refused_keys and len(refused) < options.max_refusals:
            refused_keys.add(key)
            refused.append(Refusal(vm=vm, target_cluster=target, why=why))

    for name in over:
        src = clusters[name]
        ruled = _ruled(src.snapshot)
        hosts = src.snapshot.hosts_by_name()
        while max(src.share()) > options.high and len(moves) < options.max_moves:
            dim = 0 if src.share()[0] >= src.share()[1] else 1
            candidates = [v for v in src.snapshot.vms
                          if v.movable and v.name not in moved and v.name not in ruled
                          and v.name not in options.held_vms and hosts[v.host].is_on
                          and src.vm_load[v.name][dim] > 0]
            candidates.sort(key=lambda v: -src.vm_load[v.name][dim] / (
                _vmotion(v, hosts[v.host], None, options).seconds + MOVE_OVERHEAD_S))
            best: _Option | None = None
            # the best of the first CANDIDATES that can go somewhere; the next ones only when none can
            for start in range(0, len(candidates), CANDIDATES):
                for vm in candidates[start:start + CANDIDATES]:
                    option = _best_target(vm, hosts[vm.host], src, clusters, options, dim, refuse)
                    if option is not None and (best is None or option.score > best.score):
                        best = option
                if best is not None:
                    break
            if best is None:
                why = "no cluster of the domain has room" if not any(
                    c.usable and c.room_share() <= options.room for n, c in clusters.items() if n != name) else \
                    "none of its movable VMs can run on a host of another cluster with room"
                notes.append(f"cluster {name} stays over {_pct(options.high)} of its capacity: {why}")
                break
            moves.append(_apply(best, src, len(moves) + 1, options))
            moved.add(best.vm.name)
        if max(src.share()) > options.high and len(moves) >= options.max_moves \
                and not any(n.startswith(f"cluster {name} ") for n in notes):
            notes.append(f"cluster {name} stays over {_pct(options.high)} of its capacity: the domain's cap of "
                         f"{counted(options.max_moves, 'move')} per plan is reached")
    loads = [ClusterLoad(cluster=n, snapshot_digest=snapshot_digest(c.snapshot),
                         collected_at=c.snapshot.collected_at.isoformat() if c.snapshot.collected_at else None,
                         cpu_before=round(before[n][0], 4), mem_before=round(before[n][1], 4),
                         cpu_after=round(c.share()[0], 4), mem_after=round(c.share()[1], 4), over=n in over)
             for n, c in clusters.items()]
    return DomainPlan(domain=options.name, high=options.high, room=options.room, clusters=loads, moves=moves,
                      refused=refused, notes=notes)


def _vmotion(vm: VM, source: Host, target: Host | None, options: DomainOptions) -> VMotionEstimate:
    rates = [h.vmotion_mbps or options.default_vmotion_mbps for h in (source, target) if h is not None]
    if options.vmotion_mbps is not None and target is not None:
        rates.append(options.vmotion_mbps)
    dirty = vm.dirty_rate_mbps if vm.dirty_rate_mbps is not None else modelled_dirty_rate_mbps(vm.mem_demand_mb)
    e = estimate(vm.mem_mb, dirty, min(rates))
    return VMotionEstimate(seconds=round(e.seconds, 2), downtime_ms=round(e.downtime_ms, 1),
                           data_mb=round(e.data_mb, 1), converges=e.converges)


def _best_target(vm: VM, host: Host, src: _Cluster, clusters: Mapping[str, _Cluster], options: DomainOptions,
                 dim: int, refuse) -> _Option | None:
    """Where ``vm`` would best go (None: nowhere), with its refusals noted."""
    load = src.vm_load[vm.name]
    source_vcenter = options.member(src.name).vcenter
    space = sum(d.space_gb for d in vm.disks)
    best: _Option | None = None
    for tname, tgt in sorted(clusters.items(), key=lambda kv: kv[1].room_share(load)):
        if tname == src.name or not tgt.usable:
            continue
        if tgt.room_share(load) > options.room:
            after = tgt.room_share(load)
            refuse(vm.name, tname, f"cluster {tname} would be at {_pct(after) if after != float('inf') else 'over all'} "
                                   f"of the capacity it may fill with it (room up to {_pct(options.room)}"
                                   + (", HA's failover capacity kept" if tgt.snapshot.ha else "") + ")")
            continue
        if vm.name in tgt.vm_names:
            refuse(vm.name, tname, f"cluster {tname} already has a VM named {vm.name}")
            continue
        member = options.member(tname)
        same_vcenter = member.vcenter == source_vcenter
        fitting: list[tuple[float, Host]] = []
        why = None
        vms_limit = None
        if member.vm_distribution is not None and tgt.host_vms:  # the target's mean, with the VM counted
            vms_limit = max(math.ceil((sum(tgt.host_vms.values()) + 1) / len(tgt.host_vms)
                                      * (1.0 + member.vm_distribution) - 1e-9), 1)
        for h in tgt.snapshot.hosts:
            if h.name not in tgt.host_load:
                continue
            after = (tgt.host_load[h.name][0] + load[0], tgt.host_load[h.name][1] + load[1])
            reason = check_duties(tgt.snapshot, h, tgt.closed) \
                or check_cpu(src.snapshot, host, tgt.snapshot, h, vm) or check_network(vm, tgt.snapshot, h) \
                or check_size(vm, tgt.snapshot, h) \
                or check_headroom(h, after, member.cpu_headroom, member.mem_headroom, tname) \
                or check_tallies(h, tgt.host_vcpus[h.name] + vm.vcpus, tgt.host_vms[h.name] + 1, vms_limit,
                                 member.max_vcpus_per_core, tname)
            if reason is None:
                fitting.append((max(after[0] / h.cpu_capacity_mhz, after[1] / h.mem_capacity_mb), h))
                continue
            why = why or reason
        if not fitting:
            refuse(vm.name, tname, why or f"cluster {tname} has no host that is on")
            continue
        fitting.sort(key=lambda x: (x[0], x[1].name))
        for _, h in fitting:
            datastore, copy = None, None
            if disks_reachable(vm, src.snapshot, tgt.snapshot, h, same_vcenter):
                if not same_vcenter:  # the other vCenter still needs to be told which datastore the VM is on
                    ds = same_in_target(vm, src.snapshot, tgt.snapshot, h) or pick_datastore(
                        0.0, tgt.snapshot, h, tgt.ds_used, 1.0)
                    if ds is None:
                        why = f"host {h.name} of {tname} mounts no datastore in normal state"
                        continue
                    datastore = ds.name
            else:
                ds = pick_datastore(space, tgt.snapshot, h, tgt.ds_used, member.space_threshold)
                if ds is None:
                    why = (f"no datastore host {h.name} of {tname} mounts has room for its {space:.0f} GB "
                           f"within {_pct(member.space_threshold)}")
                    continue
                datastore = ds.name
                copy = CopyEstimate(seconds=round(copy_seconds(space, options.copy_mbps), 1), data_gb=round(space, 2))
            vmotion = _vmotion(vm, host, h, options)
            seconds = vmotion.seconds + (copy.seconds if copy else 0.0)
            excess = max(src.share()[dim] - options.high, 0.0)
            relief = min(load[dim] / src.cap[dim], excess + 0.01)  # beyond what is needed, no more credit
            score = relief / (seconds + MOVE_OVERHEAD_S)
            option = _Option(vm, tgt, h, datastore, vmotion, copy, score)
            if best is None or option.score > best.score:
                best = option
            break
        else:
            refuse(vm.name, tname, why or f"no host of {tname} fits it")
    return best


def _apply(o: _Option, src: _Cluster, step: int, options: DomainOptions) -> CrossMove:
    vm, tgt = o.vm, o.target
    load = src.vm_load[vm.name]
    tgt.vm_load[vm.name] = load
    share_before = max(src.share())
    t_before = max(tgt.share())
    for i in range(2):
        src.load[i] -= load[i]
        tgt.load[i] += load[i]
        if vm.host in src.host_load:
            src.host_load[vm.host][i] -= load[i]
        tgt.host_load[o.host.name][i] += load[i]
    tgt.host_vcpus[o.host.name] += vm.vcpus
    tgt.host_vms[o.host.name] += 1
    if vm.host in src.host_vcpus:
        src.host_vcpus[vm.host] -= vm.vcpus
        src.host_vms[vm.host] -= 1
    tgt.vm_names.add(vm.name)
    src.vm_names.discard(vm.name)
    if o.copy is not None:
        space = sum(d.space_gb for d in vm.disks)
        tgt.ds_used[o.datastore] = tgt.ds_used.get(o.datastore, 0.0) + space
        for d in vm.disks:
            src.ds_used[d.datastore] = src.ds_used.get(d.datastore, 0.0) - d.space_gb
    detail = (f"cluster {src.name} at {_pct(share_before)} of its capacity (over {_pct(options.high)}) -> "
              f"{_pct(max(src.share()))}; {tgt.name} {_pct(t_before)} -> {_pct(max(tgt.share()))}")
    cross_vcenter = options.member(src.name).vcenter != options.member(tgt.name).vcenter
    pool, why = target_pool(vm.resource_pool, tgt.snapshot, options)
    if why:
        detail += f"; {why}"
    return CrossMove(step=step, vm=vm.name, source_cluster=src.name, source=vm.host, target_cluster=tgt.name,
                     target=o.host.name, detail=detail, cross_vcenter=cross_vcenter, datastore=o.datastore, pool=pool,
                     cpu_mhz=round(load[0], 1), mem_mb=round(load[1], 1), vmotion=o.vmotion, storage_copy=o.copy)


def target_pool(pool: str | None, target: Snapshot, options: DomainOptions) -> tuple[str | None, str]:
    """The target cluster's pool a VM from ``pool`` goes into (the domain's ``pool_map``, else the same
    name; None: the root pool), and words when it cannot keep a pool ("" otherwise)."""
    if pool is None:
        return None, ""
    wanted = options.pool_map.get(pool, pool)
    if wanted in {p.name for p in target.resource_pools}:
        return wanted, ""
    return None, f"into the root pool of {target.cluster}: it has no resource pool {wanted}"


__all__ = ["plan_domain", "target_pool"]


def replay_problem(plan: DomainPlan, snapshots: Mapping[str, Snapshot], options: DomainOptions) -> str | None:
    """``plan`` replayed move by move on ``snapshots``: the first move the planner itself would not
    make there, in one line (None: every move holds). A move already made (its VM in the target
    cluster, not the source) is passed over.

    What it checks is what the planner holds to: the clusters and hosts exist, the VM is movable,
    in no rule of its cluster and not held (moved across within the cooldown), the target host
    receives VMs under its cluster's host duties (health, network), and the target cluster stays
    within ``room`` with it and the moves before it."""
    clusters = {m.cluster: _cluster(m.cluster, snapshots[m.cluster], None, m)
                for m in options.members if m.cluster in snapshots}
    for m in plan.moves:
        where = f"step {m.step} (VM {m.vm})"
        src, tgt = clusters.get(m.source_cluster), clusters.get(m.target_cluster)
        for name, c in ((m.source_cluster, src), (m.target_cluster, tgt)):
            if c is None:
                return f"{where}: cluster {name} is not in domain {options.name}"
        assert src is not None and tgt is not None
        if m.vm not in src.snapshot.vms_by_name():
            if m.vm in tgt.snapshot.vms_by_name():
                continue  # made before
            return f"{where}: VM {m.vm} is in neither cluster {m.source_cluster} nor {m.target_cluster}"
        for name, c, host in ((m.source_cluster, src, m.source), (m.target_cluster, tgt, m.target)):
            if host not in c.snapshot.hosts_by_name():
                return f"{where}: cluster {name} has no host {host}"
        vm = src.snapshot.vm(m.vm)
        if not vm.movable:
            return f"{where}: VM {m.vm} is not moved by the balancer (powered off, or its automation is {vm.automation.value})"
        if m.vm in _ruled(src.snapshot):
            return f"{where}: VM {m.vm} is in a rule of cluster {m.source_cluster}, which would not follow it"
        if m.vm in options.held_vms:
            return f"{where}: VM {m.vm} was moved between clusters within the domain's cooldown"
        why = check_duties(tgt.snapshot, tgt.snapshot.host(m.target), tgt.closed)
        if why:
            return f"{where}: {why}"
        load = src.vm_load[m.vm]
        if tgt.room_share(load) > options.room:
            return (f"{where}: cluster {m.target_cluster} would be at {_pct(tgt.room_share(load))} of the capacity "
                    f"it may fill (room up to {_pct(options.room)})")
        for i in range(2):
            src.load[i] -= load[i]
            tgt.load[i] += load[i]
    return None
