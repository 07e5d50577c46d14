"""The consolidation literature's yardstick: CloudSim's PlanetLab scenario (Beloglazov & Buyya, CCPE 2012).

Written from the paper's description and the facts listed in issue #36, not from CloudSim's code. One
trace day, 5-minute steps; ``Scenario`` holds the cluster, ``run`` drives a policy over it and measures:

- **hosts**: 800 by default, alternating HP ProLiant ML110 G4 (2 cores x 1,860 MIPS) and G5 (2 x 2,660
  MIPS), 4,096 MB, 1 Gbit/s; power by the SPECpower curves (W at 0, 10 ... 100 % CPU, linear between);
- **VMs**: one per trace row, VM *i* of *N* of type *i* // ceil(N/4): 2,500 MIPS / 870 MB, 2,000 / 1,740,
  1,000 / 1,740, 500 / 613; one core each; requested MIPS = the row's utilisation x the VM's MIPS;
- **start**: CloudSim's initial placement: each VM in turn at its full MIPS, on the host whose power rises
  least from idle (every host reports 0 % until the first step, so the VMs spread out), within the PE's
  MIPS, the host's free MIPS, RAM and bandwidth (``initial_placement``). Hosts left without VMs are off;
- **departures**: CloudSim takes a VM that requests 0 MIPS at a step (a 0 in its trace row) for finished and
  removes it for good (``HostDynamicWorkload.getCompletedVms``): from its first 0 on it runs nowhere, holds
  nothing and is not moved. On 20110303 that is 750 of the 1,052 VMs, 578 of them within the first two
  hours; ``departures=False`` keeps every VM the whole day;
- **a migration** takes RAM / (half the bandwidth) (870 MB: 13.9 s) and the VM gets 90 % of its MIPS meanwhile;
- **energy**: per host and step, the mean of the power at the step's start and end utilisation (the
  placement of the step, the loads of this sample and the next) x 300 s; a host whose utilisation is 0 at
  the start of a step is off (CloudSim's accounting), and so is a host in standby; a host the policy keeps
  on (``on``) with nothing to run draws its idle power;
- **SLATAH**: the share of the active hosts' time during which they were asked for more than their MIPS:
  the whole step when the host's requested MIPS exceed its capacity after the step's migrations, otherwise
  the time its VMs were migrating off it (the migrated VM gets 90 %); **PDM**: MIPS lost to migrations
  (10 % of the VM's requested MIPS for the migration's time) / MIPS requested; SLAV = SLATAH x PDM;
  ESV = energy x SLAV;
- **overload minutes** (the project's own measure): host-minutes with requested MIPS above capacity.

Memory, three ways (``memory``): ``cloudsim`` as CloudSim has it — RAM counts at the initial placement,
VMs then request 0 MB (the cloudlets' RAM utilisation is null) — ; ``configured``: a VM always takes its
configured RAM; ``vsphere``: DRS's view, the active memory plus the idle share (balancer/sources/sim's
model) as demand, the configured size as what a host must hold.

Pure numpy; no clock. The policies are in cloudsim_policies.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..sources.sim.traces import SAMPLE_SECONDS, load_trace

# HP ProLiant ML110 G4 / G5, SPECpower: watts at 0, 10, ..., 100 % CPU
POWER_G4 = (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0)
POWER_G5 = (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0)
HOST_TYPES = ((2, 1860.0, 4096.0, POWER_G4), (2, 2660.0, 4096.0, POWER_G5))  # cores, MIPS per core, MB, power
VM_TYPES = ((2500.0, 870.0), (2000.0, 1740.0), (1000.0, 1740.0), (500.0, 613.0))  # MIPS, MB
BANDWIDTH_MBPS = 1000.0  # host network, Mbit/s
MIGRATION_SHARE = 0.9  # the MIPS a VM gets while it migrates
THRESHOLD = 0.8
VMS_PER_HOST_BW = 10  # a VM's 100 Mbit/s at its start on a host's 1 Gbit/s (after the start VMs request none)
MEMORY_MODES = ("cloudsim", "configured", "vsphere")


def power_w(curve: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Watts at utilisation ``u`` (0..1, clipped) for each host's 11-point curve ``curve`` (H, 11)."""
    u = np.clip(u, 0.0, 1.0) * 10.0
    lo = np.minimum(np.floor(u).astype(int), 9)
    frac = u - lo
    rows = np.arange(curve.shape[0])
    return curve[rows, lo] + (curve[rows, lo + 1] - curve[rows, lo]) * frac


