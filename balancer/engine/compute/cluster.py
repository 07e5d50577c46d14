"""The engine's indexed view of a snapshot: numpy arrays over hosts and VMs, and compiled rules.

Built once per plan; every planner (CP-SAT optimiser, greedy baseline) and the
ordering step work on integer indices into these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ...snapshot import Automation, HostState, Snapshot
from ...snapshot.model import clamp
from ..mounts import vm_reach
from .compat import closed_hosts, restrict
from .entitlement import entitle
from .constraints import Constraint, HostSet, Index, Shape, compile_rules
from ..options import PlanOptions
from .vmotion import modelled_dirty_rate_mbps

CPU, MEM = 0, 1
BALANCED = slice(CPU, MEM + 1)  # the columns DRS balances; any further columns are tallies (TALLIES)
# Per-host tallies with a ceiling, kept as further columns of load / cap / limit / bound when an option
# asks for them, so every check of a placement against its ceilings holds them too; never balanced.
VCPUS, VMS = "vCPUs", "VMs"  # drs.max_vcpus_per_core (hard: cap = limit) and drs.vm_distribution (a limit of ours)


@dataclass
class Cluster:
    snapshot: Snapshot
    host_names: list[str]
    vm_names: list[str]
    cap: np.ndarray  # (H, R) capacity: MHz, MB, then the tallies' hard ceilings
    on: np.ndarray  # (H,) bool: host is on (counts for balance, may receive VMs)
    bound: np.ndarray  # (H, R) the most a host may carry after any step
    limit: np.ndarray  # (H, R) capacity minus headroom, then the tallies' ceilings
    load: np.ndarray  # (V, R) entitlement: demand raised to reservation, 0 when powered off; then tallies
    mem_mb: np.ndarray  # (V,) configured memory (what vMotion copies)
    dirty_mbps: np.ndarray  # (V,)
    bandwidth_mbps: np.ndarray  # (H,)
    place: np.ndarray  # (V,) current host index
    movable: np.ndarray  # (V,) bool: may be moved automatically
    must_leave: np.ndarray  # (V,) bool: powered-on VM on a host that is not on (maintenance)
    powered: np.ndarray  # (V,) bool
    allowed: np.ndarray  # (V, H) bool: hosts a VM may run on under mandatory rules, host states and duties, compatibility
    rules: list[Constraint] = field(default_factory=list)  # compiled by the registered kinds (constraints/)
    power_idle_w: np.ndarray | None = None
    power_peak_w: np.ndarray | None = None
    wanted: np.ndarray | None = None  # (V, 2) the load before entitlement (demand within reservation and limit)
    manual: np.ndarray | None = None  # (V,) bool: movable only as a recommendation for an admin (manual override)
    tallies: tuple[str, ...] = ()  # names of the columns after CPU and memory (VCPUS, VMS)
    closed: dict[str, str] = field(default_factory=dict)  # host -> why it receives no VM (health, network: compat.py)
    # a VM's configured CPU: what it could ask at most (cpu_burst): its vCPUs (0 when powered off),
    # its own CPU limit (inf: none), and each host's MHz per core (0: cores not known)
    vcpus: np.ndarray | None = None  # (V,)
    cpu_ceiling_mhz: np.ndarray | None = None  # (V,)
    core_mhz: np.ndarray | None = None  # (H,)

    @property
    def n_hosts(self) -> int:
        return len(self.host_names)

    @property
    def n_vms(self) -> int:
        return len(self.vm_names)

    def host_loads(self, place: np.ndarray) -> np.ndarray:
        """(H, R) summed entitlement (and tallies) per host for a placement."""
        out = np.zeros((self.n_hosts, self.load.shape[1]))
        np.add.at(out, place, self.load)
        return out

    def vm_index(self, name: str) -> int:
        return self._vm_idx[name]

    def host_index(self, name: str) -> int:
        return self._host_idx[name]

    def __post_init__(self) -> None:
        self._vm_idx = {n: i for i, n in enumerate(self.vm_names)}
        self._host_idx = {n: i for i, n in enumerate(self.host_names)}
        self.apart_of: dict[int, list[Constraint]] = {}  # VM -> the mandatory rules that keep it apart from others
        for g in self.apart:
            if g.mandatory:
                for v in g.vms:
                    self.apart_of.setdefault(int(v), []).append(g)

    # the rules by shape (constraints/base.py): how the move-by-move planners read them
    @property
    def apart(self) -> list[Constraint]:
        return [g for g in self.rules if g.shape is Shape.APART]

    @property
    def together(self) -> list[Constraint]:
        return [g for g in self.rules if g.shape is Shape.TOGETHER]

    @property
    def host_sets(self) -> list[HostSet]:
        return [g for g in self.rules if g.shape is Shape.HOSTS]

    def rule(self, name: str | None) -> Constraint | None:
        return next((g for g in self.rules if g.rule == name), None)

    def balance_point(self) -> np.ndarray:
        """(2,) the utilisation every host that is on would have if the load were spread perfectly."""
        return self.load[:, BALANCED].sum(axis=0) / np.maximum(self.cap[self.on][:, BALANCED].sum(axis=0), 1e-9)

    def cpu_burst(self, vms: np.ndarray, hosts: np.ndarray) -> np.ndarray:
        """MHz VM ``vms[i]`` could ask on host ``hosts[i]`` above its CPU load now (the two broadcast): a
        powered-on VM at its configured CPU, its vCPUs x the host's MHz per core within its own CPU limit;
        0 on a host whose cores are not known. What a VM idle for hours may ask at once (a burst)."""
        if self.vcpus is None or self.cpu_ceiling_mhz is None or self.core_mhz is None:
            return np.zeros(np.broadcast(vms, hosts).shape)
        peak = np.minimum(self.vcpus[vms] * self.core_mhz[hosts], self.cpu_ceiling_mhz[vms])
        return np.maximum(peak - self.load[vms, CPU], 0.0)

    def cores_known(self, hosts: np.ndarray) -> np.ndarray:
        """Whether each of ``hosts`` gives its cores, so a VM's burst there is judged (cpu_burst)."""
        return np.zeros(len(hosts), dtype=bool) if self.core_mhz is None else self.core_mhz[hosts] > 0

    def stranded(self, place: np.ndarray) -> np.ndarray:
        """(V,) bool: powered-on VMs on a host that is not on."""
        return self.powered & ~self.on[place]


