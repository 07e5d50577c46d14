"""Which hosts mount which datastores, and so which hosts can run a VM without moving its disks.

Shared by the compute planner (a VM only goes to a host that mounts every datastore its disks
are on) and the storage planner (a disk only goes to a datastore every host of its VM mounts).
A datastore whose ``hosts`` list is empty is taken as mounted by every host (the source did not
say); a VM always reaches its own datastores from the host it runs on (it runs there).
"""

from __future__ import annotations

import numpy as np

from ..snapshot import Snapshot


def host_mounts(snapshot: Snapshot) -> np.ndarray:
    """(D, H) bool: which hosts mount each datastore."""
    hidx = {h.name: i for i, h in enumerate(snapshot.hosts)}
    out = np.zeros((len(snapshot.datastores), len(snapshot.hosts)), dtype=bool)
    for d, ds in enumerate(snapshot.datastores):
        if not ds.hosts:
            out[d] = True
        for h in ds.hosts:
            out[d, hidx[h]] = True
    return out


def vm_reach(snapshot: Snapshot, mounts: np.ndarray | None = None) -> np.ndarray:
    """(V, H) bool: the hosts that mount every datastore each VM's disks are on (its own host too)."""
    hidx = {h.name: i for i, h in enumerate(snapshot.hosts)}
    didx = {d.name: i for i, d in enumerate(snapshot.datastores)}
    mounts = host_mounts(snapshot) if mounts is None else mounts
    V, H = len(snapshot.vms), len(snapshot.hosts)
    out = np.ones((V, H), dtype=bool)
    disk_vm = [v for v, vm in enumerate(snapshot.vms) for _ in vm.disks]
    if disk_vm:
        disk_ds = [didx[k.datastore] for vm in snapshot.vms for k in vm.disks]
        starts = np.flatnonzero(np.r_[True, np.diff(disk_vm) != 0])  # each VM's first disk (they are contiguous)
        missing = np.logical_or.reduceat(~mounts[disk_ds], starts, axis=0)
        out[np.asarray(disk_vm)[starts]] = ~missing
    out[np.arange(V), [hidx[vm.host] for vm in snapshot.vms]] = True
    return out
