"""Policies for the CloudSim PlanetLab scenario (cloudsim.py), and the loop that runs one over a day.

``thr-mmt``: the literature's baseline, from Beloglazov & Buyya (CCPE 2012), written from its
description and the well-known structure of CloudSim's migration policy. Every step, on the requested
MIPS of the step's sample, with each host's utilisation *as it reported it when the step began* standing
for it all step long (CloudSim's hosts refresh it only between steps): that reported figure is what a
power rise is measured from, what marks a host switched off, and what orders the least utilised hosts.
Departed VMs (cloudsim.py) are neither selected nor moved.

1. a host is overloaded when its VMs request more than ``threshold`` (0.8) of its MIPS;
2. from each overloaded host, the VM with the minimum migration time (the least RAM; ties: the first)
   is taken off, again and again, until the host is no longer overloaded (MMT);
3. those VMs, the most requested MIPS first, go by power-aware best fit (PABFD: the host whose power
   rises least from what it reported, with room, not above the threshold after it unless it is empty)
   to any host but the overloaded, a switched-off one included;
4. then the hosts with the least reported utilisation, one after another (not overloaded, not switched
   off, not a target of step 4's migrations — step 3's targets may be chosen, as in CloudSim, whose list
   of them is still empty at that point): all their VMs (with any step 3 put there) are placed by PABFD
   on hosts that are neither switched off, overloaded nor already judged; if every VM finds a host they
   all go and the host is switched off; if not, none go;
5. a switched-off host is one that reported no load (CloudSim's view): it draws nothing;
6. the step's migrations are the placements made: a VM moved in step 3 and again in step 4 counts twice.

``dvfs``: CloudSim's no-migration yardstick: the VMs placed first fit at their full MIPS (the first host
with a core, MIPS, RAM and bandwidth for the VM, as CloudSim's simple power-aware allocation does) and
never moved; a host's power follows its load.

``ram_aware``: the RAM of the VMs counts at every placement (a RAM-aware THR-MMT), not only at the start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol

import numpy as np

from .cloudsim import THRESHOLD, VMS_PER_HOST_BW, Metrics, Scenario, State, initial_placement, measure_step, pabfd


class Policy(Protocol):
    name: str

    def start(self, sc: Scenario, place: np.ndarray) -> State: ...

    def step(self, sc: Scenario, k: int, state: State) -> State: ...


@dataclass
class ThrMmt:
    threshold: float = THRESHOLD
    ram_aware: bool = False
    name: str = "thr-mmt"

    def start(self, sc: Scenario, place: np.ndarray) -> State:
        return State(place=place.copy())

    def step(self, sc: Scenario, k: int, state: State) -> State:
        r = sc.requested(k)
        H = sc.n_hosts
        place = state.place.copy()
        alive = sc.alive(k)
        ram_v = (sc.vm_ram if (self.ram_aware or sc.memory != "cloudsim") else np.zeros(sc.n_vms)) * alive
        load = np.bincount(place, weights=r, minlength=H)
        ram = np.bincount(place, weights=ram_v, minlength=H)
        # what each host reported when the step began (its allocated MIPS): CloudSim judges power rises,
        # switched-off hosts and the least utilised host on it all step long, whatever the step has moved
        reported = np.minimum(load, sc.host_mips)
        over = load / sc.host_mips > self.threshold + 1e-12
        off = reported <= 0
        migrations = 0
        # 2. MMT off each overloaded host
        to_move: list[int] = []
        for h in np.flatnonzero(over):
            vms = np.flatnonzero((place == h) & alive)
            order = vms[np.lexsort((vms, sc.vm_ram[vms]))]
            for v in order:
                if load[h] / sc.host_mips[h] <= self.threshold + 1e-12:
                    break
                load[h] -= r[v]
                ram[h] -= ram_v[v]
                place[v] = -1
                to_move.append(int(v))
        # 3. PABFD, the most requested first, on any host but the overloaded (a switched-off one too)
        allowed = ~over
        for v in sorted(to_move, key=lambda v: (-r[v], v)):
            h = pabfd(sc, r, load, ram, v, allowed, ram_v[v], self.threshold, base=reported)
            if h < 0:
                h = state.place[v]  # no host: it stays
            else:
                migrations += 1
            place[v] = h
            load[h] += r[v]
            ram[h] += ram_v[v]
        # 4. the least utilised hosts (as reported), one after another; the targets of step 3 are not
        # excluded (CloudSim collects them from a list that is still empty), those of step 4 are
        judged = over | off
        placing = ~(over | off)
        while True:
            u = np.where(judged | (reported >= sc.host_mips), np.inf, reported / sc.host_mips)
            h = int(np.argmin(u))
            if not np.isfinite(u[h]):
                break
            judged[h] = True
            placing[h] = False
            vms = np.flatnonzero((place == h) & alive)
            if not len(vms):
                continue
            trial_load, trial_ram, dest = load.copy(), ram.copy(), {}
            for v in sorted(vms.tolist(), key=lambda v: (-r[v], v)):
                t = pabfd(sc, r, trial_load, trial_ram, v, placing, ram_v[v], self.threshold, base=reported)
                if t < 0:
                    dest = None
                    break
                dest[v] = t
                trial_load[t] += r[v]
                trial_ram[t] += ram_v[v]
            if dest is None:
                continue
            for v, t in dest.items():
                place[v] = t
                judged[t] = True  # a target is not emptied in the same step
            migrations += len(dest)
            trial_load[h] = 0.0
            trial_ram[h] = 0.0
            load, ram = trial_load, trial_ram
        return State(place=place, migrations=migrations)


@dataclass
class Dvfs:
    name: str = "dvfs"

    def start(self, sc: Scenario, place: np.ndarray) -> State:
        load, ram, count = np.zeros(sc.n_hosts), np.zeros(sc.n_hosts), np.zeros(sc.n_hosts)
        first = place.copy()
        for v in range(sc.n_vms):
            ok = ((sc.pe_mips >= sc.vm_mips[v]) & (sc.host_mips - load >= sc.vm_mips[v])
                  & (sc.host_ram - ram >= sc.vm_ram[v]) & (count < VMS_PER_HOST_BW))
            if ok.any():
                h = int(np.flatnonzero(ok)[0])
                first[v] = h
                load[h] += sc.vm_mips[v]
                ram[h] += sc.vm_ram[v]
                count[h] += 1
        return State(place=first)

    def step(self, sc: Scenario, k: int, state: State) -> State:
        return State(place=state.place, migrations=0)


def run(sc: Scenario, policy: Policy, on_step: Callable[[int, int], None] | None = None) -> dict:
    """Drive ``policy`` over the scenario's day from CloudSim's initial placement; the metrics. As in
    CloudSim (no reallocation at the instant the cloudlets are submitted), the first 5 minutes run on the
    initial placement and the policy first acts at step 1."""
    m = Metrics()
    state = policy.start(sc, initial_placement(sc))
    for k in range(sc.steps):
        # CloudSim's first decision comes one interval after the start: step 0 runs as placed
        after = policy.step(sc, k, state) if k > 0 else replace(state, migrations=0)
        measure_step(sc, k, state, after, m)
        m.wakes += int((after.on & ~state.on).sum()) if after.on is not None and state.on is not None else 0
        m.standbys += int((state.on & ~after.on).sum()) if after.on is not None and state.on is not None else 0
        state = after
        if on_step is not None:
            on_step(k + 1, sc.steps)
    return m.summary()


POLICY_NAMES = ("thr-mmt", "thr-mmt-ram", "balancer", "dvfs")


def make_policy(name: str, **kw) -> Policy:
    if name == "thr-mmt":
        return ThrMmt()
    if name == "thr-mmt-ram":
        return ThrMmt(ram_aware=True, name="thr-mmt-ram")
    if name == "dvfs":
        return Dvfs()
    if name == "balancer":
        from .cloudsim_balancer import BalancerPolicy
        return BalancerPolicy(**kw)
    raise ValueError(f"policy {name!r}: expected one of {', '.join(POLICY_NAMES)}")


def run_scenario(trace: str | None, policy: str = "balancer", hosts: int | None = 800, vms: int | None = None,
                 steps: int | None = None, memory: str = "cloudsim", config=None,
                 on_step: Callable[[int, int], None] | None = None, scenario_file: str | None = None) -> dict:
    """`balancer simulate --scenario planetlab-cloudsim` (or ``scenario_file``, a YAML file: scenario_file.py):
    the scenario on ``trace``, driven by ``policy``."""
    import time

    from ..errors import InputError
    from .cloudsim import planetlab_cloudsim

    if policy not in POLICY_NAMES:
        raise InputError(f"--policy {policy}: the planetlab-cloudsim scenario's policies are {', '.join(POLICY_NAMES)}")
    t0 = time.perf_counter()
    extra: dict = {}
    name = "planetlab-cloudsim"
    if scenario_file is not None:
        from .scenario_file import load_scenario_file

        spec = load_scenario_file(scenario_file)
        if hosts is not None:
            raise InputError(f"--hosts: the scenario file {scenario_file} gives its hosts (their counts)")
        trace = trace or spec.trace
        extra = {"host_types": spec.host_types(), "vm_types": spec.vm_types_tuple(), "kinds": spec.host_kinds()}
        hosts, name = len(extra["kinds"]), str(scenario_file)
    if not trace:
        raise InputError("--trace: give a trace day or file (the scenario file names none)")
    try:
        sc = planetlab_cloudsim(trace, hosts=hosts or 800, vms=vms, steps=steps, memory=memory, **extra)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    pol = make_policy(policy, config=config) if policy == "balancer" else make_policy(policy)
    try:
        metrics = run(sc, pol, on_step)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return {"scenario": name, "trace": trace, "policy": policy, "memory": memory, "hosts": sc.n_hosts,
            "vms": sc.n_vms, "vms_not_started": sc.not_started, "steps": sc.steps, **metrics, "wall_seconds": round(time.perf_counter() - t0, 1)}
