"""Host duties and compatibility inside a cluster: the hosts a VM may never be sent to, whatever it gains.

Hard obligations (the order of obligations, docs/optimizer.md), in one place for every planner --
balancing, repairs, DPM's and maintenance's evacuations, initial placement:

- a **dedicated HA failover host** (the snapshot's ``ha.policy: failover-hosts``) receives no VM:
  vSphere HA keeps it empty for failover, and DRS does not place VMs on it;
- a VM's **configured memory** is at most the host's memory, and its **vCPUs** at most the host's
  logical CPUs (hardware threads, snapshot version 4's ``cpu_threads``; not judged when a host does
  not report them): vCenter refuses such a move;
- every **network** the VM's adapters use is on the host (judged when the host lists its networks:
  a standard port group missing on one host of a cluster is a common cause of refused vMotions);
- the host offers the **CPU features** the VM runs with (``min_evc_mode``, what vCenter says it
  needs): the same vendor and an EVC mode at least as new (judged when both are known; with EVC on
  every host of the cluster offers the cluster's mode, so this matters in clusters without EVC).

Two duties are judged with the plan's options (``closed_hosts``), vSphere 7's (docs/vsphere7.md); the
options are a cluster's (``PlanOptions``), or a balancing domain's member's (``DomainMember``, the same three
fields) when another cluster's VM would come in (engine/domain/): one notion for every planner:

- a host whose **health** is degraded (Proactive HA: moderate, severe -- the snapshot's, or the admin's or
  external monitoring's over it, ``PlanOptions.health_overrides``) is quarantined or put into maintenance
  (``health_remediation``): either way it receives no VM;
- a host whose physical NICs are busier than ``max_network_utilization`` of their link speed (network-aware
  DRS, 80 % by default) receives no VM.

A VM already on such a host may stay (no plan makes that worse; an evacuation still moves it off).
``cluster.build_cluster`` narrows the ``allowed`` mask with ``restrict``; ``refusal`` says in
words why one host is refused, for reports and placement.
"""

from __future__ import annotations

import numpy as np

from typing import Collection, Mapping, Protocol

from ...snapshot import VM, Host, Snapshot


class HostDuties(Protocol):
    """What the host duties are judged with: ``PlanOptions`` of a cluster, ``DomainMember`` of a domain."""

    @property
    def health_remediation(self) -> str: ...

    @property
    def health_overrides(self) -> tuple[tuple[str, str, str], ...]: ...

    @property
    def max_network_utilization(self) -> float | None: ...

# EVC modes of each vendor, oldest first (vSphere's EVC mode keys).
EVC_MODES = {
    "intel": ["intel-merom", "intel-penryn", "intel-nehalem", "intel-westmere", "intel-sandybridge",
              "intel-ivybridge", "intel-haswell", "intel-broadwell", "intel-skylake", "intel-cascadelake",
              "intel-icelake", "intel-sapphirerapids", "intel-graniterapids"],
    "amd": ["amd-rev-e", "amd-rev-f", "amd-greyhound-no3dnow", "amd-greyhound", "amd-bulldozer",
            "amd-piledriver", "amd-steamroller", "amd-zen", "amd-zen2", "amd-zen3", "amd-zen4"],
}


def evc_offers(offer: str, need: str) -> bool:
    """Does a host of highest EVC mode ``offer`` have the CPU features of mode ``need``? (Unknown
    modes: only when equal.)"""
    if offer == need:
        return True
    vendor = need.split("-", 1)[0]
    modes = EVC_MODES.get(vendor, [])
    return need in modes and offer in modes and modes.index(need) <= modes.index(offer)


def _cpu_refusal(host: Host, vm: VM) -> str | None:
    if vm.min_evc_mode is None or host.max_evc_mode is None or evc_offers(host.max_evc_mode, vm.min_evc_mode):
        return None
    return f"its CPUs (highest EVC mode {host.max_evc_mode}) lack the VM's {vm.min_evc_mode} features"


def _network_refusal(host: Host, vm: VM) -> str | None:
    if not host.networks:
        return None
    missing = [n for n in vm.networks if n not in host.networks]
    return f"network {missing[0]!r} is missing on it" if missing else None


def failover_hosts(snapshot: Snapshot) -> set[str]:
    """The cluster's dedicated HA failover hosts (none unless HA admission control names them)."""
    ha = snapshot.ha
    return set(ha.failover_hosts) if ha is not None and ha.policy == "failover-hosts" else set()


def host_health(snapshot: Snapshot, options: HostDuties) -> dict[str, tuple[str, str]]:
    """Host -> (health, reason in words) of every host whose health is known: the overrides (the admin's,
    external monitoring's) over the snapshot's (vCenter's health update providers)."""
    out = {h.name: (h.health, f"health provider: {h.health_reason}" if h.health_reason else "health provider")
           for h in snapshot.hosts if h.health is not None}
    names = snapshot.hosts_by_name()
    for name, state, reason in options.health_overrides:
        if name in names:
            out[name] = (state, reason or "set by the admin")
    return out


