"""The balancer as a policy of the CloudSim PlanetLab scenario: the engine's plan every 5 minutes.

Each step the scenario is read as a snapshot (a host's MIPS as its CPU MHz, 4,096 MB; a VM's requested
MIPS as its CPU demand; memory per the scenario's mode: ``cloudsim`` 0 MB of demand, ``configured``
the VM's RAM, ``vsphere`` the active memory plus the idle share), planned with the engine and the
config's drs / dpm settings as the service plans them (DPM automatic, fully automated), with the
service's history kept here on the trace's clock: the DPM windows (mean + 2 sigma over the power-on /
power-off windows), the hold time per host, the standby block until the power-off window is
covered (or the share covered so far, ``dpm.scale_partial_window``), a paced descent under way (the last
power action within the power-off window a standby), each VM's recent demand (mean + 1 sigma over drs.demand_window). The plan's moves and power
actions are carried out at once; a host woken draws power for the step it boots and runs VMs from
the next. Hosts with no VM at CloudSim's start are in standby. VMs that have departed (cloudsim.py) are
left out of the snapshot: they run nowhere and hold nothing.

Not the service's ClusterCycle (no journal, no cooldown / back-and-forth memory): the engine's plan
with the history the service would give it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from ..config import Config
from ..config.plan_options import plan_options
from ..engine import History, make_plan
from ..engine.compute.dpm import window_demand
from ..snapshot import parse_snapshot
from ..sources.sim.traces import SAMPLE_SECONDS
from .cloudsim import Scenario, State


@dataclass
class BalancerPolicy:
    config: Config | None = None
    work_limit: float = 1.2
    time_limit_s: float = 30.0
    name: str = "balancer"
    _hist: deque = field(default_factory=lambda: deque(maxlen=64))
    _vm_hist: deque = field(default_factory=lambda: deque(maxlen=64))
    _changed: dict = field(default_factory=dict)
    _power: list = field(default_factory=list)  # (step, action) of the power actions carried out
    plan_seconds: float = 0.0

    def start(self, sc: Scenario, place: np.ndarray) -> State:
        on = np.zeros(sc.n_hosts, dtype=bool)
        on[np.unique(place[sc.alive(0)])] = True  # a VM not started or gone at once holds no host on
        return State(place=place.copy(), on=on, booting=np.zeros(sc.n_hosts, dtype=bool))

    def _cfg(self) -> Config:
        base = self.config or Config()
        return base.model_copy(update={"dpm": base.dpm.model_copy(update={"automation": "automatic"}),
                                       "drs": base.drs.model_copy(update={"automation": "full"})})

    def step(self, sc: Scenario, k: int, state: State) -> State:
        import time

        cfg = self._cfg()
        r = sc.requested(k)
        mem = self._mem(sc, k) * sc.alive(k)
        alive = np.flatnonzero(sc.alive(k))  # departed VMs have left the data centre: not in the snapshot
        on = state.on | state.booting  # a host booted last step is on now
        hosts = [{"name": f"h{h:03d}", "cpu_capacity_mhz": float(sc.host_mips[h]), "mem_capacity_mb": float(sc.host_ram[h]),
                  "state": "on" if on[h] else "standby",
                  "power_idle_w": float(sc.curve[h, 0]), "power_peak_w": float(sc.curve[h, -1])}
                 for h in range(sc.n_hosts)]
        vms = [{"name": f"v{v:04d}", "host": f"h{state.place[v]:03d}", "vcpus": 1, "mem_mb": float(sc.vm_ram[v]),
                "cpu_demand_mhz": round(float(r[v]), 1), "mem_demand_mb": round(float(mem[v]), 1)}
               for v in alive]
        snap = parse_snapshot({"version": 3, "cluster": "cloudsim", "hosts": hosts, "vms": vms})
        # the service's history on the trace's clock
        total = (float(r.sum()), float(mem.sum()))
        self._hist.append(total)
        self._vm_hist.append((r.copy(), mem.copy()))
        n_on = max(1, int(round(cfg.dpm.power_on_window / SAMPLE_SECONDS)))
        n_off = max(1, int(round(cfg.dpm.power_off_window / SAMPLE_SECONDS)))
        hold = int(round(cfg.dpm.hold_time / SAMPLE_SECONDS))
        n_vm = max(1, int(round(cfg.drs.demand_window / SAMPLE_SECONDS)))
        recent = list(self._vm_hist)[-n_vm:]
        cpu = np.array([x[0] for x in recent])
        mm = np.array([x[1] for x in recent])
        vm_demand = {f"v{v:04d}": (float(cpu[:, v].mean() + cpu[:, v].std()),
                                   float(min(sc.vm_ram[v], mm[:, v].mean() + mm[:, v].std())))
                     for v in alive}
        history = History(
            power_hold=frozenset(f"h{h:03d}" for h, t in self._changed.items() if k - t < hold),
            demand_power_on=window_demand(list(self._hist)[-n_on:]),
            demand_power_off=window_demand(list(self._hist)[-n_off:]),
            standby_blocked=None if len(self._hist) >= n_off else "the power-off window is not yet covered by samples",
            off_window_covered=None if len(self._hist) >= n_off else (len(self._hist) - 1) / n_off,
            dpm_descending=bool(self._power) and self._power[-1][1] == "standby" and k - self._power[-1][0] <= n_off,
            vm_demand=vm_demand)
        options = replace(plan_options(cfg, dpm=True, automatic=True), work_limit=self.work_limit,
                          time_limit_s=self.time_limit_s)
        t0 = time.perf_counter()
        plan = make_plan(snap, options, history)
        self.plan_seconds += time.perf_counter() - t0
        place = state.place.copy()
        idx = {f"v{v:04d}": v for v in range(sc.n_vms)}
        for m in plan.moves:
            place[idx[m.vm]] = int(m.target[1:])
        new_on = on.copy()
        booting = np.zeros(sc.n_hosts, dtype=bool)
        for p in plan.power:
            h = int(p.host[1:])
            self._power.append((k, p.action))
            if p.action == "standby":
                new_on[h] = False
                self._changed[h] = k
            elif p.action == "power-on":
                new_on[h] = True  # the plan's moves onto it come after its power-on
                self._changed[h] = k
        return State(place=place, on=new_on, booting=booting)

    def _mem(self, sc: Scenario, k: int) -> np.ndarray:
        if sc.memory == "cloudsim":
            return np.zeros(sc.n_vms)
        if sc.memory == "configured":
            return sc.vm_ram.copy()
        assert sc.mem_demand is not None
        return sc.mem_demand[:, min(k, sc.steps - 1)]
