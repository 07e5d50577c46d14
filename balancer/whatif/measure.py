"""What a replay measures, step by step: overload, imbalance, powered-on hosts, energy, migrations.

Pure: hosts' loads and action outcomes in, numbers out (no clock, no I/O). The definitions
(docs/simulator.md, "What-if replay"; docs/evaluation.md):

- ``overload_minutes``: over every step and every powered-on host, the step's minutes when the
  host's CPU demand (the sum of its VMs' CPU demand) is above its CPU capacity; ``hot_minutes``
  likewise above ``HOT`` (90 %) of it, the level of the ``BalancerHostHot`` alert;
- ``imbalance_mean`` / ``imbalance_p95``: the engine's combined measure per step,
  sqrt(cpu_sd² + mem_sd²) of the per-host entitlement / capacity over the hosts that are on
  (balancer/engine/compute/balance.py), averaged / its 95th percentile (linear interpolation) over steps;
- ``host_hours``: powered-on hosts (hosts powering on included) × the step's hours;
- ``energy_kwh``: per powered-on host idle + (peak − idle) × CPU utilisation (capped at 1) watts
  over the step, when every host's power figures are known (a host in standby counts 0 W);
- ``migrations``: successful vMotions; ``migrated_gb``: the configured memory of the VMs they
  moved (GiB, 1,024 MiB each); ``vmotion_data_gb``: the data the pre-copy model predicts they sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..engine.compute.balance import combined
from ..plan.result import ActionResult
from ..plan import Move, Plan, PowerAction
from ..snapshot import Snapshot

STEP_MINUTES = 5.0  # the traces' sample period
HOT = 0.9  # share of CPU capacity above which a host counts as hot


@dataclass(frozen=True)
class HostLoads:
    """How the hosts stood during one step. Arrays over hosts, in the same order."""

    cpu_demand: np.ndarray  # MHz: the sum of the host's VMs' CPU demand
    cpu_capacity: np.ndarray  # MHz
    cpu_load: np.ndarray  # MHz: entitlement (demand raised to reservation), as the engine balances it
    mem_load: np.ndarray  # MB: entitlement
    mem_capacity: np.ndarray  # MB
    on: np.ndarray  # bool: on (counts for the balance measure, may run VMs)
    powered: np.ndarray  # bool: drawing power: on, or powering on
    idle_w: np.ndarray | None = None  # None: some host's power figures are unknown
    peak_w: np.ndarray | None = None


def host_loads(snapshot: Snapshot, powering_on: frozenset[str] | set[str] = frozenset()) -> HostLoads:
    """The hosts' loads a snapshot shows; ``powering_on``: hosts woken that are not on yet."""
    by_host = snapshot.host_totals()
    totals = [by_host[h.name] for h in snapshot.hosts]
    on = np.array([h.is_on for h in snapshot.hosts], dtype=bool)
    powered = on | np.array([h.name in powering_on for h in snapshot.hosts], dtype=bool)
    known = all(h.power_idle_w is not None and h.power_peak_w is not None for h in snapshot.hosts)
    return HostLoads(
        cpu_demand=np.array([t.cpu_demand_mhz for t in totals]),
        cpu_capacity=np.array([h.cpu_capacity_mhz for h in snapshot.hosts]),
        cpu_load=np.array([t.cpu_load_mhz for t in totals]),
        mem_load=np.array([t.mem_load_mb for t in totals]),
        mem_capacity=np.array([h.mem_capacity_mb for h in snapshot.hosts]),
        on=on,
        powered=powered,
        idle_w=np.array([h.power_idle_w for h in snapshot.hosts], dtype=float) if known else None,
        peak_w=np.array([h.power_peak_w for h in snapshot.hosts], dtype=float) if known else None,
    )


def step_imbalance(loads: HostLoads) -> float:
    """The engine's combined imbalance: sqrt(cpu_sd² + mem_sd²) over the hosts that are on."""
    if not loads.on.any():
        return 0.0
    cpu = (loads.cpu_load / loads.cpu_capacity)[loads.on].std()
    mem = (loads.mem_load / loads.mem_capacity)[loads.on].std()
    return combined(float(cpu), float(mem))


