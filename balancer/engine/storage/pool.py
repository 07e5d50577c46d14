"""The storage planner's indexed view of a snapshot: numpy arrays over datastores and disks.

Built once per plan, after the compute planner: each VM's hosts are the host it is on and the
host the compute moves leave it on, and a disk may only go to a datastore both mount.

Pools: Storage DRS balances within a datastore cluster (storage pod). A datastore that belongs
to one exchanges disks only with the datastores of the same datastore cluster; the datastores
that belong to none form one pool of their own (the standalone datastores the cluster's hosts
mount), so a cluster without datastore clusters is balanced too. A disk never crosses between a
datastore cluster and another one or the standalone pool by a storage move.

Which hosts mount a datastore: engine/mounts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ...snapshot import DatastoreState, Snapshot
from ..mounts import host_mounts

STANDALONE = ""  # the pool of the datastores in no datastore cluster


@dataclass
class Pool:
    snapshot: Snapshot
    ds_names: list[str]
    cap: np.ndarray  # (D,) capacity, GB
    used: np.ndarray  # (D,) used at the start, GB (capacity - free, after any disks the compute moves carry)
    latency: np.ndarray  # (D,) mean I/O latency, ms; NaN when not measured
    maintenance: np.ndarray  # (D,) bool: the snapshot shows it in maintenance
    leaving: np.ndarray  # (D,) bool: in maintenance or being evacuated: every disk leaves, none arrives
    pod: np.ndarray  # (D,) int: pool index (pod_names)
    pod_names: list[str]  # a datastore cluster's name, or STANDALONE
    mounts: np.ndarray  # (D, H) bool: host mounts datastore
    host_names: list[str]
    vm_names: list[str]
    vm_ok: np.ndarray  # (V, D) bool: every host of the VM during the plan mounts the datastore
    vm_auto: np.ndarray  # (V,) bool: Storage DRS may move the VM's disks on its own (automation default)
    disk_vm: np.ndarray  # (N,) VM index
    disk_names: list[str]
    disk_ds: np.ndarray  # (N,) datastore index at the start
    disk_space: np.ndarray  # (N,) GB the disk takes within the growth horizon (today's space + its growth)
    disk_copy: np.ndarray | None = None  # (N,) GB a Storage vMotion copies now (today's space); None: disk_space
    disk_growth: np.ndarray | None = None  # (N,) a thin disk's expected growth within the horizon, GB
    growth_days: float = 0.0  # the horizon (0: growth not counted)

    @property
    def n_datastores(self) -> int:
        return len(self.ds_names)

    @property
    def n_disks(self) -> int:
        return len(self.disk_names)

    def ds_index(self, name: str) -> int:
        return self._ds_idx[name]

    def __post_init__(self) -> None:
        self._ds_idx = {n: i for i, n in enumerate(self.ds_names)}
        if self.disk_copy is None:
            self.disk_copy = self.disk_space
        if self.disk_growth is None:
            self.disk_growth = np.zeros(len(self.disk_names))

    def growth_on(self, disk_ds: np.ndarray) -> np.ndarray:
        """(D,) the expected growth of the thin disks on each datastore, with the disks on ``disk_ds``."""
        return np.bincount(disk_ds, weights=self.disk_growth, minlength=self.n_datastores) if self.n_disks \
            else np.zeros(self.n_datastores)


def build_pool(snapshot: Snapshot, final_host: Mapping[str, str] | None = None,
               evacuate: Sequence[str] = (), moved_disks: Mapping[tuple[str, str], str] | None = None,
               growth_days: float = 0.0) -> Pool:
    """The pool for ``snapshot``: ``final_host`` VM -> the host the compute moves leave it on;
    ``moved_disks`` (VM, disk) -> datastore for the disks compute moves carry (Move.disks);
    ``evacuate``: datastores being emptied; ``growth_days``: the thin disks' growth counted over this
    horizon (their trend, ``Disk.growth_gb_per_day``, capped at their provisioned size): in each
    datastore's space used and in each disk's space, so a target keeps room for a moved disk's growth."""
    stores = snapshot.datastores
    ds_idx = {d.name: i for i, d in enumerate(stores)}
    hidx = {h.name: i for i, h in enumerate(snapshot.hosts)}
    D = len(stores)
    cap = np.array([d.capacity_gb for d in stores], dtype=float)
    used = np.array([d.used_gb for d in stores], dtype=float)
    latency = np.array([np.nan if d.latency_ms is None else d.latency_ms for d in stores], dtype=float)
    maintenance = np.array([d.state is DatastoreState.MAINTENANCE for d in stores], dtype=bool)
    leaving = maintenance.copy()
    for name in evacuate:
        leaving[ds_idx[name]] = True
    pod_names: list[str] = []
    pod = np.zeros(D, dtype=np.int64)
    for i, d in enumerate(stores):
        key = d.datastore_cluster or STANDALONE
        if key not in pod_names:
            pod_names.append(key)
        pod[i] = pod_names.index(key)
    mounts = host_mounts(snapshot)

    disk_vm, disk_names, disk_ds, disk_space, disk_growth = [], [], [], [], []
    moved_disks = moved_disks or {}
    for v, vm in enumerate(snapshot.vms):
        for k in vm.disks:
            where = ds_idx[k.datastore]
            space = k.space_gb
            carried = moved_disks.get((vm.name, k.name))
            if carried is not None and carried != k.datastore:
                used[where] -= space
                where = ds_idx[carried]
                used[where] += space
            disk_vm.append(v)
            disk_names.append(k.name)
            disk_ds.append(where)
            disk_space.append(space)
            grow = 0.0
            if growth_days > 0 and k.thin and k.growth_gb_per_day:
                grow = max(min(k.growth_gb_per_day * growth_days, k.size_gb - space), 0.0)
            disk_growth.append(grow)
    V = len(snapshot.vms)
    start = np.array([hidx[vm.host] for vm in snapshot.vms], dtype=np.int64)
    final = start.copy()
    for v, vm in enumerate(snapshot.vms):
        if final_host and vm.name in final_host:
            final[v] = hidx[final_host[vm.name]]
    if disk_growth and growth_days > 0:  # each datastore judged with its thin disks' growth
        used += np.bincount(np.array(disk_ds, dtype=np.int64), weights=np.array(disk_growth), minlength=D)
    vm_ok = (mounts[:, start] & mounts[:, final]).T if V else np.zeros((0, D), dtype=bool)
    vm_auto = np.array([vm.automation.moves for vm in snapshot.vms], dtype=bool)
    return Pool(
        snapshot=snapshot,
        ds_names=[d.name for d in stores],
        cap=cap,
        used=used,
        latency=latency,
        maintenance=maintenance,
        leaving=leaving,
        pod=pod,
        pod_names=pod_names,
        mounts=mounts,
        host_names=[h.name for h in snapshot.hosts],
        vm_names=[vm.name for vm in snapshot.vms],
        vm_ok=vm_ok,
        vm_auto=vm_auto,
        disk_vm=np.array(disk_vm, dtype=np.int64),
        disk_names=disk_names,
        disk_ds=np.array(disk_ds, dtype=np.int64),
        disk_space=np.array(disk_space, dtype=float) + np.array(disk_growth, dtype=float),
        disk_copy=np.array(disk_space, dtype=float),
        disk_growth=np.array(disk_growth, dtype=float),
        growth_days=growth_days,
    )
