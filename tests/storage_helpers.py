"""Builders and a step-by-step replay checker for storage plans (tests of engine/storage)."""

from balancer.snapshot import parse_snapshot

EPS = 1e-6


def host(name, cpu=100000, mem=400000, state="on"):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": state}


def disk(name, datastore, size, used=None, thin=False):
    d = {"name": name, "datastore": datastore, "size_gb": float(size), "thin": thin}
    if used is not None:
        d["used_gb"] = float(used)
    return d


def vm(name, h, disks=(), **kw):
    return {"name": name, "host": h, "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 1000.0, "mem_demand_mb": 2000.0,
            "disks": list(disks), **kw}


def datastore(name, capacity=1000.0, hosts=(), other_gb=0.0, **kw):
    """A datastore; its free space is filled in by ``storage_snap`` from the disks on it plus ``other_gb``."""
    return {"name": name, "capacity_gb": float(capacity), "free_gb": float(capacity), "hosts": list(hosts),
            "_other": float(other_gb), **kw}


def storage_snap(hosts, datastores, vms, rules=(), pods=()):
    used = {d["name"]: d.pop("_other", 0.0) for d in datastores}
    for v in vms:
        for k in v["disks"]:
            used[k["datastore"]] += k.get("used_gb", k["size_gb"])
    for d in datastores:
        d["free_gb"] = max(d["capacity_gb"] - used[d["name"]], 0.0)
    doc = {"version": 2, "cluster": "t", "hosts": hosts, "vms": vms, "datastores": datastores, "rules": list(rules)}
    if pods:  # the datastore clusters' own Storage DRS settings (version 6)
        doc.update(version=6, datastore_clusters=list(pods))
    if any("growth_gb_per_day" in k for v in vms for k in v["disks"]):  # thin disks' growth (version 6)
        doc["version"] = 6
    return parse_snapshot(doc)


def replay(snapshot, plan, storage):
    """Carry the plan out step by step on the snapshot's datastores, asserting what every
    intermediate state must hold. Returns (disk -> datastore, datastore -> used GB, VM -> host)."""
    stores = {d.name: d for d in snapshot.datastores}
    used = {d.name: d.used_gb for d in snapshot.datastores}
    where = {(v.name, k.name): k.datastore for v in snapshot.vms for k in v.disks}
    space = {(v.name, k.name): k.space_gb for v in snapshot.vms for k in v.disks}
    host_of = {v.name: v.host for v in snapshot.vms}
    start_host = dict(host_of)
    leaving = {d.name for d in snapshot.datastores if d.state.value == "maintenance"} | set(storage.evacuate if storage else ())

    def mounted(ds, h):
        return not stores[ds].hosts or h in stores[ds].hosts

    # each datastore's space threshold: its datastore cluster's (the plan says it) or the options'
    threshold = {d.name: d.space_threshold if d.space_threshold is not None else storage.space_threshold
                 for d in plan.datastores} if storage else {}
    last_compute = max((m.step for m in plan.moves), default=0)
    for a in plan.actions:
        if hasattr(a, "source") and hasattr(a, "vmotion"):  # a compute move
            host_of[a.vm] = a.target
            for d in a.disks:
                assert where[(a.vm, d.disk)] == d.source
                used[d.source] -= space[(a.vm, d.disk)]
                used[d.target] += space[(a.vm, d.disk)]
                where[(a.vm, d.disk)] = d.target
                assert used[d.target] <= stores[d.target].capacity_gb + EPS
            for (vm_name, k), ds in where.items():
                if vm_name == a.vm:
                    assert mounted(ds, a.target), f"{a.vm} moved to {a.target}, which does not mount {ds}"
        elif hasattr(a, "storage_vmotion"):
            assert a.step > last_compute, "storage moves come after the compute moves"
            for d in a.disks:
                assert where[(a.vm, d.disk)] == d.source, "a disk move's source is where the disk is"
                assert d.target not in leaving, "no disk goes to a datastore in maintenance"
                assert mounted(d.target, host_of[a.vm]) and mounted(d.target, start_host[a.vm]), \
                    "a disk only goes to a datastore every host of its VM mounts"
                assert (stores[d.target].datastore_cluster or "") == (stores[d.source].datastore_cluster or ""), \
                    "a disk stays within its datastore cluster"
                used[d.source] -= space[(a.vm, d.disk)]
                used[d.target] += space[(a.vm, d.disk)]
                where[(a.vm, d.disk)] = d.target
            for d in {x.target for x in a.disks}:
                assert used[d] <= threshold[d] * stores[d].capacity_gb + EPS, \
                    "every intermediate state keeps the target within the space threshold"
    for (vm_name, k), ds in where.items():
        assert mounted(ds, host_of[vm_name]), f"{vm_name}'s disk {k} ends on {ds}, which its host does not mount"
    return where, used, host_of
