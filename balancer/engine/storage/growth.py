"""Thin disks' growth from their datastores' trend (History.datastore_growth): pure, no I/O.

A source that knows each thin disk's growth (the simulated cluster) sets ``Disk.growth_gb_per_day``
itself. vCenter reports no such figure: the service keeps each datastore's used space per collection
in its journal and journal/past.py fits the trend of the space its thin disks take (GB a day). This
module shares a datastore's trend out to its thin disks that have no figure of their own, filling
the same field the simulated cluster fills, so the planner judges both alike:

- what the disks with a figure of their own already account for is taken off the trend first;
- the rest goes to the other thin disks on the datastore in proportion to the room each still has to
  grow (size - used): a disk that is full gets none, and the shares are not lost to the cap at the
  provisioned size that the planner applies over the horizon (pool.py).
"""

from __future__ import annotations

from typing import Mapping

from ...snapshot import Snapshot


def with_trends(snapshot: Snapshot, trends: Mapping[str, float]) -> Snapshot:
    """``snapshot`` with each datastore's trend (``trends``: datastore -> GB a day) shared out to its thin
    disks without a ``growth_gb_per_day`` (unchanged when no datastore has a trend above 0)."""
    trends = {ds: g for ds, g in trends.items() if g > 0}
    if not trends:
        return snapshot
    own: dict[str, float] = {}
    room: dict[str, float] = {}
    for vm in snapshot.vms:
        for k in vm.disks:
            if not k.thin or k.datastore not in trends:
                continue
            if k.growth_gb_per_day is not None:
                own[k.datastore] = own.get(k.datastore, 0.0) + k.growth_gb_per_day
            else:
                room[k.datastore] = room.get(k.datastore, 0.0) + max(k.size_gb - k.space_gb, 0.0)
    rate = {ds: max(g - own.get(ds, 0.0), 0.0) / room[ds] for ds, g in trends.items() if room.get(ds, 0.0) > 0}
    if not any(rate.values()):
        return snapshot
    vms = []
    for vm in snapshot.vms:
        if not any(k.thin and k.growth_gb_per_day is None and rate.get(k.datastore) for k in vm.disks):
            vms.append(vm)
            continue
        disks = [k.model_copy(update={"growth_gb_per_day": round(rate[k.datastore] * max(k.size_gb - k.space_gb, 0.0), 6)})
                 if k.thin and k.growth_gb_per_day is None and rate.get(k.datastore) else k for k in vm.disks]
        vms.append(vm.model_copy(update={"disks": disks}))
    out = snapshot.model_copy(update={"vms": vms})
    out._vm_index = None  # (model_copy keeps the index of the VMs it replaced)
    return out