def remediation(state: str, options: HostDuties) -> str | None:
    """What a host in health ``state`` gets: ``quarantine``, ``maintenance`` or None (healthy, or health ignored)."""
    how = options.health_remediation
    if state == "healthy" or how == "off":
        return None
    if how == "maintenance" or (how == "mixed" and state == "severe"):
        return "maintenance"
    return "quarantine"


def degraded_hosts(snapshot: Snapshot, options: HostDuties) -> dict[str, tuple[str, str, str]]:
    """Host -> (remediation, health, reason) of every host whose health calls for a remediation."""
    out = {}
    for name, (state, reason) in host_health(snapshot, options).items():
        what = remediation(state, options)
        if what is not None:
            out[name] = (what, state, reason)
    return out


def closed_hosts(snapshot: Snapshot, options: HostDuties) -> dict[str, str]:
    """Host -> why it receives no VM under the options' duties: its health's remediation, its network's load."""
    out = {name: f"health {state} ({reason}): {'in quarantine' if what == 'quarantine' else 'to be evacuated'}, "
                 "it receives no VM"
           for name, (what, state, reason) in degraded_hosts(snapshot, options).items()}
    cap = options.max_network_utilization
    if cap is not None:
        for h in snapshot.hosts:
            used = h.net_utilisation
            if h.name not in out and used is not None and used > cap + 1e-9:
                out[h.name] = (f"its physical NICs are {100 * used:.0f} % busy, above the {100 * cap:.0f} % "
                               "network limit (drs.max_network_utilization): it receives no VM")
    return out


def refusal(snapshot: Snapshot, host: Host, mem_mb: float, vcpus: int = 1, vm: VM | None = None,
            closed: Mapping[str, str] | None = None) -> str | None:
    """Why ``host`` may not receive a VM of ``mem_mb`` configured memory and ``vcpus`` (None: it may);
    ``vm``: the VM, when known, for its networks and CPU features; ``closed``: ``closed_hosts`` of the plan."""
    if closed and host.name in closed:
        return closed[host.name]
    if host.name in failover_hosts(snapshot):
        return "a dedicated HA failover host: it receives no VM"
    if host.cpu_threads is not None and vcpus > host.cpu_threads:
        return f"{host.cpu_threads} logical CPUs < the VM's {vcpus} vCPUs"
    if mem_mb > host.mem_capacity_mb:
        return f"{host.mem_capacity_mb:.0f} MB of memory < the VM's {mem_mb:.0f} MB"
    if vm is not None:
        return _network_refusal(host, vm) or _cpu_refusal(host, vm)
    return None


def restrict(snapshot: Snapshot, allowed: np.ndarray, mem_mb: np.ndarray, place: np.ndarray,
             closed: Collection[str] = ()) -> np.ndarray:
    """Narrow ``allowed`` ((V, H), in place) by the host duties and compatibility; a VM may stay where it is.

    Only the rows and columns that can be refused are touched (the failover hosts; the VMs larger than
    the smallest host's memory or logical CPUs), so a 30,000-VM, 5,000-host cluster needs no second
    (V, H) array. ``closed``: hosts that receive no VM for the plan's duties (``closed_hosts``)."""
    hosts = snapshot.hosts
    V = len(mem_mb)
    if not V:
        return allowed
    rows = np.arange(V)
    here = allowed[rows, place].copy()
    failover = failover_hosts(snapshot)
    cols = [h for h, host in enumerate(hosts) if host.name in failover or host.name in closed]
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
    # networks and CPU features: one host mask per distinct need (a cluster has few)
    if any(h.networks for h in hosts):
        masks: dict[tuple[str, ...], np.ndarray] = {}
        for v, vm in enumerate(snapshot.vms):
            if vm.networks:
                key = tuple(sorted(set(vm.networks)))
                if key not in masks:
                    masks[key] = np.array([not h.networks or set(key) <= set(h.networks) for h in hosts], dtype=bool)
                if not masks[key].all():
                    allowed[v] &= masks[key]
    if any(h.max_evc_mode for h in hosts):
        cpu: dict[str, np.ndarray] = {}
        for v, vm in enumerate(snapshot.vms):
            if vm.min_evc_mode:
                need = vm.min_evc_mode
                if need not in cpu:
                    cpu[need] = np.array([h.max_evc_mode is None or evc_offers(h.max_evc_mode, need) for h in hosts],
                                         dtype=bool)
                if not cpu[need].all():
                    allowed[v] &= cpu[need]
    allowed[rows, place] = here
    return allowed


def compatible(snapshot: Snapshot, mem_mb: np.ndarray, place: np.ndarray, closed: Collection[str] = ()) -> np.ndarray:
    """(V, H) may each VM (``mem_mb``: configured memory; vCPUs from the snapshot) be sent to each host
    under the host duties and compatibility? (True where it is.)"""
    return restrict(snapshot, np.ones((len(mem_mb), len(snapshot.hosts)), dtype=bool), mem_mb, place, closed)


__all__ = ["EVC_MODES", "HostDuties", "closed_hosts", "compatible", "degraded_hosts", "evc_offers", "failover_hosts", "host_health",
           "refusal", "remediation", "restrict"]
