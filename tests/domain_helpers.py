"""Small clusters for the balancing-domain tests."""

from __future__ import annotations

from balancer.engine import DomainMember, DomainOptions
from balancer.snapshot import parse_snapshot


def cluster(name: str, hosts: int, vms: list[tuple[float, float]], *, evc: str | None = "intel-skylake",
            host_evc: str = "intel-icelake", vendor: str = "intel", networks: tuple[str, ...] = ("prod",),
            vm_networks: tuple[str, ...] = ("prod",), cores: int = 32, host_cpu: float = 64_000.0,
            host_mem: float = 262_144.0, datastore_gb: float | None = 10_000.0, free_gb: float | None = None,
            disk_gb: float = 40.0, url: str | None = None, prefix: str | None = None, rules: list | None = None,
            standby: int = 0) -> object:
    """A cluster of ``hosts`` equal hosts (the last ``standby`` in standby) and VMs of (CPU MHz, memory MB)
    demand, placed round-robin on the hosts that are on; one shared datastore unless ``datastore_gb`` is None."""
    prefix = f"{name}-" if prefix is None else prefix
    on = hosts - standby
    hs = [{"name": f"{name}-h{i}", "cpu_capacity_mhz": host_cpu, "mem_capacity_mb": host_mem, "cpu_cores": cores,
           "state": "on" if i < on else "standby", "networks": list(networks), "cpu_vendor": vendor,
           "max_evc_mode": host_evc} for i in range(hosts)]
    vs = []
    for j, (cpu, mem) in enumerate(vms):
        vm = {"name": f"{prefix}vm{j}", "host": f"{name}-h{j % on}", "vcpus": 8, "mem_mb": max(mem, 8192.0),
              "cpu_demand_mhz": cpu, "mem_demand_mb": mem, "networks": list(vm_networks)}
        if datastore_gb is not None:
            vm["disks"] = [{"name": "Hard disk 1", "datastore": f"{name}-ds", "size_gb": disk_gb}]
        vs.append(vm)
    doc = {"version": 3, "cluster": name, "collected_at": "2026-12-02T12:00:00+00:00", "hosts": hs, "vms": vs,
           "rules": rules or []}
    if evc:
        doc["evc_mode"] = evc
    if datastore_gb is not None:
        used = disk_gb * len(vms)
        doc["datastores"] = [{"name": f"{name}-ds", "capacity_gb": datastore_gb,
                              "free_gb": datastore_gb - used if free_gb is None else free_gb,
                              "url": url or f"ds:///vmfs/volumes/{name}/"}]
    return parse_snapshot(doc)


def options(*names: str, vcenters: dict[str, str] | None = None, **kw) -> DomainOptions:
    vcenters = vcenters or {}
    return DomainOptions("d", tuple(DomainMember(n, vcenters.get(n, "vc1")) for n in names), **kw)


def busy(n: int, cpu: float = 6_000.0, mem: float = 8_192.0) -> list[tuple[float, float]]:
    return [(cpu, mem)] * n


def with_hosts(snap, **changes: dict) -> object:
    """``snap`` with fields of some hosts changed (host name -> fields), as a snapshot of the current version."""
    doc = snap.to_json_dict()
    doc["hosts"] = [dict(h, **changes.get(h["name"], {})) for h in doc["hosts"]]
    return parse_snapshot(doc)
