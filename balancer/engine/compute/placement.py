"""Initial placement: rank the hosts a VM may power on, as DRS does before a VM starts.

Pure: a snapshot and a VM spec in, a ranked Placement out. A host qualifies when it is on, is no dedicated
HA failover host, has at least the VM's memory and vCPUs in logical CPUs (compat.py), the VM fits within its capacity minus
headroom, and every mandatory rule the VM belongs to holds
there (each registered constraint kind says so, constraints/: anti-affinity: no other member on
it; affinity: with the members that run; VM-host: inside or outside the host group). Qualified hosts are ranked by the should-rules placing the VM there
would break, then by the cluster's imbalance after (DRS's balance measure), then by the host's
utilisation after. A host in standby is ranked only when no host that is on qualifies, in DPM's
wake order (the most CPU per peak watt, else the largest): the VM then needs that host powered on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

import numpy as np

from ...plan.model import ResourcePair
from ...plan.placement import HostChoice, Placement, Rejection
from ...snapshot import VM, Automation, HostState, Snapshot, VmDatastoreRule, VmHostRule, VmVmRule
from ...snapshot.model import clamp
from ..words import pct as _pct
from ...snapshot.vmspec import VmSpec
from ..options import PlanOptions
from .balance import combined, imbalance
from .cluster import BALANCED, CPU, MEM, VCPUS, VMS, Cluster, build_cluster, tally_refusal
from .compat import refusal
from .entitlement import admission_refusal
from .dpm import _wake_order
from ..storage.placement import describe, disk_context, pinned_refusal, plan_disks


def spec_problem(snapshot: Snapshot, spec: VmSpec) -> str | None:
    """What makes the spec unusable with this cluster (one line), or None."""
    vm = snapshot.vms_by_name().get(spec.name)
    if vm is not None and vm.powered_on:
        return f"VM {spec.name} is already powered on (on {vm.host}): placement is for a VM before it powers on"
    if vm is None:
        for field in ("vcpus", "mem_mb"):
            if getattr(spec, field) is None:
                return f"{field}: missing (needed for a VM the cluster does not have yet: {spec.name})"
    rules = {r.name: r for r in snapshot.rules}
    for name in spec.rules:
        rule = rules.get(name)
        if rule is None:
            return f"rules: unknown rule {name!r} (cluster {snapshot.cluster})"
        if isinstance(rule, VmDatastoreRule) and spec.disks:
            continue  # its disks kept off the datastores of the rule's other VMs (engine/storage/placement.py)
        if not isinstance(rule, VmVmRule):
            what = "a VM-host rule: join its VM group (vm_groups) instead" if isinstance(rule, VmHostRule) \
                else "a Storage DRS rule (a vm-datastore-anti-affinity rule applies to a spec that lists disks)"
            return f"rules: {name!r} is {what}"
    for name in spec.vm_groups:
        if name not in snapshot.vm_groups:
            return f"vm_groups: unknown VM group {name!r} (cluster {snapshot.cluster})"
    if spec.resource_pool is not None and spec.resource_pool not in {p.name for p in snapshot.resource_pools}:
        return f"resource_pool: unknown resource pool {spec.resource_pool!r} (cluster {snapshot.cluster})"
    pods = {d.datastore_cluster for d in snapshot.datastores if d.datastore_cluster}
    own = {k.name for k in vm.disks} if vm is not None else set()
    for i, d in enumerate(spec.disks):
        if d.datastore_cluster is not None and d.datastore_cluster not in pods:
            return f"disks.{i}.datastore_cluster: unknown datastore cluster {d.datastore_cluster!r} (cluster {snapshot.cluster})"
        if vm is not None and d.name not in own:
            return (f"disks.{i}: VM {spec.name} has no disk {d.name!r} (its disks: {', '.join(sorted(own)) or 'none'}; "
                    "placement moves the disks a VM has)")
    if spec.disks and not snapshot.datastores:
        return f"disks: cluster {snapshot.cluster} lists no datastore"
    mem_mb = spec.mem_mb if spec.mem_mb is not None else vm.mem_mb  # type: ignore[union-attr]
    for field in ("mem_demand_mb", "mem_reservation_mb"):
        value = getattr(spec, field)
        if value is not None and value > mem_mb:
            return f"{field}: {value:g} MB is more than the VM's memory (mem_mb {mem_mb:g})"
    return None


def _with_spec(snapshot: Snapshot, spec: VmSpec) -> Snapshot:
    """The snapshot with the spec's VM in it (registered, powered off, where it is registered or on the
    first host) and in the VM-VM rules (``rules``) and VM groups (``vm_groups``) the spec names: the
    rules then compile with it as a member (constraints/)."""
    name = spec.name
    pool = spec_pool(snapshot, spec)
    vms = [v.model_copy(update={"resource_pool": pool}) if v.name == name else v for v in snapshot.vms]
    if name not in snapshot.vms_by_name():
        if not snapshot.hosts:
            return snapshot
        vms.append(VM.model_construct(name=name, host=snapshot.hosts[0].name, vcpus=spec.vcpus, mem_mb=spec.mem_mb,
                                      cpu_demand_mhz=0.0, mem_demand_mb=0.0, cpu_reservation_mhz=0.0,
                                      mem_reservation_mb=0.0, dirty_rate_mbps=None, powered_on=False,
                                      automation=Automation.DEFAULT, disks=[], networks=[], min_evc_mode=None,
                                      resource_pool=pool))
    rules = [r.model_copy(update={"vms": [*r.vms, name]})
             if isinstance(r, VmVmRule) and r.name in spec.rules and name not in r.vms else r for r in snapshot.rules]
    groups = {g: [*members, name] if g in spec.vm_groups and name not in members else members
              for g, members in snapshot.vm_groups.items()}
    out = snapshot.model_copy(update={"vms": vms, "rules": rules, "vm_groups": groups})
    out._vm_index = None  # (the copy's name index is built again, with the VM)
    return out


def vm_load(snapshot: Snapshot, spec: VmSpec) -> tuple[float, float]:
    """The VM's entitlement once on: expected demand raised to its reservation (MHz, MB)."""
    vm = snapshot.vms_by_name().get(spec.name)
    mem_mb = spec.mem_mb if spec.mem_mb is not None else vm.mem_mb  # type: ignore[union-attr]
    mem_demand = spec.mem_demand_mb if spec.mem_demand_mb is not None else mem_mb
    return (clamp(spec.cpu_demand_mhz, spec.cpu_reservation_mhz, spec.cpu_limit_mhz),
            clamp(mem_demand, spec.mem_reservation_mb, spec.mem_limit_mb))


