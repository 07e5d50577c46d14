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
after it and stays within its cluster's headroom. Each choice is greedy and explainable; a
cross-cluster move is rare and dear, so there are few of them and each is judged on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ...plan.domain import ClusterLoad, CrossMove, DomainPlan, Refusal
from ...plan.model import CopyEstimate, VMotionEstimate
from ...snapshot import VM, Host, HostState, Snapshot, VmdkRule, VmDatastoreRule
from ...snapshot.io import snapshot_digest
from ..compute.vmotion import estimate, modelled_dirty_rate_mbps
from ..options import DomainOptions
from ..storage.copy import copy_seconds
from .compat import check_cpu, check_network, check_size, disks_reachable, pick_datastore, same_in_target

CANDIDATES = 40  # VMs of an over cluster judged in full per move, the cheapest per unit of relief first
# Each move between clusters is priced this many seconds on top of its migration time: such moves
# are capped and dear however small, so a VM that relieves a little quickly should not win over
# one that relieves much in a little longer.
MOVE_OVERHEAD_S = 120.0


@dataclass
class _Cluster:
    name: str
    snapshot: Snapshot
    cap: list[float]  # cpu, mem of the usable hosts
    load: list[float]
    host_load: dict[str, list[float]] = field(default_factory=dict)  # hosts that are on
    ds_used: dict[str, float] = field(default_factory=dict)
    vm_names: set[str] = field(default_factory=set)

    def share(self, extra: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
        return tuple((self.load[i] + extra[i]) / self.cap[i] if self.cap[i] > 0 else float("inf")  # type: ignore[return-value]
                     for i in range(2))


def _cluster(name: str, snap: Snapshot) -> _Cluster:
    usable = [h for h in snap.hosts if h.state in (HostState.ON, HostState.STANDBY)]
    c = _Cluster(name, snap, [sum(h.cpu_capacity_mhz for h in usable), sum(h.mem_capacity_mb for h in usable)],
                 [0.0, 0.0])
    c.host_load = {h.name: [0.0, 0.0] for h in snap.hosts if h.is_on}
    for v in snap.vms:
        c.vm_names.add(v.name)
        c.load[0] += v.cpu_load_mhz
        c.load[1] += v.mem_load_mb
        if v.host in c.host_load:
            c.host_load[v.host][0] += v.cpu_load_mhz
            c.host_load[v.host][1] += v.mem_load_mb
    c.ds_used = {d.name: d.used_gb for d in snap.datastores}
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


def plan_domain(snapshots: Mapping[str, Snapshot], options: DomainOptions) -> DomainPlan:
    """The domain plan for these snapshots (keyed by the members' cluster names)."""
    missing = [m.cluster for m in options.members if m.cluster not in snapshots]
    if missing:
        raise ValueError(f"domain {options.name}: no snapshot of cluster {missing[0]}")
    clusters = {m.cluster: _cluster(m.cluster, snapshots[m.cluster]) for m in options.members}
    before = {n: c.share() for n, c in clusters.items()}
    over = sorted((n for n, s in before.items() if max(s) > options.high), key=lambda n: -max(before[n]))
    moves: list[CrossMove] = []
    refused: list[Refusal] = []
    refused_keys: set[tuple[str, str]] = set()
    notes: list[str] = []
    moved: set[str] = set()

    def refuse(vm: str, target: str, why: str) -> None:
        if (vm, target) not in refused_keys and len(refused) < options.max_refusals:
            refused_keys.add((vm, target))
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
                          and (v.cpu_load_mhz, v.mem_load_mb)[dim] > 0]
            candidates.sort(key=lambda v: -(v.cpu_load_mhz, v.mem_load_mb)[dim] / (
                _vmotion(v, hosts[v.host], None, options).seconds + MOVE_OVERHEAD_S))
            best: _Option | None = None
            for vm in candidates[:CANDIDATES]:
                option = _best_target(vm, hosts[vm.host], src, clusters, options, dim, refuse)
                if option is not None and (best is None or option.score > best.score):
                    best = option
            if best is None:
                why = "no cluster of the domain has room" if not any(
                    max(c.share()) <= options.room for n, c in clusters.items() if n != name) else \
                    "none of its movable VMs can run on a host of another cluster with room"
                notes.append(f"cluster {name} stays over {options.high:.0%} of its capacity: {why}")
                break
            moves.append(_apply(best, src, len(moves) + 1, options))
            moved.add(best.vm.name)
        if max(src.share()) > options.high and len(moves) >= options.max_moves \
                and not any(n.startswith(f"cluster {name} ") for n in notes):
            notes.append(f"cluster {name} stays over {options.high:.0%} of its capacity: the domain's cap of "
                         f"{options.max_moves} move(s) per plan is reached")
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
    load = (vm.cpu_load_mhz, vm.mem_load_mb)
    source_vcenter = options.member(src.name).vcenter
    space = sum(d.space_gb for d in vm.disks)
    best: _Option | None = None
    for tname, tgt in sorted(clusters.items(), key=lambda kv: max(kv[1].share(load))):
        if tname == src.name:
            continue
        if max(tgt.share(load)) > options.room:
            refuse(vm.name, tname, f"cluster {tname} would be at {max(tgt.share(load)):.0%} of its capacity "
                                   f"with it (room up to {options.room:.0%})")
            continue
        if vm.name in tgt.vm_names:
            refuse(vm.name, tname, f"cluster {tname} already has a VM named {vm.name}")
            continue
        member = options.member(tname)
        same_vcenter = member.vcenter == source_vcenter
        limits = (1.0 - member.cpu_headroom, 1.0 - member.mem_headroom)
        fitting: list[tuple[float, Host]] = []
        why = None
        for h in tgt.snapshot.hosts:
            if h.name not in tgt.host_load:
                continue
            reason = check_cpu(src.snapshot, host, tgt.snapshot, h) or check_network(vm, tgt.snapshot, h) \
                or check_size(vm, tgt.snapshot, h)
            if reason is None:
                after = [(tgt.host_load[h.name][i] + load[i]) / cap
                         for i, cap in enumerate((h.cpu_capacity_mhz, h.mem_capacity_mb))]
                if all(after[i] <= limits[i] for i in range(2)):
                    fitting.append((max(after), h))
                    continue
                reason = f"host {h.name} of {tname} would pass its headroom with it"
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
                           f"within {member.space_threshold:.0%}")
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
    load = (vm.cpu_load_mhz, vm.mem_load_mb)
    share_before = max(src.share())
    t_before = max(tgt.share())
    for i in range(2):
        src.load[i] -= load[i]
        tgt.load[i] += load[i]
        if vm.host in src.host_load:
            src.host_load[vm.host][i] -= load[i]
        tgt.host_load[o.host.name][i] += load[i]
    tgt.vm_names.add(vm.name)
    src.vm_names.discard(vm.name)
    if o.copy is not None:
        space = sum(d.space_gb for d in vm.disks)
        tgt.ds_used[o.datastore] = tgt.ds_used.get(o.datastore, 0.0) + space
        for d in vm.disks:
            src.ds_used[d.datastore] = src.ds_used.get(d.datastore, 0.0) - d.space_gb
    detail = (f"cluster {src.name} at {share_before:.0%} of its capacity (over {options.high:.0%}) -> "
              f"{max(src.share()):.0%}; {tgt.name} {t_before:.0%} -> {max(tgt.share()):.0%}")
    cross_vcenter = options.member(src.name).vcenter != options.member(tgt.name).vcenter
    return CrossMove(step=step, vm=vm.name, source_cluster=src.name, source=vm.host, target_cluster=tgt.name,
                     target=o.host.name, detail=detail, cross_vcenter=cross_vcenter, datastore=o.datastore,
                     cpu_mhz=round(load[0], 1), mem_mb=round(load[1], 1), vmotion=o.vmotion, storage_copy=o.copy)


__all__ = ["plan_domain"]
