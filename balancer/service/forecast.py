"""Predictive balancing (``drs.predictive: on``): each VM's demand over the next hour, forecast from its
own daily profile, so the balancer makes room before a known daily peak rather than after it.

The model, kept simple so a forecast can be explained in one sentence:

- **Daily profile**: for each VM, its mean demand (CPU MHz, memory MB) in each 15-minute slot of
  the day on the cluster's clock, learnt from every sample it has had in that slot, the recent
  days weighing more (an exponential mean: each new sample moves the slot's mean by at least
  ``WEIGHT`` of the difference, so after a week the oldest days barely count).
- **Forecast**: the VM's recent demand plus the rise its profile expects — how much higher its
  profile's highest slot in the coming hour is than its highest slot over the recent window
  (``drs.demand_window``, the span the recent demand is judged over). A VM whose profile is not
  higher ahead than behind is forecast at its recent demand: prediction changes nothing for it.
- The cycle plans on **max(recent demand, forecast)**, the recent demand being the window's mean
  + 1 standard deviation (``drs.demand_window``): the recent demand plus the expected rise. A VM
  whose profile does not yet cover the slots needed (fewer than ``MIN_SAMPLES`` samples in one of them: less than a day of history) is
  planned on its recent demand alone, as without prediction.

The profile lives in the service's memory (about 2.3 KiB per VM) and is saved next to the journal
(``<journal>.<cluster>.profile.npz``) once an hour of the cluster's clock and when the service
stops, and read back at start, so a restart does not lose days of history. ``add_day`` feeds it a
past day at once (the what-if replay's history).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..snapshot import Snapshot

SLOT_SECONDS = 900.0  # 15-minute slots
SLOTS = int(86400 / SLOT_SECONDS)
HORIZON_SECONDS = 3600.0  # forecast the next hour
WEIGHT = 0.1  # least weight of a new sample in its slot's mean (about 3 samples a slot a day: ~3 days' memory)
MIN_SAMPLES = 2  # samples a slot needs before it is trusted


def slot_of(t: float) -> int:
    return int((t % 86400.0) // SLOT_SECONDS)


class DailyProfile:
    """Each VM's daily demand profile and the next hour's forecast (see the module's docstring)."""

    def __init__(self) -> None:
        self._mean: dict[str, np.ndarray] = {}  # VM -> (SLOTS, 2) mean demand per slot
        self._count: dict[str, np.ndarray] = {}  # VM -> (SLOTS,) samples seen per slot

    def __len__(self) -> int:
        return len(self._mean)

    # --- kept next to the journal ---------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the profile atomically (a temporary file, then renamed over ``path``)."""
        names = sorted(self._mean)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, names=np.array(names, dtype=str),
                     mean=np.array([self._mean[n] for n in names]).reshape(len(names), SLOTS, 2),
                     count=np.array([self._count[n] for n in names], dtype=np.int64).reshape(len(names), SLOTS))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "DailyProfile":
        """The profile saved at ``path``; an empty one when there is none or it cannot be read."""
        out = cls()
        try:
            with np.load(path, allow_pickle=False) as data:
                names, mean, count = list(data["names"]), data["mean"], data["count"]
            if mean.shape != (len(names), SLOTS, 2) or count.shape != (len(names), SLOTS):
                return out
        except (OSError, ValueError, KeyError):
            return out
        for i, n in enumerate(names):
            out._mean[str(n)] = mean[i].astype(float)
            out._count[str(n)] = count[i].astype(np.int64)
        return out

    def add_sample(self, vm: str, t: float, cpu: float, mem: float) -> None:
        mean = self._mean.get(vm)
        if mean is None:
            mean = self._mean[vm] = np.zeros((SLOTS, 2))
            self._count[vm] = np.zeros(SLOTS, dtype=np.int64)
        s = slot_of(t)
        n = self._count[vm][s] = self._count[vm][s] + 1
        w = max(1.0 / n, WEIGHT)
        mean[s] += w * (np.array((cpu, mem)) - mean[s])

    def add_day(self, vm: str, times: Sequence[float], cpu: Sequence[float], mem: Sequence[float]) -> None:
        for t, c, m in zip(times, cpu, mem):
            self.add_sample(vm, float(t), float(c), float(m))

    def add(self, snapshot: Snapshot, now: float) -> None:
        """Learn from a snapshot's powered-on VMs at ``now`` (cluster clock)."""
        for vm in snapshot.vms:
            if vm.powered_on:
                self.add_sample(vm.name, now, vm.cpu_demand_mhz, vm.mem_demand_mb)

    def rise(self, vm: str, now: float, window: float, horizon: float = HORIZON_SECONDS) -> tuple[float, float] | None:
        """How much higher the VM's profile is within the coming ``horizon`` than over the recent
        ``window`` (the highest slot of each compared, per resource; 0 when it is not higher); None
        when the profile does not yet cover those slots."""
        mean, count = self._mean.get(vm), self._count.get(vm)
        if mean is None:
            return None
        back = max(1, int(round(window / SLOT_SECONDS)))
        past = [slot_of(now - SLOT_SECONDS * k) for k in range(back)]
        ahead = [slot_of(now + SLOT_SECONDS * (k + 1)) for k in range(int(round(horizon / SLOT_SECONDS)))]
        if any(count[s] < MIN_SAMPLES for s in past + ahead):
            return None
        up = np.maximum(mean[ahead].max(axis=0) - mean[past].max(axis=0), 0.0)
        return float(up[0]), float(up[1])

    def forecast(self, snapshot: Snapshot, now: float, recent: Mapping[str, tuple[float, float]],
                 window: float) -> dict[str, tuple[float, float]]:
        """VM -> its forecast demand over the next hour: its recent demand (``recent``, else the
        snapshot's) plus the rise its profile expects, for the VMs whose profile covers it and rises."""
        out: dict[str, tuple[float, float]] = {}
        for vm in snapshot.vms:
            if not vm.powered_on:
                continue
            up = self.rise(vm.name, now, window)
            if up is not None and (up[0] > 0 or up[1] > 0):
                cpu, mem = recent.get(vm.name, (vm.cpu_demand_mhz, vm.mem_demand_mb))
                out[vm.name] = (cpu + up[0], min(mem + up[1], vm.mem_mb))
        return out


def plan_demand(recent: Mapping[str, tuple[float, float]], forecast: Mapping[str, tuple[float, float]],
                snapshot: Snapshot) -> dict[str, tuple[float, float]]:
    """What the plan uses for each VM: max(recent demand, forecast), per resource; the snapshot's
    demand stands in for a recent demand not known yet."""
    out = dict(recent)
    vms = snapshot.vms_by_name()
    for name, (cpu, mem) in forecast.items():
        base = out.get(name)
        if base is None:
            v = vms[name]
            base = (v.cpu_demand_mhz, v.mem_demand_mb)
        out[name] = (max(base[0], cpu), max(base[1], mem))
    return out


__all__ = ["DailyProfile", "HORIZON_SECONDS", "SLOT_SECONDS", "plan_demand"]