def automatic_first(cluster: Cluster, vms: np.ndarray) -> np.ndarray:
    """``vms`` with those under a manual override (moved only by an admin) last: of two moves that gain as
    much, the planners take the first, so the automatic one."""
    if cluster.manual is None or not cluster.manual[vms].any():
        return vms
    late = cluster.manual[vms]
    return np.concatenate([vms[~late], vms[late]])


def build_cluster(snapshot: Snapshot, options: PlanOptions,
                  vm_demand: Mapping[str, tuple[float, float]] | None = None) -> Cluster:
    hosts = snapshot.hosts
    vms = snapshot.vms
    host_idx = {h.name: i for i, h in enumerate(hosts)}
    vm_idx = {v.name: i for i, v in enumerate(vms)}
    H, V = len(hosts), len(vms)

    cap = np.array([[h.cpu_capacity_mhz, h.mem_capacity_mb] for h in hosts], dtype=float).reshape(H, 2)
    on = np.array([h.is_on for h in hosts], dtype=bool)
    limit = cap * np.array([1.0 - options.cpu_headroom, 1.0 - options.mem_headroom])
    load = np.array([[v.cpu_load_mhz, v.mem_load_mb] for v in vms], dtype=float).reshape(V, 2)
    if vm_demand:  # demand judged over the recent past (History.vm_demand), raised to the reservation
        for i, v in enumerate(vms):
            recent = vm_demand.get(v.name)
            if recent is not None and v.powered_on:
                load[i] = (clamp(recent[0], v.cpu_reservation_mhz, v.cpu_limit_mhz),
                           clamp(recent[1], v.mem_reservation_mb, v.mem_limit_mb))
    wanted = load
    load = entitle(snapshot, load)  # under contention, divided by shares down the pool tree (entitlement.py)
    mem_mb = np.array([v.mem_mb for v in vms], dtype=float)
    dirty = np.array(
        [v.dirty_rate_mbps if v.dirty_rate_mbps is not None else modelled_dirty_rate_mbps(v.mem_demand_mb) for v in vms],
        dtype=float,
    )
    bandwidth = np.array(
        [h.vmotion_mbps if h.vmotion_mbps is not None else options.default_vmotion_mbps for h in hosts], dtype=float
    )
    place = np.array([host_idx[v.host] for v in vms], dtype=np.int64)
    powered = np.array([v.powered_on for v in vms], dtype=bool)
    # a VM under a manual DRS override moves only in a recommendation (PlanOptions.manual_vms)
    manual = np.array([options.manual_vms and v.powered_on and v.automation is Automation.MANUAL for v in vms],
                      dtype=bool) if V else np.zeros(0, dtype=bool)
    movable = np.array([v.movable for v in vms], dtype=bool) | manual if V else np.zeros(0, dtype=bool)
    # vCenter cannot migrate a VM off a disconnected host: its VMs stay until it reconnects
    reachable = np.array([h.state is not HostState.DISCONNECTED for h in hosts], dtype=bool)
    must_leave = powered & ~on[place] & reachable[place] if V else np.zeros(0, dtype=bool)
    # An evacuation moves powered-on VMs off a maintenance host whatever their automation level.
    movable = (movable | must_leave) & reachable[place] if V else movable

    vcpus = np.array([v.vcpus if v.powered_on else 0 for v in vms], dtype=float)  # (V,) 0 when powered off
    cap, limit, load, tallies = _tallies(snapshot, options, on, cap, limit, load, vcpus)
    # Current load may already exceed the limit: such a host must not get worse, and is repaired.
    cur = np.zeros((H, cap.shape[1]))
    np.add.at(cur, place, load)
    bound = np.maximum(limit, cur)

    allowed = np.repeat(on[None, :], V, axis=0)
    rules = compile_rules(snapshot, Index(host_idx, vm_idx))
    for g in rules:
        g.narrow(allowed)  # mandatory host-shaped rules

    closed = closed_hosts(snapshot, options)
    restrict(snapshot, allowed, mem_mb, place, closed)  # host duties and compatibility (compat.py)
    if snapshot.datastores and V:
        allowed &= _reach(snapshot, options, on, place, allowed)

    idle = peak = None
    if all(h.power_idle_w is not None and h.power_peak_w is not None for h in hosts):
        idle = np.array([h.power_idle_w for h in hosts], dtype=float)
        peak = np.array([h.power_peak_w for h in hosts], dtype=float)

    ceiling = np.array([np.inf if v.cpu_limit_mhz is None else v.cpu_limit_mhz for v in vms], dtype=float)
    core_mhz = np.array([h.cpu_capacity_mhz / h.cpu_cores if h.cpu_cores else 0.0 for h in hosts], dtype=float)

    return Cluster(
        snapshot=snapshot,
        host_names=[h.name for h in hosts],
        vm_names=[v.name for v in vms],
        cap=cap,
        on=on,
        bound=bound,
        limit=limit,
        load=load,
        mem_mb=mem_mb,
        dirty_mbps=dirty,
        bandwidth_mbps=bandwidth,
        place=place,
        movable=movable,
        must_leave=must_leave,
        powered=powered,
        allowed=allowed,
        rules=rules,
        wanted=wanted,
        manual=manual,
        power_idle_w=idle,
        power_peak_w=peak,
        tallies=tallies,
        closed=closed,
        vcpus=vcpus,
        cpu_ceiling_mhz=ceiling,
        core_mhz=core_mhz,
    )


