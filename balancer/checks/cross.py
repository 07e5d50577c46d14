"""Does a planned move between clusters still hold on fresh snapshots of both? (checked before it is made)"""

from __future__ import annotations

from ..engine.compute.compat import closed_hosts
from ..engine.domain import check_cpu, check_duties, check_headroom, check_network, check_size, disks_reachable
from ..engine.options import DomainOptions
from ..plan.domain_plan import CrossMove
from ..snapshot import DatastoreState, Snapshot
from ..plan.result import ALREADY_MADE


def cross_premise(move: CrossMove, source: Snapshot, target: Snapshot, options: DomainOptions) -> str | None:
    """None when ``move`` may go ahead; otherwise why not, in one line."""
    vm = source.vms_by_name().get(move.vm)
    there = target.vms_by_name().get(move.vm)
    if vm is None and there is not None and there.host == move.target:
        return f"VM {move.vm} is on {move.target_cluster}/{move.target} already {ALREADY_MADE}"
    if vm is None:
        return f"VM {move.vm} is no longer in cluster {move.source_cluster}"
    if vm.host != move.source:
        return f"VM {move.vm} is on {vm.host} now, not {move.source}"
    if not vm.powered_on:
        return f"VM {move.vm} is powered off now"
    if move.vm in target.vms_by_name():
        return f"cluster {move.target_cluster} has a VM named {move.vm}"
    host = target.hosts_by_name().get(move.target)
    if host is None:
        return f"host {move.target} is no longer in cluster {move.target_cluster}"
    if not host.is_on:
        return f"host {move.target} of {move.target_cluster} is {host.state.words}"
    member = options.member(move.target_cluster)
    why = check_duties(target, host, closed_hosts(target, member)) \
        or check_cpu(source, source.host(vm.host), target, host, vm) or check_network(vm, target, host) \
        or check_size(vm, target, host)
    if why:
        return why
    totals = target.host_totals()[host.name]
    why = check_headroom(host, (totals.cpu_load_mhz + vm.cpu_load_mhz, totals.mem_load_mb + vm.mem_load_mb),
                         member.cpu_headroom, member.mem_headroom, move.target_cluster)
    if why:
        return f"{why} now"
    same_vcenter = options.member(move.source_cluster).vcenter == member.vcenter
    if move.datastore is None and not disks_reachable(vm, source, target, host, same_vcenter):
        return f"host {host.name} of {move.target_cluster} does not mount every datastore of its disks"
    if move.datastore is not None:
        ds = next((d for d in target.datastores if d.name == move.datastore), None)
        if ds is None:
            return f"datastore {move.datastore} is no longer in cluster {move.target_cluster}"
        if ds.state is not DatastoreState.NORMAL:
            return f"datastore {move.datastore} of {move.target_cluster} is in maintenance"
        if ds.hosts and host.name not in ds.hosts:
            return f"host {host.name} no longer mounts datastore {move.datastore}"
        if move.storage_copy is not None:
            space = sum(d.space_gb for d in vm.disks)
            if (ds.used_gb + space) / ds.capacity_gb > member.space_threshold:
                return (f"datastore {move.datastore} of {move.target_cluster} has no room for its {space:.0f} GB "
                        f"within {member.space_threshold:.0%} now")
    return None


__all__ = ["cross_premise"]