@dataclass
class Scenario:
    """The cluster and its load: hosts, VMs, the requested MIPS of every VM at every step."""

    trace: str
    host_cores: np.ndarray  # (H,)
    pe_mips: np.ndarray  # (H,) MIPS of one core
    host_mips: np.ndarray  # (H,)
    host_ram: np.ndarray  # (H,) MB
    curve: np.ndarray  # (H, 11) W
    host_type: np.ndarray  # (H,) 0 = G4, 1 = G5
    vm_mips: np.ndarray  # (V,)
    vm_ram: np.ndarray  # (V,) MB configured
    util: np.ndarray  # (V, T) 0..1
    memory: str = "cloudsim"
    mem_demand: np.ndarray | None = None  # (V, T) MB: the memory the balancer sees as demand (vsphere mode)
    vm_end: np.ndarray | None = None  # (V,) the step a VM leaves at (its first 0); None: none leaves
    not_started: int = 0  # VMs the initial placement found no host for (initial_placement sets it)

    @property
    def n_hosts(self) -> int:
        return len(self.host_mips)

    @property
    def n_vms(self) -> int:
        return len(self.vm_mips)

    @property
    def steps(self) -> int:
        return self.util.shape[1]

    def alive(self, k: int) -> np.ndarray:
        """(V,) bool: the VMs still in the data centre at step ``k`` (not departed)."""
        if self.vm_end is None:
            return np.ones(self.n_vms, dtype=bool)
        return self.vm_end > min(k, self.steps - 1)

    def requested(self, k: int) -> np.ndarray:
        """(V,) requested MIPS at step ``k`` (the last sample stands for the steps past the trace); 0 once
        a VM has departed."""
        return self.util[:, min(k, self.steps - 1)] * self.vm_mips * self.alive(k)

    def migration_s(self) -> np.ndarray:
        """(V,) seconds a VM's migration takes: RAM / (half the bandwidth)."""
        return self.vm_ram / (BANDWIDTH_MBPS / 2.0 / 8.0)

    def ram_held(self) -> np.ndarray:
        """(V,) MB a VM holds on its host after its start (0 as CloudSim models it)."""
        return np.zeros(self.n_vms) if self.memory == "cloudsim" else self.vm_ram.copy()