def tally_refusal(tally: str, value: float, ceiling: float) -> str:
    """Why a host refuses a VM for a tally (its value after the VM, above its ceiling), in words."""
    if tally == VCPUS:
        return f"{value:g} vCPUs would be above its over-commitment limit of {ceiling:g} (drs.max_vcpus_per_core)"
    return f"{value:g} VMs would be above the VM distribution limit of {ceiling:g} (drs.vm_distribution)"


def tally_over(tally: str, value: float, ceiling: float) -> str:
    """A host above a tally's ceiling now, in words."""
    if tally == VCPUS:
        return f"{value:g} vCPUs, above its over-commitment limit of {ceiling:g} (drs.max_vcpus_per_core)"
    return f"{value:g} VMs, above the VM distribution limit of {ceiling:g} (drs.vm_distribution)"


def _tallies(snapshot: Snapshot, options: PlanOptions, on: np.ndarray, cap: np.ndarray, limit: np.ndarray,
             load: np.ndarray, vcpus: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """``cap``, ``limit`` and ``load`` with a column per tally the options ask for (VCPUS, VMS).

    vCPUs: a powered-on VM counts its vCPUs; a host's ceiling is max_vcpus_per_core x its cores (threads
    when the snapshot gives no cores; no ceiling when it gives neither), hard: capacity and limit alike.
    VMs: a powered-on VM counts 1; a host's limit is the mean over the hosts that are on and not being
    evacuated, raised by vm_distribution and rounded up; its capacity never binds (a repair of a hard
    violation may go above the limit, as it may above the headroom). Ceilings that never bind are finite
    (one more than the whole cluster holds), so ratios stay numbers."""
    hosts, vms = snapshot.hosts, snapshot.vms
    names: list[str] = []
    cols_vm: list[np.ndarray] = []
    cols_cap: list[np.ndarray] = []
    cols_limit: list[np.ndarray] = []
    powered = np.array([v.powered_on for v in vms], dtype=bool)
    if options.max_vcpus_per_core is not None:
        per_vm = vcpus
        never = per_vm.sum() + 1.0
        cores = [h.cpu_cores or h.cpu_threads for h in hosts]
        ceiling = np.array([never if c is None else options.max_vcpus_per_core * c for c in cores], dtype=float)
        names.append(VCPUS)
        cols_vm.append(per_vm)
        cols_cap.append(ceiling)
        cols_limit.append(ceiling)
    if options.vm_distribution is not None:
        per_vm = powered.astype(float)
        receiving = on.copy()
        for i, h in enumerate(hosts):
            if h.name in options.evacuate:
                receiving[i] = False
        mean = per_vm.sum() / max(int(receiving.sum()), 1)
        ceiling = float(np.ceil(mean * (1.0 + options.vm_distribution) - 1e-9))
        names.append(VMS)
        cols_vm.append(per_vm)
        cols_cap.append(np.full(len(hosts), per_vm.sum() + 1.0))
        cols_limit.append(np.full(len(hosts), max(ceiling, 1.0)))
    if not names:
        return cap, limit, load, ()
    return (np.column_stack([cap, *cols_cap]), np.column_stack([limit, *cols_limit]),
            np.column_stack([load, *cols_vm]) if len(vms) else np.zeros((0, 2 + len(names))), tuple(names))


def _reach(snapshot: Snapshot, options: PlanOptions, on: np.ndarray, place: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(V, H) bool: the hosts each VM may go to for its datastores: those that mount every datastore
    its disks are on. A VM that must leave its host (not on, or being evacuated) while no host in
    service that it may run on mounts them may go to any host: its disks move with it (a
    shared-nothing vMotion, engine/storage/carry.py)."""
    reach = vm_reach(snapshot)
    leaving = ~on
    names = {h.name: i for i, h in enumerate(snapshot.hosts)}
    for name in options.evacuate:
        if name in names:
            leaving[names[name]] = True
    must_go = leaving[place]
    stuck = must_go & ~(reach & allowed & ~leaving[None, :]).any(axis=1)
    reach[stuck] = True
    return reach
