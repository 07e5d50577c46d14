"""Disks that move with their VM: a host move to a host that does not mount the datastore they are
on (a shared-nothing vMotion: host and datastore in one relocation, ``Move.disks``).

The compute planner keeps a VM on hosts that mount its datastores, except a VM that must leave its
host (in maintenance, being evacuated) when no host in service that it may run on mounts them (a
VM on a host's local datastore, say): that VM may go to any host, and its disks go with it. Here,
for each such move in step order, each unit of the VM's disks on a datastore the target host does
not mount goes to the datastore least utilised after the move that the target host mounts
(one the VM's final host mounts too, when there is one), in service, within the space threshold
and the storage rules. The datastore-cluster boundary does not hold for them: a host's local
datastore is in no datastore cluster the other host mounts. When no datastore takes them, the plan
cannot be carried out: a conflict names the VM, the host and the disks.
"""

from __future__ import annotations

import numpy as np

from ...plan import DiskMove, Move, Plan, VMotionEstimate
from ...snapshot import Snapshot
from ..options import StorageOptions
from .copy import copy_seconds
from .pool import build_pool
from .rules import build_rules
from .settings import settings
from .layout import Layout


def carry_disks(snapshot: Snapshot, plan: Plan, storage: StorageOptions | None) -> tuple[Plan, list[str]]:
    """``plan`` with ``Move.disks`` filled where a move's target host does not mount the VM's
    datastores, and the conflicts (moves whose disks find no datastore)."""
    if not snapshot.datastores or not plan.moves:
        return plan, []
    options = storage or StorageOptions()
    pool = build_pool(snapshot)
    hidx = {n: i for i, n in enumerate(pool.host_names)}
    vidx = {n: i for i, n in enumerate(pool.vm_names)}
    final = {m.vm: m.target for m in plan.moves}
    lay: Layout | None = None
    rules = None
    moves: list[Move] = []
    conflicts: list[str] = []
    for m in plan.moves:
        v = vidx[m.vm]
        t = hidx[m.target]
        mine = np.flatnonzero(pool.disk_vm == v)
        where = (lay.disk_ds if lay is not None else pool.disk_ds)[mine]
        if pool.mounts[where, t].all():
            moves.append(m)
            continue
        if lay is None:
            rules = build_rules(pool, settings(snapshot, options).together)
            lay = Layout(pool, rules, options)
        here = pool.mounts[:, t] & ~pool.leaving
        also = here & pool.mounts[:, hidx[final[m.vm]]]
        carried: list[DiskMove] = []
        for u in sorted({int(rules.unit_of_disk[k]) for k in mine if not pool.mounts[lay.disk_ds[k], t]}):
            target = None
            for mask in (also, here):
                pool.vm_ok[v] = mask
                target, _ = lay.place(u, any_pool=True)
                if target is not None:
                    break
            if target is None:
                conflicts.append(f"moving {m.vm} to {m.target}: no datastore {m.target} mounts has room for "
                                 f"{lay.describe(u)} within {lay.settings.all_words(np.flatnonzero(here))}")
                continue
            step = lay.move(u, target, "follows-host", f"{m.target} does not mount the datastore")
            carried += [DiskMove(disk=pool.disk_names[k], source=pool.ds_names[s], target=pool.ds_names[target],
                                 size_gb=round(float(pool.disk_copy[k]), 3)) for k, s in step.disks]
        if carried:
            gb = sum(d.size_gb for d in carried)
            est = m.vmotion
            if est is not None:  # the disks are copied too
                est = VMotionEstimate(seconds=round(est.seconds + copy_seconds(gb, options.copy_mbps), 2),
                                      downtime_ms=est.downtime_ms, data_mb=round(est.data_mb + gb * 1024, 1),
                                      converges=est.converges)
            detail = (m.detail + "; " if m.detail else "") + f"its disks move with it ({gb:.0f} GB): {m.target} does not mount their datastore"
            m = m.model_copy(update={"disks": carried, "vmotion": est, "detail": detail})
        moves.append(m)
    return plan.model_copy(update={"moves": moves}), conflicts
