"""Planning options: everything the engine needs besides the snapshot. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .budget import MoveBudget


@dataclass(frozen=True)
class DpmOptions:
    """Distributed Power Management: when hosts go to standby or come back (engine/compute/dpm.py)."""

    target: float = 0.63  # demand / capacity DPM aims for
    tolerance: float = 0.18  # band: target - tolerance .. target + tolerance (45 %..81 %)
    min_hosts_on: int = 2  # never fewer hosts on
    headroom_hosts: int = 1  # the demand must still fit with this many of the largest hosts lost
    max_standby: int | None = 1  # hosts put into standby per plan (None: no cap); the next plan judges again
    # The pace: a plan takes at most ceil(pace x the hosts that could still go at this demand) (the gap to the
    # band's target, in hosts), at least one and at most max_standby; far from the band several hosts a plan,
    # near it one. A plan taking one host waits for the hold time after the last standby, as before.
    # 1.0: the cap alone decides (the service's config sets 0.5: half the gap a cycle).
    pace: float = 1.0
    # a further cap, as a share of the hosts on: at most ceil(share x hosts on) a plan (None: none)
    max_standby_share: float | None = None
    # vMotion limit: the VMs a plan moves off hosts going to standby stay within this many per host that
    # stays on (DRS's MaxMovesPerHost, 8 a pass)
    moves_per_host: int = 8
    # the band per resource: memory's target and tolerance (None: the same as CPU's)
    mem_target: float | None = None
    mem_tolerance: float | None = None
    # The whole consolidation in one plan: no cap on hosts put into standby, no hold time between
    # them (hosts held individually stay as they are), each standby right after the moves that empty it.
    all_steps: bool = False
    # hosts whose per-host DPM override is manual may be recommended (False: for a plan carried out
    # automatically, they keep their power state, as vSphere leaves them to the admin)
    manual_hosts: bool = True
    # History.off_window_covered is used: before the power-off window is covered (a fresh start), the
    # demand seen so far, scaled up by the share of the window not yet seen, is judged (False: wait)
    scale_partial_window: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0 or not 0.0 <= self.tolerance < 1.0:
            raise ValueError("dpm target must be in (0, 1) and tolerance in [0, 1)")
        if self.min_hosts_on < 1 or self.headroom_hosts < 0:
            raise ValueError("dpm min_hosts_on must be >= 1 and headroom_hosts >= 0")
        if self.max_standby is not None and self.max_standby < 1:
            raise ValueError("dpm max_standby must be >= 1 (or None: no cap)")
        if self.max_standby_share is not None and not 0.0 < self.max_standby_share <= 1.0:
            raise ValueError("dpm max_standby_share must be in (0, 1] (or None)")
        if not 0.0 < self.pace <= 1.0 or self.moves_per_host < 1:
            raise ValueError("dpm pace must be in (0, 1] and moves_per_host >= 1")
        mt, mtol = self.mem_band_params
        if not 0.0 < mt < 1.0 or not 0.0 <= mtol < 1.0 or mt + mtol > 1.0 + 1e-9:
            raise ValueError("dpm mem_target must be in (0, 1), mem_tolerance in [0, 1), their sum at most 1")

    @property
    def mem_band_params(self) -> tuple[float, float]:
        return (self.target if self.mem_target is None else self.mem_target,
                self.tolerance if self.mem_tolerance is None else self.mem_tolerance)

    @property
    def targets(self) -> tuple[float, float]:
        """(CPU, memory) targets."""
        return self.target, self.mem_band_params[0]

    @property
    def lows(self) -> tuple[float, float]:
        """(CPU, memory) bottoms of the band: below both, hosts may go to standby."""
        mt, mtol = self.mem_band_params
        return max(self.target - self.tolerance, 0.0), max(mt - mtol, 0.0)

    @property
    def highs(self) -> tuple[float, float]:
        """(CPU, memory) tops of the band: above either, hosts are powered on."""
        mt, mtol = self.mem_band_params
        return self.target + self.tolerance, mt + mtol

    @property
    def same_band(self) -> bool:
        return self.mem_target is None and self.mem_tolerance is None or self.mem_band_params == (self.target, self.tolerance)

    @property
    def standby_cap(self) -> int | None:
        """Hosts one plan may put into standby (None: no cap)."""
        return None if self.all_steps else self.max_standby

    @property
    def band(self) -> tuple[float, float]:
        """CPU's band (memory's: ``lows[1]``, ``highs[1]``)."""
        return max(self.target - self.tolerance, 0.0), self.target + self.tolerance


@dataclass(frozen=True)
class StorageOptions:
    """Storage DRS: when disks move between datastores by Storage vMotion (engine/storage/)."""

    space_threshold: float = 0.80  # a datastore above this used/capacity is to be relieved
    latency_threshold_ms: float = 15.0  # a datastore above this mean I/O latency is to be relieved
    io_balancing: bool = True  # judge latency at all (off: space only)
    # a space move's target is at least this much less utilised than its source (Storage DRS's
    # minimum space utilisation difference)
    min_space_difference: float = 0.05
    copy_mbps: float = 2_000.0  # Storage vMotion copy rate, megabits per second, for the predicted copy time
    keep_disks_together: bool = True  # VMDK affinity by default, as Storage DRS does
    max_moves: int | None = None  # cap on storage moves per plan (None: no cap)
    # Datastores entering maintenance: every disk on them moves off (datastore maintenance mode).
    evacuate: tuple[str, ...] = ()
    # a datastore above the space threshold is relieved to this much below it, and no space move
    # fills a target above that: a little headroom, so the next growth does not trigger a move at once
    relief_margin: float = 0.01
    # never leave the fullest datastore fuller than "largest disk off the fullest datastore" would with
    # as many moves (select.py); off: the space stage's own plan, the least predicted copy time
    hold_to_heuristic: bool = True
    # datastore clusters whose automation is manual (snapshot datastore_clusters) are recommended moves, as
    # vSphere does; off for a plan carried out automatically, which moves no disk of theirs but to evacuate
    manual_pods: bool = True
    # thin disks' growth (Disk.growth_gb_per_day) over this many days, capped at their provisioned size, is
    # counted in what each datastore and each moved disk takes (0: today's used space only)
    growth_days: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.space_threshold <= 1.0:
            raise ValueError("sdrs space_threshold must be in (0, 1]")
        if self.latency_threshold_ms <= 0 or self.copy_mbps <= 0:
            raise ValueError("sdrs latency_threshold_ms and copy_mbps must be > 0")
        if not 0.0 <= self.min_space_difference < 1.0:
            raise ValueError("sdrs min_space_difference must be in [0, 1)")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError("sdrs max_moves must be >= 0")
        if not self.growth_days >= 0.0:
            raise ValueError("sdrs growth_days must be >= 0")
        if not 0.0 <= self.relief_margin < self.space_threshold:
            raise ValueError("sdrs relief_margin must be in [0, space_threshold)")

    @property
    def moves_budget(self) -> MoveBudget:
        return MoveBudget(self.max_moves)


HEALTH_REMEDIATIONS = ("quarantine", "mixed", "maintenance", "off")
MODELS = ("imbalance", "vm-score")


def check_host_duties(duties: "PlanOptions | DomainMember") -> None:
    """The host duties' options (health remediation and overrides, the network limit: compute/compat.py's
    ``closed_hosts``) are valid; ValueError otherwise. PlanOptions and DomainMember carry the same three."""
    if duties.health_remediation not in HEALTH_REMEDIATIONS:
        raise ValueError(f"health_remediation must be one of {', '.join(HEALTH_REMEDIATIONS)}")
    for _, state, _ in duties.health_overrides:
        if state not in ("healthy", "moderate", "severe"):
            raise ValueError("a host's health is healthy, moderate or severe")
    if duties.max_network_utilization is not None and not 0.0 < duties.max_network_utilization <= 1.0:
        raise ValueError("max_network_utilization must be in (0, 1] (or None: not judged)")


@dataclass(frozen=True)
class PlanOptions:
    threshold: int = 3  # DRS migration threshold 1 (mandatory only) .. 5 (aggressive)
    max_moves: int | None = None  # cap on balancing moves per plan (temporary hops count); repairs are not capped by it
    max_repair_moves: int | None = None  # cap on repair moves (hard violations, the headroom limit); None: no cap
    cpu_headroom: float = 0.10  # a host may be filled to capacity x (1 - headroom)
    mem_headroom: float = 0.10
    # the planning time the work budget is sized for (on the reference 2-core machine); the wall clock
    # stops the solvers only at CLOCK_SAFETY x this (optimizer.py), and the plan then says so
    time_limit_s: float = 3.0
    work_limit: float = 0.0  # solver deterministic-time budget; 0 = derived from time_limit_s
    default_vmotion_mbps: float = 10_000.0  # vMotion network, megabits per second
    min_gain: float | None = None  # override of the threshold's minimum gain per move
    cost_per_vmotion_second: float = 0.00002  # price of a vMotion second at threshold 3 (scaled with the minimum gain)
    soft_rule_weight: float = 0.05  # penalty of a broken should-rule (per VM), in combined variance units
    seed: int = 0
    planner: str = "cp-sat"  # cp-sat | greedy
    # what balancing aims at: imbalance (DRS's std-dev of host load) or vm-score (then also raise the VM scores
    # of the worst-served VMs, engine/compute/scoremode.py, under the same obligations and prices)
    model: str = "imbalance"
    dpm: DpmOptions | None = None  # None: DPM off (no host power decisions)
    # Hosts entering maintenance: every VM registered on them (powered-off ones too) moves off,
    # nothing else moves, and the plan ends with their enter-maintenance actions (engine/compute/power.py).
    evacuate: tuple[str, ...] = ()
    recent_demand: bool = True  # plan on History.vm_demand when it is given (engine/compute/cluster.py)
    # VMs whose DRS override is manual are recommended moves (marked for an admin) as vSphere does; off for a
    # plan carried out automatically, which never moves them
    manual_vms: bool = False
    # DRS's CPU over-commitment limit (MaxVcpusPerCore): the vCPUs of the powered-on VMs on a host at
    # most this many per physical core (a hard limit, like capacity); None: no limit
    max_vcpus_per_core: float | None = None
    # DRS's VM distribution (TryBalanceVmsPerHost): no host holds more powered-on VMs than the mean over
    # the hosts that are on, plus this share, rounded up (a limit of ours, kept like the headroom); None: off
    vm_distribution: float | None = None
    storage: StorageOptions | None = None  # None: Storage DRS off (no storage moves)
    # Proactive HA's remediation of a degraded host (engine/compute/compat.py, docs/vsphere7.md): quarantine
    # (moderate and severe: no new VMs, VMs moved off when it costs no rule nor capacity), mixed (moderate:
    # quarantine, severe: maintenance, its VMs evacuated) or maintenance (both evacuated); off: health ignored
    health_remediation: str = "mixed"
    # host health set by the admin or by external monitoring, over what the snapshot says: (host, state, reason)
    health_overrides: tuple[tuple[str, str, str], ...] = ()
    # network-aware placement: a host whose busier NIC direction is above this share of its link speed
    # receives no VM (None: not judged); vSphere's own limit is 80 %
    max_network_utilization: float | None = 0.80

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}")
        check_host_duties(self)
        if not 1 <= self.threshold <= 5:
            raise ValueError("threshold must be 1..5")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError("max_moves must be >= 0")
        if self.max_repair_moves is not None and self.max_repair_moves < 0:
            raise ValueError("max_repair_moves must be >= 0")
        if self.max_vcpus_per_core is not None and not self.max_vcpus_per_core > 0:
            raise ValueError("max_vcpus_per_core must be above 0 (or None: no limit)")
        if self.vm_distribution is not None and not self.vm_distribution >= 0:
            raise ValueError("vm_distribution must be >= 0 (or None: off)")
        for name in ("cpu_headroom", "mem_headroom"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")

    @property
    def moves_budget(self) -> MoveBudget:
        """The balancing cap (``max_moves``)."""
        return MoveBudget(self.max_moves)

    @property
    def repair_budget(self) -> MoveBudget:
        """The repair cap (``max_repair_moves``)."""
        return MoveBudget(self.max_repair_moves)


@dataclass(frozen=True)
class DomainMember:
    """One cluster of a balancing domain, as the domain planner sees it."""

    cluster: str
    vcenter: str  # which vCenter holds it (any key: equal keys mean the same vCenter)
    cpu_headroom: float = 0.10  # a host receiving a VM stays within capacity x (1 - headroom)
    mem_headroom: float = 0.10
    space_threshold: float = 0.80  # a datastore receiving a VM's disks stays at or below this used/capacity
    max_vcpus_per_core: float | None = None  # its drs.max_vcpus_per_core: a receiving host stays within it
    vm_distribution: float | None = None  # its drs.vm_distribution: a receiving host stays within the mean + this share
    # its host duties (compute/compat.py's closed_hosts, the same as its own planner's, PlanOptions'): a host
    # degraded in health (the snapshot's, or these overrides: config, HTTP API) or whose NICs are busier than
    # max_network_utilization receives no VM from another cluster either
    health_remediation: str = "mixed"
    health_overrides: tuple[tuple[str, str, str], ...] = ()
    max_network_utilization: float | None = 0.80

    def __post_init__(self) -> None:
        check_host_duties(self)


@dataclass(frozen=True)
class DomainOptions:
    """Moves between the clusters of a balancing domain (engine/domain/)."""

    name: str
    members: tuple[DomainMember, ...]
    high: float = 0.85  # a cluster above this share of its usable capacity (CPU or memory) sheds VMs
    room: float = 0.75  # a cluster receives VMs only while it stays at or below this share
    max_moves: int = 1  # moves per plan, across the whole domain
    default_vmotion_mbps: float = 10_000.0  # when a host gives no vMotion network speed
    vmotion_mbps: float | None = None  # the link between the clusters, when slower than their hosts' (long distance)
    copy_mbps: float = 2_000.0  # disks copied with the VM (shared-nothing vMotion), megabits per second
    held_vms: frozenset[str] = frozenset()  # VMs not to move across now (moved across within the cooldown)
    max_refusals: int = 10  # compatibility refusals kept in the plan, for the report
    # a VM moved across goes into the target's pool of the same name, or the one this maps its pool to
    # (source pool name -> target pool name); the target's root pool when it has no such pool
    pool_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.room < self.high <= 1.0:
            raise ValueError("domain: need 0 < room < high <= 1")
        if self.max_moves < 0:
            raise ValueError("domain: max_moves must be >= 0")
        if len({m.cluster for m in self.members}) != len(self.members):
            raise ValueError("domain: a cluster listed twice")

    def member(self, cluster: str) -> DomainMember:
        return next(m for m in self.members if m.cluster == cluster)
