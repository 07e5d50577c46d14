"""The cluster as it will be once hosts change state: hosts leaving service (standby,
maintenance) and standby hosts coming back.

Pure transforms of a Cluster; the arrays are copied, the input is left as it is. A host that
leaves is no longer `on`: it counts for no balance, receives nothing, and the VMs on it must
leave -- the optimiser's mend phase and the ordering step then treat them like any evacuation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping

import numpy as np

from .cluster import Cluster
from .compat import compatible


def host_mask(cluster: Cluster, hosts: Iterable[int]) -> np.ndarray:
    mask = np.zeros(cluster.n_hosts, dtype=bool)
    for h in hosts:
        mask[int(h)] = True
    return mask


def rule_allowed(cluster: Cluster) -> np.ndarray:
    """(V, H) bool: hosts each VM may run on under the mandatory VM-host rules and the host duties and
    compatibility (compat.py), whatever the host states."""
    allowed = compatible(cluster.snapshot, cluster.mem_mb, cluster.place, cluster.closed)
    for g in cluster.rules:
        g.narrow(allowed)
    return allowed


def vms_on(cluster: Cluster, hosts: np.ndarray, every_vm: bool = False) -> np.ndarray:
    """(V,) bool: the VMs registered on ``hosts`` (a host mask); only powered-on ones unless ``every_vm``."""
    on_hosts = hosts[cluster.place] if cluster.n_vms else np.zeros(0, dtype=bool)
    return on_hosts if every_vm else on_hosts & cluster.powered


def with_hosts_leaving(cluster: Cluster, hosts: np.ndarray, every_vm: bool = False) -> Cluster:
    """The cluster with ``hosts`` (mask) out of service and their VMs obliged to leave.

    ``every_vm``: powered-off VMs must leave too, and every VM on them may be moved whatever its
    automation level (maintenance mode). Otherwise (standby) only powered-on VMs leave, and a VM
    that may not be moved keeps its host where it is (the caller does not choose such a host).
    """
    leaving = vms_on(cluster, hosts, every_vm)
    movable = cluster.movable | leaving if every_vm else cluster.movable.copy()
    return replace(
        cluster,
        on=cluster.on & ~hosts,
        powered=cluster.powered | leaving,  # a VM that must leave counts as placed, even powered off (no load)
        must_leave=cluster.must_leave | leaving,
        movable=movable,
        allowed=cluster.allowed & ~hosts[None, :],
    )


def with_hosts_woken(cluster: Cluster, hosts: np.ndarray, left: Mapping[str, frozenset[str]] | None = None) -> Cluster:
    """The cluster with standby ``hosts`` (mask) on again: they count for balance and may receive VMs.

    ``left``: VM -> hosts it left recently (History.left); such a VM is not sent back to a woken host.
    """
    allowed = cluster.allowed.copy()
    cols = np.flatnonzero(hosts)
    if len(cols):
        allowed[:, cols] = rule_allowed(cluster)[:, cols]
        for name, names in (left or {}).items():
            v = cluster._vm_idx.get(name)
            if v is None:
                continue
            for h_name in names:
                h = cluster._host_idx.get(h_name)
                if h is not None and hosts[h]:
                    allowed[v, h] = False
    return replace(cluster, on=cluster.on | hosts, allowed=allowed)


__all__ = ["host_mask", "rule_allowed", "vms_on", "with_hosts_leaving", "with_hosts_woken"]