def planetlab_cloudsim(trace: str, hosts: int = 800, vms: int | None = None, steps: int | None = None,
                       memory: str = "cloudsim", idle_share: float = 0.25, departures: bool = True,
                       host_types: tuple = HOST_TYPES, vm_types: tuple = VM_TYPES,
                       kinds: np.ndarray | None = None) -> Scenario:
    """The literature's scenario on a trace day: ``hosts`` alternating G4 / G5, one VM per trace row
    (or the first ``vms`` rows), ``steps`` samples (None: the whole day); ``departures``: a VM leaves at
    its first 0, as in CloudSim. A scenario file (scenario_file.py) gives its own ``host_types`` (cores,
    MIPS per core, MB, 11-point power curve), ``kinds`` (each host's type) and ``vm_types`` (MIPS, MB)."""
    if memory not in MEMORY_MODES:
        raise ValueError(f"memory {memory!r}: expected one of {', '.join(MEMORY_MODES)}")
    util = load_trace(trace)
    if vms is not None:
        util = util[:vms]
    if steps is not None:
        util = util[:, :steps]
    n = util.shape[0]
    if kinds is None:
        kinds = np.arange(hosts) % len(host_types)
    cores = np.array([host_types[t][0] for t in kinds], dtype=float)
    pe = np.array([host_types[t][1] for t in kinds], dtype=float)
    per_type = math.ceil(n / len(vm_types))
    vtype = np.minimum(np.arange(n) // per_type, len(vm_types) - 1)
    vm_mips = np.array([vm_types[t][0] for t in vtype], dtype=float)
    vm_ram = np.array([vm_types[t][1] for t in vtype], dtype=float)
    mem_demand = None
    if memory == "vsphere":
        # DRS's memory demand as balancer/sources/sim models a VM without a memory trace (memory_demand):
        # consumed 85 % of the RAM, active a base share (here the middle of its 15-45 %) plus 35 % x CPU,
        # demand = active + idle_share x (consumed - active)
        consumed = 0.85 * vm_ram[:, None]
        active = np.minimum(consumed, vm_ram[:, None] * (0.30 + 0.35 * util))
        mem_demand = active + idle_share * (consumed - active)
    vm_end = None
    if departures:
        # CloudSim's steps fall a fraction of a second after the samples, where the utilisation is
        # interpolated towards the next one: it is 0 only when this sample and the next are both 0
        nxt = np.concatenate([util[:, 1:], util[:, -1:]], axis=1)
        zero = (util <= 0) & (nxt <= 0)
        vm_end = np.where(zero.any(axis=1), zero.argmax(axis=1), util.shape[1])
    return Scenario(trace=trace, host_cores=cores, pe_mips=pe, host_mips=cores * pe,
                    host_ram=np.array([host_types[t][2] for t in kinds], dtype=float),
                    curve=np.array([host_types[t][3] for t in kinds], dtype=float), host_type=kinds,
                    vm_mips=vm_mips, vm_ram=vm_ram, util=util, memory=memory, mem_demand=mem_demand,
                    vm_end=vm_end)


@dataclass
class State:
    """Where the VMs run and which hosts the policy keeps on (None: CloudSim's view, on = has load)."""

    place: np.ndarray  # (V,) host of each VM
    on: np.ndarray | None = None  # (H,) bool, for a policy that powers hosts explicitly
    booting: np.ndarray | None = None  # (H,) bool: powered on this step, not yet usable (draws power)
    migrations: int | None = None  # migrations started this step (None: the VMs whose host changed); a VM
    # moved off an overloaded host and then on again from an emptied one counts twice, as in CloudSim


def pabfd(sc: Scenario, r: np.ndarray, load: np.ndarray, ram_used: np.ndarray, v: int, allowed: np.ndarray,
          ram_v: float, threshold: float = THRESHOLD, empty_ok: bool = True, base: np.ndarray | None = None) -> int:
    """Power-aware best fit for VM ``v`` (requested MIPS ``r[v]``): the allowed host whose power rises least,
    with room for it (one core's MIPS, free MIPS, free RAM) and not above ``threshold`` after it unless the
    host is empty; -1 when there is none. Ties: the first host.

    The rise is the power at ``load`` plus the VM minus the power at ``base`` (default: ``load``). CloudSim
    measures it from the utilisation the host reported when the step began, not from what this step has
    already placed on it: ``base`` is that load, so a host that has taken VMs in this step looks dearer
    for each further one, and at the start (every host reporting 0) each VM goes to an empty host if it can."""
    rv = r[v]
    if base is None:
        base = load
    after = load + rv
    ok = allowed & (sc.pe_mips >= rv - 1e-9) & (sc.host_mips - np.minimum(load, sc.host_mips) >= rv - 1e-9)
    ok &= sc.host_ram - ram_used >= ram_v - 1e-9
    ok &= (after / sc.host_mips <= threshold + 1e-12) | ((load <= 0) if empty_ok else False)
    if not ok.any():
        return -1
    idx = np.flatnonzero(ok)
    diff = power_w(sc.curve[idx], after[idx] / sc.host_mips[idx]) - power_w(sc.curve[idx], base[idx] / sc.host_mips[idx])
    return int(idx[int(np.argmin(diff))])


def initial_placement(sc: Scenario) -> np.ndarray:
    """CloudSim's start: each VM in order, at its full MIPS and RAM, by power-aware best fit — the rise
    measured from idle, as every host reports 0 % before the first step, so the VMs spread out (on the
    literature's 800 hosts and 1,052 VMs every host gets one). The threshold does not bind here: the VMs
    already created request nothing until their cloudlets arrive, so a host is judged on the new VM alone
    (which is always under 0.8 of a host); what binds is a core's MIPS, the MIPS left at the VMs' full
    MIPS, the RAM and the bandwidth (100 Mbit/s a VM on 1 Gbit/s: 10 VMs). A VM that fits on no host is not
    created, as CloudSim's broker leaves a VM whose creation failed: it counts as departed from step 0
    (``sc.vm_end``), is parked on host 0, where it holds and runs nothing, and is counted in
    ``sc.not_started``."""
    load = np.zeros(sc.n_hosts)
    idle = np.zeros(sc.n_hosts)
    ram = np.zeros(sc.n_hosts)
    count = np.zeros(sc.n_hosts)
    place = np.full(sc.n_vms, -1)
    sc.not_started = 0
    for v in range(sc.n_vms):
        allowed = count < VMS_PER_HOST_BW
        h = pabfd(sc, sc.vm_mips, load, ram, v, allowed, sc.vm_ram[v], threshold=np.inf, base=idle)
        if h < 0:
            sc.not_started += 1
            if sc.vm_end is None:
                sc.vm_end = np.full(sc.n_vms, sc.steps)
            sc.vm_end[v] = 0
            place[v] = 0
            continue
        place[v] = h
        load[h] += sc.vm_mips[v]
        ram[h] += sc.vm_ram[v]
        count[h] += 1
    return place


@dataclass
class Metrics:
    energy_j: float = 0.0
    active_s: float = 0.0
    sla_s: float = 0.0
    lost_mips_s: float = 0.0
    requested_mips_s: float = 0.0
    migrations: int = 0
    overload_min: float = 0.0
    host_steps_on: int = 0
    wakes: int = 0
    standbys: int = 0
    hosts_on: list[int] = field(default_factory=list)

    def summary(self) -> dict:
        slatah = self.sla_s / self.active_s if self.active_s else 0.0
        pdm = self.lost_mips_s / self.requested_mips_s if self.requested_mips_s else 0.0
        kwh = self.energy_j / 3.6e6
        return {"energy_kwh": round(kwh, 2), "slatah_pct": round(100 * slatah, 2), "pdm_pct": round(100 * pdm, 4),
                "slav": float(f"{slatah * pdm:.3g}"), "esv": float(f"{kwh * slatah * pdm:.3g}"),
                "migrations": self.migrations, "overload_host_min": round(self.overload_min, 1),
                "host_hours": round(self.host_steps_on * SAMPLE_SECONDS / 3600.0, 1),
                "hosts_on_max": max(self.hosts_on, default=0), "hosts_on_min": min(self.hosts_on, default=0),
                "hosts_on_at_end": self.hosts_on[-1] if self.hosts_on else 0,
                "power_on": self.wakes, "standby": self.standbys}


def measure_step(sc: Scenario, k: int, before: State, after: State, m: Metrics) -> None:
    """Account step ``k``: ``before`` the placement the step's sample found, ``after`` the one the policy left."""
    dt = float(SAMPLE_SECONDS)
    r0, r1 = sc.requested(k), sc.requested(k + 1)
    H = sc.n_hosts
    load0 = np.bincount(after.place, weights=r0, minlength=H)
    load1 = np.bincount(after.place, weights=r1, minlength=H)
    u0, u1 = load0 / sc.host_mips, load1 / sc.host_mips
    moved = np.flatnonzero((after.place != before.place) & sc.alive(k))
    m.migrations += len(moved) if after.migrations is None else after.migrations
    mig_s = sc.migration_s()
    lost = (1.0 - MIGRATION_SHARE) * r0[moved] * mig_s[moved]
    m.lost_mips_s += float(lost.sum())
    m.requested_mips_s += float(r0.sum() * dt)
    if after.on is None:
        active = u0 > 0
        draws = active
    else:
        active = after.on & (u0 > 0)
        draws = after.on | (after.booting if after.booting is not None else False)
    p = 0.5 * (power_w(sc.curve, u0) + power_w(sc.curve, u1))
    m.energy_j += float((p * draws).sum() * dt)
    m.host_steps_on += int(draws.sum())
    m.hosts_on.append(int(draws.sum()))
    m.active_s += float(active.sum() * dt)
    over = load0 > sc.host_mips + 1e-9
    m.overload_min += float(over.sum() * dt / 60.0)
    # migrating off a host: its VM gets 90 % meanwhile (the longest of its outgoing migrations)
    out = np.zeros(H)
    if len(moved):
        np.maximum.at(out, before.place[moved], mig_s[moved])
    before_load = np.bincount(before.place, weights=r0, minlength=H)
    pre_over = before_load > sc.host_mips + 1e-9  # overloaded until its VMs are off
    sla = np.where(over, dt, np.where(pre_over | (out > 0), np.minimum(out, dt), 0.0))
    m.sla_s += float((sla * (active | (out > 0))).sum())