@dataclass
class Measure:
    """Accumulates a replay's metrics: call ``step`` once per trace step, ``actions`` per plan carried out."""

    steps: int = 0
    minutes: float = 0.0
    overload_minutes: float = 0.0
    hot_minutes: float = 0.0
    host_hours: float = 0.0
    energy_wh: float | None = 0.0
    imbalances: list[float] = field(default_factory=list)
    hosts_on: list[int] = field(default_factory=list)  # powered-on hosts per step
    migrations: int = 0
    migrated_mb: float = 0.0
    vmotion_data_mb: float = 0.0
    moves_by_reason: dict[str, int] = field(default_factory=dict)
    power_actions: dict[str, int] = field(default_factory=dict)
    failed_actions: int = 0
    skipped_actions: int = 0

    def step(self, loads: HostLoads, minutes: float = STEP_MINUTES) -> None:
        """One step during which the hosts stood as ``loads`` says."""
        powered = loads.powered
        over = powered & (loads.cpu_demand > loads.cpu_capacity)
        self.steps += 1
        self.minutes += minutes
        self.overload_minutes += minutes * int(over.sum())
        self.hot_minutes += minutes * int((powered & (loads.cpu_demand > HOT * loads.cpu_capacity)).sum())
        self.host_hours += minutes / 60.0 * int(powered.sum())
        self.hosts_on.append(int(powered.sum()))
        self.imbalances.append(step_imbalance(loads))
        if self.energy_wh is not None:
            if loads.idle_w is None or loads.peak_w is None:
                self.energy_wh = None  # power unknown: no energy figure for the replay
            else:
                util = np.minimum(loads.cpu_demand / loads.cpu_capacity, 1.0)
                watts = np.where(powered, loads.idle_w + (loads.peak_w - loads.idle_w) * util, 0.0)
                self.energy_wh += float(watts.sum()) * minutes / 60.0

    def actions(self, plan: Plan, results: list[ActionResult]) -> None:
        """The outcomes of carrying out ``plan``."""
        by_step = {a.step: a for a in plan.actions}
        for r in results:
            if r.outcome == "failed":
                self.failed_actions += 1
            elif r.outcome == "skipped":
                self.skipped_actions += 1
            if r.outcome != "success":
                continue
            action = by_step.get(r.step)
            if r.kind == "move":
                self.migrations += 1
                self.moves_by_reason[r.reason] = self.moves_by_reason.get(r.reason, 0) + 1
                if isinstance(action, Move):
                    self.migrated_mb += action.mem_mb
                    if action.vmotion is not None:
                        self.vmotion_data_mb += action.vmotion.data_mb
            elif isinstance(action, PowerAction):
                self.power_actions[action.action] = self.power_actions.get(action.action, 0) + 1

    def summary(self) -> dict:
        """The metrics, rounded for reading (JSON-ready)."""
        imb = np.asarray(self.imbalances, dtype=float)
        hours = self.minutes / 60.0
        return {
            "steps": self.steps,
            "hours": round(hours, 4),
            "overload_minutes": round(self.overload_minutes, 3),
            "hot_minutes": round(self.hot_minutes, 3),
            "migrations": self.migrations,
            "migrated_gb": round(self.migrated_mb / 1024.0, 3),
            "vmotion_data_gb": round(self.vmotion_data_mb / 1024.0, 3),
            "imbalance_mean": round(float(imb.mean()), 5) if len(imb) else 0.0,
            "imbalance_p95": round(float(np.percentile(imb, 95)), 5) if len(imb) else 0.0,
            "host_hours": round(self.host_hours, 4),
            "hosts_on_mean": round(self.host_hours / hours, 3) if hours else 0.0,
            "hosts_on_min": min(self.hosts_on, default=0),
            "energy_kwh": None if self.energy_wh is None else round(self.energy_wh / 1000.0, 3),
            "moves_by_reason": dict(sorted(self.moves_by_reason.items())),
            "power_actions": dict(sorted(self.power_actions.items())),
            "failed_actions": self.failed_actions,
            "skipped_actions": self.skipped_actions,
        }


def ratio(value: float, baseline: float) -> float | None:
    """value / baseline, or None when the baseline is 0 (no ratio to speak of)."""
    return None if baseline == 0 or math.isnan(baseline) else value / baseline


__all__ = ["HOT", "STEP_MINUTES", "HostLoads", "Measure", "host_loads", "ratio", "step_imbalance"]