def spec_pool(snapshot: Snapshot, spec: VmSpec) -> str | None:
    """The resource pool the VM powers on in: the spec's, else where the cluster has it (else the root)."""
    if spec.resource_pool is not None:
        return spec.resource_pool
    vm = snapshot.vms_by_name().get(spec.name)
    return vm.resource_pool if vm is not None else None


def place_vm(snapshot: Snapshot, spec: VmSpec, options: PlanOptions | None = None,
             vm_demand: Mapping[str, tuple[float, float]] | None = None) -> Placement:
    """Rank the hosts ``spec``'s VM may power on. The spec must pass ``spec_problem`` first.

    ``vm_demand``: the other VMs' recent demand (History.vm_demand), as the planner uses it.
    """
    options = options or PlanOptions()
    pool = spec_pool(snapshot, spec)
    admission = admission_refusal(snapshot, pool, spec.cpu_reservation_mhz, spec.mem_reservation_mb, exclude=spec.name)
    # the VM is in the cluster, powered off (no load): its rules compile with it as a member
    cluster = build_cluster(_with_spec(snapshot, spec), options, vm_demand if options.recent_demand else None)
    loads = cluster.host_loads(cluster.place)
    registered = snapshot.vms_by_name().get(spec.name)
    mem_mb = spec.mem_mb if spec.mem_mb is not None else registered.mem_mb  # type: ignore[union-attr]
    vcpus = spec.vcpus if spec.vcpus is not None else registered.vcpus  # type: ignore[union-attr]
    # CPU and memory, then what the VM adds to each tally (its vCPUs, one VM)
    need = np.array([*vm_load(snapshot, spec), *({VCPUS: vcpus, VMS: 1}[t] for t in cluster.tallies)], dtype=float)
    vm = cluster.vm_index(spec.name) if snapshot.hosts else -1
    running = cluster.powered.copy()
    before = imbalance(cluster, loads)

    rejected: dict[int, str] = {}
    soft: dict[int, list[str]] = {}
    disks = disk_context(snapshot, spec, options)
    pinned = None if disks is not None or registered is None or not registered.disks or not snapshot.hosts \
        else disk_context(snapshot, spec.model_copy(update={"disks": []}), options, pinned_only=True)
    disk_plans = {}
    for h, host in enumerate(snapshot.hosts):
        why, broken = _rule_refusals(cluster, vm, h, running)
        if why is None:
            why = refusal(snapshot, host, mem_mb, vcpus, registered, cluster.closed)  # host duties and compatibility (compat.py)
        if why is None and host.state not in (HostState.ON, HostState.STANDBY):
            why = f"{host.state.words}: receives no VM"
        if why is None:
            why = _capacity(cluster, loads, h, need)
        if why is None and pinned is not None:  # a VM the cluster has: the host reaches its disks
            why = pinned_refusal(pinned, h)
        if why is None and disks is not None:  # its disks: a datastore the host mounts takes each
            disk_plans[h], why = plan_disks(disks, h)
        if why is not None:
            rejected[h] = why
            continue
        soft[h] = broken

    on_hosts = [h for h in soft if cluster.on[h]]
    standby = [h for h in soft if not cluster.on[h]]
    choices: list[HostChoice] = []
    if on_hosts:
        scored = []
        for h in on_hosts:
            after = loads.copy()
            after[h] += need
            cpu, mem = imbalance(cluster, after)
            u = after[h, BALANCED] / cluster.cap[h, BALANCED]
            scored.append((len(soft[h]), round(combined(cpu, mem), 9), round(float(u.max()), 9), h, cpu, mem, u))
        scored.sort(key=lambda s: s[:4])
        for s in scored:
            choices.append(_choice(cluster, len(choices) + 1, s[3], s[6], (s[4], s[5]), soft[s[3]], before,
                                   power_on=False, loads=loads))
        for h in standby:
            rejected[h] = "in standby: a host in standby is woken only when no host that is on fits"
    elif standby:
        mask = np.zeros(cluster.n_hosts, dtype=bool)
        mask[standby] = True
        order = _wake_order(cluster, mask)
        for h in sorted(standby, key=lambda h: (len(soft[h]), order.index(h))):
            woken = replace(cluster, on=cluster.on | (np.arange(cluster.n_hosts) == h))
            after = loads.copy()
            after[h] += need
            cpu, mem = imbalance(woken, after)
            choices.append(_choice(cluster, len(choices) + 1, h, after[h, BALANCED] / cluster.cap[h, BALANCED], (cpu, mem), soft[h],
                                   before, power_on=True, loads=loads))

    chosen_disks = None
    if disks is not None and choices:
        # the best host: the fewest units above a threshold, then its rank; the hosts listed mount its datastores
        by_host = {c.host: i for i, c in enumerate(choices)}
        hidx = {n: i for i, n in enumerate(cluster.host_names)}
        best = min(choices, key=lambda c: (disk_plans[hidx[c.host]].over, disk_plans[hidx[c.host]].hot,
                                           by_host[c.host]))
        bh = hidx[best.host]
        plan = disk_plans[bh]
        chosen_disks = describe(disks, plan, bh)
        needed = sorted(set(plan.where))
        kept = [best]
        for c in choices:
            if c is best:
                continue
            missing = [d for d in needed if not disks.pool.mounts[d, hidx[c.host]]]
            if missing:
                names = [n.name for i, n in enumerate(disks.needs) if plan.where[i] == missing[0]]
                rejected[hidx[c.host]] = (f"does not mount datastore {disks.pool.ds_names[missing[0]]}, chosen for "
                                          f"the VM's {', '.join(names)} at {best.host}")
            else:
                kept.append(c)
        choices = [c.model_copy(update={"rank": r}) for r, c in enumerate(kept, start=1)]

    out = Placement(
        cluster=snapshot.cluster,
        collected_at=snapshot.collected_at.isoformat() if snapshot.collected_at else None,
        vm=spec.name,
        registered_on=registered.host if registered is not None else None,
        load=ResourcePair(cpu=float(need[CPU]), mem=float(need[MEM])),
        imbalance_before=ResourcePair(cpu=before[0], mem=before[1]),
        hosts=choices,
        rejected=[Rejection(host=cluster.host_names[h], why=w) for h, w in sorted(rejected.items())],
    )
    if chosen_disks is not None:
        out.disks, out.datastores, out.rejected_datastores = chosen_disks
    if admission is not None:  # vCenter's admission control would refuse to power it on anywhere
        out.hosts, out.status, out.why_not, out.rejected = [], "impossible", admission, []
        out.disks, out.datastores, out.rejected_datastores = [], [], []
    elif not choices:
        out.status = "impossible"
        out.why_not = _why_not(spec, need, out.rejected)
    return out


