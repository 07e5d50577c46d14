"""Can a VM run on a host of another cluster? The checks vCenter makes before a cross-cluster vMotion.

Each check returns None when it passes, or one line saying why not, naming the item:

- CPU: the VM keeps the CPU features it was started with: the EVC mode vCenter says it needs
  (``min_evc_mode``), else its cluster's EVC mode, or its host's full feature set when EVC is off
  (taken as the host's highest EVC mode); the target offers its cluster's EVC mode, or its host's highest mode when EVC is off
  there. The move is allowed only between the same CPU vendor and to an equal or newer mode of
  the same family (``intel-broadwell`` -> ``intel-skylake``, never back). What is not known is
  not allowed: a careful admin would rather not move a VM than see vMotion refuse it midway.
- Network: every network the VM's adapters use exists on the target host (by name).
- Host duties (the target cluster's, judged as its own planners judge them: compute/compat.py's
  ``closed_hosts`` with the member's options): a host degraded in health (quarantine, maintenance) or whose
  physical NICs are busier than the network limit receives no VM.
- Size: the target host has at least as many cores as the VM has vCPUs.
- Headroom (the balancer's own rule, not vCenter's): with the VM, the target host's CPU and
  memory load stay within capacity x (1 - the target cluster's headroom).
- Datastores: the VM's disks stay where they are when the target host mounts every one of
  their datastores (the same datastore: the same name within one vCenter, the same URL across
  vCenters); otherwise the disks move too (shared-nothing vMotion) and need a datastore the
  target host mounts with room for all of them (``pick_datastore``).
"""

from __future__ import annotations

from ...snapshot import VM, Datastore, DatastoreState, Host, Snapshot
from ..compute.compat import EVC_MODES, failover_hosts


def _vendor(mode: str | None, host: Host) -> str | None:
    if mode and mode.split("-", 1)[0] in EVC_MODES:
        return mode.split("-", 1)[0]
    return host.cpu_vendor


def cpu_features(snapshot: Snapshot, host: Host) -> tuple[str | None, str | None]:
    """(vendor, EVC mode) a VM on ``host`` of ``snapshot``'s cluster runs with, or may run with there."""
    mode = snapshot.evc_mode or host.max_evc_mode
    return _vendor(mode, host), mode


def check_cpu(source: Snapshot, source_host: Host, target: Snapshot, target_host: Host,
              vm: VM | None = None) -> str | None:
    have_vendor, have = cpu_features(source, source_host)
    if vm is not None and vm.min_evc_mode:  # what the VM itself runs with, when vCenter says
        have = vm.min_evc_mode
        have_vendor = _vendor(have, source_host)
    offer_vendor, offer = cpu_features(target, target_host)
    where = f"host {target_host.name} of {target.cluster}"
    if have is None or offer is None:
        side = source.cluster if have is None else target.cluster
        return f"CPU compatibility not known: cluster {side} reports no EVC mode and its host no highest EVC mode"
    if have_vendor is None or offer_vendor is None or have_vendor != offer_vendor:
        return f"CPU vendor differs: {have_vendor or 'unknown'} ({source.cluster}) vs {offer_vendor or 'unknown'} ({where})"
    if have == offer:
        return None
    modes = EVC_MODES.get(have_vendor, [])
    if have in modes and offer in modes:
        if modes.index(have) <= modes.index(offer):
            return None
        return f"EVC mode {offer} of {where} lacks CPU features of {have} that the VM runs with"
    return f"EVC modes {have} and {offer} ({where}) cannot be compared"


def check_network(vm: VM, target: Snapshot, target_host: Host) -> str | None:
    missing = [n for n in vm.networks if n not in target_host.networks]
    if not missing:
        return None
    if not target_host.networks:
        return f"host {target_host.name} of {target.cluster} reports no networks (VM {vm.name} uses {missing[0]!r})"
    return f"network {missing[0]!r} is missing on host {target_host.name} of {target.cluster}"


def check_duties(target: Snapshot, target_host: Host, closed: dict[str, str]) -> str | None:
    """``closed``: ``closed_hosts`` of the target cluster with its member's options (compute/compat.py)."""
    why = closed.get(target_host.name)
    return f"host {target_host.name} of {target.cluster}: {why}" if why else None


