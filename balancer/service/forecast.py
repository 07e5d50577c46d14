"""Predictive balancing (``drs.predictive: on``): each VM's demand over the next hour, forecast from its
own daily profile, so the balancer makes room before a known daily peak rather than after it.

The model, kept simple so a forecast can be explained in one sentence:

- **Daily profile**: for each VM, its mean demand (CPU MHz, memory MB) in each 15-minute slot of
  the day on the cluster's clock, learnt from every sample it has had in that slot, the recent
  days weighing more (an exponential mean: each new sample moves the slot's mean by at least
  ``WEIGHT`` of the difference, so after a week the oldest days barely count).
- **Forecast**: the VM's latest demand plus the rise its profile expects over the next hour —
  the largest profile value in the slots of the coming hour minus the profile's value now. A VM
  whose profile falls over the next hour is forecast at its latest demand.
- The cycle plans on **max(recent demand, forecast)**, the recent demand being the window's mean
  + 1 standard deviation (``drs.demand_window``). A VM whose profile does not yet cover the slots
  needed (fewer than ``MIN_SAMPLES`` samples in one of them: less than a day of history) is
  planned on its recent demand alone, as without prediction.

The profile lives in the service's memory (about 3 KiB per VM) and starts over when the service
restarts; ``add_day`` feeds it a past day at once (the what-if replay's history).
"""

from __future__ import annotations

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

    def rise(self, vm: str, now: float, horizon: float = HORIZON_SECONDS) -> tuple[float, float] | None:
        """How much the VM's profile rises from now to its highest point within ``horizon``; None when
        the profile does not yet cover now and the coming slots."""
        mean, count = self._mean.get(vm), self._count.get(vm)
        if mean is None:
            return None
        here = slot_of(now)
        ahead = [slot_of(now + SLOT_SECONDS * (k + 1)) for k in range(int(round(horizon / SLOT_SECONDS)))]
        if count[here] < MIN_SAMPLES or any(count[s] < MIN_SAMPLES for s in ahead):
            return None
        peak = mean[ahead].max(axis=0)
        up = np.maximum(peak - mean[here], 0.0)
        return float(up[0]), float(up[1])

    def forecast(self, snapshot: Snapshot, now: float) -> dict[str, tuple[float, float]]:
        """VM -> its forecast demand over the next hour (latest demand + the profile's rise), for the VMs
        whose profile covers it and rises."""
        out: dict[str, tuple[float, float]] = {}
        for vm in snapshot.vms:
            if not vm.powered_on:
                continue
            up = self.rise(vm.name, now)
            if up is not None and (up[0] > 0 or up[1] > 0):
                out[vm.name] = (vm.cpu_demand_mhz + up[0], min(vm.mem_demand_mb + up[1], vm.mem_mb))
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