def _rule_refusals(cluster: Cluster, vm: int, h: int, running: np.ndarray) -> tuple[str | None, list[str]]:
    """Putting ``vm`` on ``h``: the first mandatory rule it would break (words), and the should-rules it would break."""
    hard, soft = None, []
    for g in cluster.rules:
        if vm not in g.vms:
            continue
        why = g.placement_refusal(vm, h, cluster.place, running, cluster.host_names, cluster.vm_names)
        if why is None:
            continue
        if not g.mandatory:
            soft.append(g.rule)
        elif hard is None:
            hard = why
    return hard, soft


def _capacity(cluster: Cluster, loads: np.ndarray, h: int, need: np.ndarray) -> str | None:
    after = loads[h] + need
    for r, word in ((CPU, "CPU"), (MEM, "memory")):
        if after[r] > cluster.limit[h, r] + 1e-6:
            cap, lim = cluster.cap[h, r], cluster.limit[h, r]
            return f"{word} would be {_pct(after[r] / cap)} of capacity, above the {_pct(lim / cap)} limit"
    for r, tally in enumerate(cluster.tallies, start=MEM + 1):
        if after[r] > cluster.limit[h, r] + 1e-6:
            return tally_refusal(tally, after[r], cluster.limit[h, r])
    return None


def _choice(cluster: Cluster, rank: int, h: int, u: np.ndarray, after: tuple[float, float], soft: list[str],
            before: tuple[float, float], power_on: bool, loads: np.ndarray) -> HostChoice:
    now = loads[h, BALANCED] / cluster.cap[h, BALANCED]
    words = [f"CPU {_pct(now[CPU])} → {_pct(u[CPU])}, memory {_pct(now[MEM])} → {_pct(u[MEM])}",
             f"imbalance CPU {before[0]:.3f} → {after[0]:.3f}, memory {before[1]:.3f} → {after[1]:.3f}"]
    if power_on:
        words.insert(0, "power on from standby: no host that is on fits")
    if soft:
        words.append("breaks should-rule " + ", ".join(soft))
    return HostChoice(rank=rank, host=cluster.host_names[h], power_on=power_on, cpu_before=float(now[CPU]),
                      mem_before=float(now[MEM]), cpu_after=float(u[CPU]),
                      mem_after=float(u[MEM]), imbalance_after=ResourcePair(cpu=after[0], mem=after[1]),
                      should_rules_broken=soft, reason="; ".join(words))


def _why_not(spec: VmSpec, need: np.ndarray, rejected: list[Rejection]) -> str:
    by_why: dict[str, list[str]] = {}
    for r in rejected:
        key = r.why.split(" would be ")[0] + " above its limit" if " would be " in r.why else r.why
        by_why.setdefault(key, []).append(r.host)
    parts = []
    for why, hosts in by_why.items():
        shown = ", ".join(hosts[:4]) + (f" and {len(hosts) - 4} more" if len(hosts) > 4 else "")
        parts.append(f"{shown}: {why}")
    return (f"no host fits {spec.name} ({need[CPU]:.0f} MHz, {need[MEM]:.0f} MB): " + "; ".join(parts)
            if parts else f"no host fits {spec.name}: the cluster has no host")


__all__ = ["place_vm", "spec_problem", "vm_load"]
