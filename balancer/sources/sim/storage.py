"""The embedded simulated cluster's storage: datastores in a datastore cluster, and every VM's disks.

Each VM has a system disk, thin provisioned, and the larger VMs a data disk (thick for db VMs,
thin for big ones). A thin disk's used space grows through the day at its own rate (logs,
databases, updates), so a datastore that starts below Storage DRS's space threshold passes it
later: with the default simulator the fullest datastore is near 74 % at 08:00 and passes 80 %
around 16:00 (latencies stay a few milliseconds). Growth is counted from the trace day's
midnight, so each replayed day grows the same way again. A disk cannot grow beyond its size, nor a datastore beyond its capacity (a full
datastore stops its thin disks growing, as on a real one).

Latency follows the I/O the VMs on a datastore do, which follows their CPU trace: each VM does
``IOPS_PER_VCPU`` per vCPU at full CPU (a fifth of that at idle), shared between its disks by size, and a datastore's
latency is ``BASE_LATENCY_MS / (1 - utilisation)`` of its I/O capacity (a queue), capped.

The datastores are mounted by every host, unless ``sim.partial_mounts`` is set: then the last
one is mounted by the first half of the hosts only (the VMs whose disks are on it start there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...snapshot import Datastore, DatastoreState, Disk

from ...config import SIM_DATASTORE_CLUSTER as DATASTORE_CLUSTER  # noqa: E402
SAMPLES_PER_HOUR = 12
# per VM size: (provisioned GB, thin) of each disk
DISKS = {
    "s": [(40.0, True)],
    "m": [(60.0, True)],
    "l": [(80.0, True), (200.0, False)],
    "xl": [(100.0, True), (500.0, True)],
}
USED_AT_MIDNIGHT = (0.30, 0.50)  # a thin disk's used share of its size at 00:00, uniform in this range
GROWTH_PER_HOUR = (0.0, 0.02)  # a thin disk's growth per hour, as a share of its size
# the datastores' used / capacity at REFERENCE_STEP, from the fullest (the first) down
FILL_AT_REFERENCE = (0.74, 0.62, 0.56, 0.50)
REFERENCE_STEP = 96  # 08:00
IOPS_PER_VCPU = 60.0  # a VM's I/O at full CPU; at idle it does IDLE_IO_SHARE of that
IDLE_IO_SHARE = 0.2
BASE_LATENCY_MS = 2.0
MAX_LATENCY_MS = 200.0
IO_HEADROOM = 1.2  # a datastore's I/O capacity: this many times the I/O its first VMs do at full CPU


@dataclass
class SimDisk:
    name: str
    vm: int  # index into the cluster's VMs
    size_gb: float
    thin: bool
    used0_gb: float  # at 00:00 of the first day
    growth_gb_h: float
    datastore: int  # index into the datastores

    def wants_gb(self, hours: float) -> float:
        """Space the disk would take ``hours`` after the first midnight, were there room."""
        if not self.thin:
            return self.size_gb
        return min(self.size_gb, self.used0_gb + self.growth_gb_h * hours)


@dataclass
class SimDatastore:
    name: str
    capacity_gb: float
    hosts: list[int] | None  # host indexes that mount it; None: every host
    iops_capacity: float
    state: DatastoreState = DatastoreState.NORMAL


@dataclass
class SimStorage:
    datastores: list[SimDatastore] = field(default_factory=list)
    disks: list[SimDisk] = field(default_factory=list)

    def mounted(self, ds: int, host: int) -> bool:
        hosts = self.datastores[ds].hosts
        return hosts is None or host in hosts

    def used(self, hours: float) -> tuple[list[float], np.ndarray]:
        """(space each disk takes, used GB per datastore) ``hours`` after the first midnight."""
        want = np.array([d.wants_gb(hours) for d in self.disks]) if self.disks else np.zeros(0)
        where = np.array([d.datastore for d in self.disks], dtype=int)
        floor = np.array([d.size_gb if not d.thin else min(d.size_gb, d.used0_gb) for d in self.disks]) \
            if self.disks else np.zeros(0)
        n = len(self.datastores)
        used = np.bincount(where, weights=want, minlength=n) if len(want) else np.zeros(n)
        base = np.bincount(where, weights=floor, minlength=n) if len(want) else np.zeros(n)
        cap = np.array([d.capacity_gb for d in self.datastores])
        # a full datastore: its thin disks' growth is scaled down so that it ends exactly full
        scale = np.ones(n)
        over = used > cap
        scale[over] = np.clip((cap[over] - base[over]) / np.maximum(used[over] - base[over], 1e-9), 0.0, 1.0)
        space = floor + (want - floor) * scale[where] if len(want) else want
        used = np.bincount(where, weights=space, minlength=n) if len(want) else np.zeros(n)
        return [float(x) for x in space], np.minimum(used, cap)

    def latency(self, vm_iops: np.ndarray) -> list[float]:
        """Mean I/O latency per datastore (ms) when the VMs do ``vm_iops`` (per VM index)."""
        sizes: dict[int, float] = {}
        for d in self.disks:
            sizes[d.vm] = sizes.get(d.vm, 0.0) + d.size_gb
        load = np.zeros(len(self.datastores))
        for d in self.disks:
            load[d.datastore] += vm_iops[d.vm] * d.size_gb / sizes[d.vm]
        out = []
        for ds, iops in zip(self.datastores, load):
            rho = iops / ds.iops_capacity if ds.iops_capacity > 0 else 0.0
            out.append(round(min(MAX_LATENCY_MS, BASE_LATENCY_MS / max(1e-3, 1.0 - rho)), 2))
        return out

    def snapshot_items(self, hours: float, vm_iops: np.ndarray, host_names: list[str],
                       vm_hosts: list[int], cluster: str = "sim") -> tuple[list[Datastore], dict[int, list[Disk]]]:
        """The datastores and, per VM index, its disks, as the snapshot shows them (``cluster``: whose
        datastores they are, in their URLs: no two simulated clusters share one)."""
        space, used = self.used(hours)
        latency = self.latency(vm_iops)
        provisioned = np.zeros(len(self.datastores))
        disks: dict[int, list[Disk]] = {}
        for d, s in zip(self.disks, space):
            provisioned[d.datastore] += d.size_gb
            disks.setdefault(d.vm, []).append(Disk(
                name=d.name, datastore=self.datastores[d.datastore].name, size_gb=d.size_gb,
                used_gb=round(min(s, d.size_gb), 2), thin=d.thin,
                growth_gb_per_day=round(24 * d.growth_gb_h, 3) if d.thin and s < d.size_gb else None))
        stores = []
        for i, ds in enumerate(self.datastores):
            mounts = host_names if ds.hosts is None else [host_names[h] for h in ds.hosts]
            stores.append(Datastore(
                name=ds.name, capacity_gb=ds.capacity_gb, free_gb=round(max(0.0, ds.capacity_gb - float(used[i])), 2),
                provisioned_gb=round(float(provisioned[i]), 2), latency_ms=latency[i], hosts=list(mounts),
                state=ds.state, datastore_cluster=DATASTORE_CLUSTER, url=f"sim://{cluster}/{ds.name}/"))
        return stores, disks


def build_storage(n_datastores: int, vm_kinds: list[str], vm_vcpus: list[int], vm_hosts: list[int], n_hosts: int,
                  seed: int, partial_mounts: bool = False) -> SimStorage:
    """Datastores and disks for the VMs (``vm_kinds``: the size name of each VM, s / m / l / xl).

    Its own random stream (from ``seed``): the compute side of the simulator is the same with or
    without storage.
    """
    storage = SimStorage()
    if n_datastores <= 0:
        return storage
    rng = np.random.default_rng([seed, 15])
    half = set(range(max(1, n_hosts // 2)))
    limited = n_datastores - 1 if partial_mounts and n_datastores >= 2 and n_hosts >= 2 else None
    weights = np.linspace(2.0, 0.5, n_datastores) if n_datastores > 1 else np.ones(1)
    for j, kind in enumerate(vm_kinds):
        allowed = [i for i in range(n_datastores) if i != limited or vm_hosts[j] in half]
        w = weights[allowed] / weights[allowed].sum()
        ds = int(allowed[int(rng.choice(len(allowed), p=w))])
        for k, (size, thin) in enumerate(DISKS[kind]):
            used0 = size * float(rng.uniform(*USED_AT_MIDNIGHT)) if thin else size
            growth = size * float(rng.uniform(*GROWTH_PER_HOUR)) if thin else 0.0
            storage.disks.append(SimDisk(f"Hard disk {k + 1}", j, size, thin, round(used0, 2), round(growth, 3), ds))
    hours = REFERENCE_STEP / SAMPLES_PER_HOUR
    wanted = np.zeros(n_datastores)
    provisioned = np.zeros(n_datastores)
    iops = np.zeros(n_datastores)
    for d in storage.disks:
        wanted[d.datastore] += d.wants_gb(hours)
        provisioned[d.datastore] += d.size_gb
        iops[d.datastore] += IOPS_PER_VCPU * vm_vcpus[d.vm] / len(DISKS[vm_kinds[d.vm]])
    for i in range(n_datastores):
        fill = FILL_AT_REFERENCE[min(i, len(FILL_AT_REFERENCE) - 1)]
        # a datastore without disks still gets a size: that of a small LUN
        capacity = max(500.0, float(np.ceil(wanted[i] / fill / 100.0) * 100.0))
        storage.datastores.append(SimDatastore(
            name=f"ds-{i + 1:02d}", capacity_gb=capacity, hosts=sorted(half) if i == limited else None,
            iops_capacity=max(1000.0, IO_HEADROOM * float(iops[i]))))
    return storage


__all__ = ["DATASTORE_CLUSTER", "SimDatastore", "SimDisk", "SimStorage", "build_storage"]


def vm_iops(vcpus: int, cpu_util: float, powered_on: bool = True) -> float:
    """The I/O a VM does at CPU utilisation ``cpu_util`` (0..1)."""
    return vcpus * IOPS_PER_VCPU * (IDLE_IO_SHARE + (1 - IDLE_IO_SHARE) * cpu_util) if powered_on else 0.0