def check_size(vm: VM, target: Snapshot, target_host: Host) -> str | None:
    if target_host.name in failover_hosts(target):
        return f"host {target_host.name} of {target.cluster} is a dedicated HA failover host: it receives no VM"
    if target_host.cpu_threads is not None and vm.vcpus > target_host.cpu_threads:
        return (f"{vm.vcpus} vCPUs, more than the {target_host.cpu_threads} logical CPUs of host {target_host.name} "
                f"of {target.cluster}")
    if target_host.cpu_threads is None and target_host.cpu_cores is not None and vm.vcpus > target_host.cpu_cores:
        return f"{vm.vcpus} vCPUs, more than the {target_host.cpu_cores} cores of host {target_host.name} of {target.cluster}"
    if vm.mem_mb > target_host.mem_capacity_mb:
        return f"{vm.mem_mb:g} MB of memory, more than host {target_host.name} of {target.cluster} has"
    return None


def check_headroom(host: Host, load_after: tuple[float, float], cpu_headroom: float, mem_headroom: float,
                   cluster: str) -> str | None:
    """``load_after``: the host's CPU (MHz) and memory (MB) load with the VM on it."""
    if (load_after[0] > host.cpu_capacity_mhz * (1 - cpu_headroom)
            or load_after[1] > host.mem_capacity_mb * (1 - mem_headroom)):
        return f"host {host.name} of {cluster} would pass its headroom with it"
    return None


def check_tallies(host: Host, vcpus_after: int, vms_after: int, vms_limit: int | None,
                  max_vcpus_per_core: float | None, cluster: str) -> str | None:
    """The target cluster's over-commitment limit (vCPUs of its powered-on VMs per core) and VM distribution
    limit (``vms_limit``, None: off) on ``host`` with the VM added."""
    cores = host.cpu_cores or host.cpu_threads
    if max_vcpus_per_core is not None and cores and vcpus_after > max_vcpus_per_core * cores + 1e-9:
        return (f"host {host.name} of {cluster} would have {vcpus_after} vCPUs, above its over-commitment limit "
                f"of {max_vcpus_per_core * cores:g} (drs.max_vcpus_per_core)")
    if vms_limit is not None and vms_after > vms_limit:
        return f"host {host.name} of {cluster} would hold {vms_after} VMs, above its VM distribution limit of {vms_limit}"
    return None


def same_datastore(a: Datastore, b: Datastore, same_vcenter: bool) -> bool:
    if a.url and b.url:
        return a.url == b.url
    return same_vcenter and a.name == b.name


def disks_reachable(vm: VM, source: Snapshot, target: Snapshot, target_host: Host, same_vcenter: bool) -> bool:
    """Does ``target_host`` mount every datastore the VM's disks are on (so they need not move)?"""
    if not vm.disks:
        return True
    src = {d.name: d for d in source.datastores}
    mounted = [d for d in target.datastores
               if d.state is DatastoreState.NORMAL and (not d.hosts or target_host.name in d.hosts)]
    for disk in vm.disks:
        here = src.get(disk.datastore)
        if here is None or not any(same_datastore(here, d, same_vcenter) for d in mounted):
            return False
    return True


def same_in_target(vm: VM, source: Snapshot, target: Snapshot, target_host: Host) -> Datastore | None:
    """The target's datastore (mounted by ``target_host``) that is the one the VM's first disk is on, by URL."""
    src = {d.name: d for d in source.datastores}
    here = src.get(vm.disks[0].datastore) if vm.disks else None
    if here is None:
        return None
    for d in target.datastores:
        if d.state is DatastoreState.NORMAL and (not d.hosts or target_host.name in d.hosts) \
                and same_datastore(here, d, False):
            return d
    return None


def pick_datastore(space_gb: float, target: Snapshot, target_host: Host, used_gb: dict[str, float],
                   space_threshold: float) -> Datastore | None:
    """The target host's datastore with the most room that stays at or below ``space_threshold``
    with ``space_gb`` more on it (``used_gb``: what each is planned to hold); None when none has room."""
    best, best_after = None, None
    for d in target.datastores:
        if d.state is not DatastoreState.NORMAL or (d.hosts and target_host.name not in d.hosts):
            continue
        after = (used_gb.get(d.name, d.used_gb) + space_gb) / d.capacity_gb
        if after <= space_threshold and (best_after is None or after < best_after):
            best, best_after = d, after
    return best


__all__ = ["EVC_MODES", "check_cpu", "check_duties", "check_headroom", "check_network", "check_size", "cpu_features", "disks_reachable",
           "pick_datastore", "same_datastore", "same_in_target"]
