"""Host duties and compatibility inside a cluster: the hosts a VM may never be sent to, whatever it gains.

Hard obligations (the order of obligations, docs/optimizer.md), in one place for every planner --
balancing, repairs, DPM's and maintenance's evacuations, initial placement:

- a **dedicated HA failover host** (the snapshot's ``ha.policy: failover-hosts``) receives no VM:
  vSphere HA keeps it empty for failover, and DRS does not place VMs on it;
- a VM's **configured memory** is at most the host's memory, and its **vCPUs** at most the host's
  logical CPUs (hardware threads, snapshot version 4's ``cpu_threads``; not judged when a host does
  not report them): vCenter refuses such a move.

A VM already on such a host may stay (no plan makes that worse; an evacuation still moves it off).
``cluster.build_cluster`` narrows the ``allowed`` mask with ``restrict``; ``refusal`` says in
words why one host is refused, for reports and placement.
"""

from __future__ import annotations

import numpy as np

from ...snapshot import Host, Snapshot


def failover_hosts(snapshot: Snapshot) -> set[str]:
    """The cluster's dedicated HA failover hosts (none unless HA admission control names them)."""
    ha = snapshot.ha
    return set(ha.failover_hosts) if ha is not None and ha.policy == "failover-hosts" else set()


def refusal(snapshot: Snapshot, host: Host, mem_mb: float, vcpus: int = 1) -> str | None:
    """Why ``host`` may not receive a VM of ``mem_mb`` configured memory and ``vcpus`` (None: it may)."""
    if host.name in failover_hosts(snapshot):
        return "a dedicated HA failover host: it receives no VM"
    if host.cpu_threads is not None and vcpus > host.cpu_threads:
        return f"{host.cpu_threads} logical CPUs < the VM's {vcpus} vCPUs"
    if mem_mb > host.mem_capacity_mb:
        return f"{host.mem_capacity_mb:.0f} MB of memory < the VM's {mem_mb:.0f} MB"
    return None


def restrict(snapshot: Snapshot, allowed: np.ndarray, mem_mb: np.ndarray, place: np.ndarray) -> np.ndarray:
    """Narrow ``allowed`` ((V, H), in place) by the host duties and compatibility; a VM may stay where it is.

    Only the rows and columns that can be refused are touched (the failover hosts; the VMs larger than
    the smallest host's memory or logical CPUs), so a 30,000-VM, 5,000-host cluster needs no second
    (V, H) array."""
    hosts = snapshot.hosts
    V = len(mem_mb)
    if not V:
        return allowed
    rows = np.arange(V)
    here = allowed[rows, place].copy()
    failover = failover_hosts(snapshot)
    cols = [h for h, host in enumerate(hosts) if host.name in failover]
    if cols:
        allowed[:, cols] = False
    host_mem = np.array([h.mem_capacity_mb for h in hosts], dtype=float)
    big = np.flatnonzero(mem_mb > host_mem.min() + 1e-6)
    if len(big):
        allowed[big] &= mem_mb[big, None] <= host_mem[None, :] + 1e-6
    threads = np.array([h.cpu_threads if h.cpu_threads is not None else np.inf for h in hosts], dtype=float)
    if np.isfinite(threads).any():
        vcpus = np.array([v.vcpus for v in snapshot.vms], dtype=float)
        wide = np.flatnonzero(vcpus > threads.min())
        if len(wide):
            allowed[wide] &= vcpus[wide, None] <= threads[None, :]
    allowed[rows, place] = here
    return allowed


def compatible(snapshot: Snapshot, mem_mb: np.ndarray, place: np.ndarray) -> np.ndarray:
    """(V, H) may each VM (``mem_mb``: configured memory; vCPUs from the snapshot) be sent to each host
    under the host duties and compatibility? (True where it is.)"""
    return restrict(snapshot, np.ones((len(mem_mb), len(snapshot.hosts)), dtype=bool), mem_mb, place)


__all__ = ["compatible", "failover_hosts", "refusal", "restrict"]
