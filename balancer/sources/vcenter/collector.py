"""Read one vCenter cluster into a Snapshot.

Per collection, whatever the number of hosts, VMs, datastores and disks:
  3 requests to find the cluster by name (CreateContainerView, RetrievePropertiesEx, DestroyView),
  3 requests to read every host and VM of the cluster (with the VMs' disks), the cluster's rules and
    groups, and the datastores its hosts mount with their datastore clusters (storage pods) and
    those clusters' Storage DRS rules (sdrs.py),
  1 QueryPerf per PERF_BATCH powered-on VMs (one call up to 2,000 VMs; the hosts' datastore
    latency counters go in the first call),
  plus 1 request on the first collection to learn the performance counter ids,
  plus the hosts' health (health.py): 1 QueryProviderList, and 2 requests per health update provider
    (none again once vCenter has said it has no HealthUpdateManager),
  plus ContinueRetrievePropertiesEx pages when vCenter splits a large result.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from ...errors import SourceError
from ...snapshot import (SNAPSHOT_VERSION, VM, Automation, Datastore, DatastoreState, Disk, HaAdmissionControl,
                         Host, HostState, ResourcePool, Shares, Snapshot, VmHostRule, VmVmRule)
from .connection import Connection
from .inventory import (ClusterRefs, duplicate_error, duplicates, find_cluster, moid, objects_spec, props, read_view, retrieve,
                        vc_name)
from .health import HealthReader
from .sdrs import pod_rules, pod_settings

log = logging.getLogger("balancer.vcenter")

PERF_INTERVAL = 20  # real-time samples, seconds
PERF_SAMPLES = 15  # the last 5 minutes; without maxSample the simulator returns nothing
PERF_BATCH = 2000  # VMs per QueryPerf call
IDLE_MEMORY_SHARE = 0.25  # DRS counts active memory + 25 % of idle consumed memory (drs.idle_memory_percent)

# per VM (instance "": the VM as a whole). cpu.ready.summation: ms its vCPUs were ready but not scheduled, summed
# over them, per 20 s sample; mem.*: KB. The last three: how its host serves it (the VM score, docs/vsphere7.md)
COUNTERS = ("cpu.usagemhz.average", "cpu.ready.summation", "mem.active.average", "mem.consumed.average",
            "mem.vmmemctl.average", "mem.swapped.average", "mem.compressed.average")
# per host and datastore (instance: the datastore's id, the last part of its URL), milliseconds
LATENCY_COUNTERS = ("datastore.totalReadLatency.average", "datastore.totalWriteLatency.average")
GB = 1024.0 ** 3

HOST_PATHS = ["name", "summary.hardware", "summary.maxEVCModeKey", "runtime", "network", "datastore",
              "config.wakeOnLanCapable", "config.ipmi", "config.network", "config.virtualNicManagerInfo"]
# per host (instance "": every physical NIC), KBps: network-aware placement (docs/vsphere7.md)
NET_COUNTERS = ("net.received.average", "net.transmitted.average")
VM_PATHS = ["name", "runtime.host", "runtime.powerState", "summary.config", "summary.quickStats",
            "config.hardware.device", "layoutEx.disk", "layoutEx.file", "network", "runtime.minRequiredEVCModeKey",
            "resourcePool", "config.cpuAllocation", "config.memoryAllocation"]
POOL_PATHS = ["name", "parent", "config"]  # a resource pool: its place in the tree, shares, reservations, limits
CLUSTER_PATHS = ["name", "resourcePool", "configurationEx", "datastore", "network", "summary"]
DATASTORE_PATHS = ["name", "summary", "host", "parent"]
POD_PATHS = ["name", "podStorageDrsEntry"]  # a datastore cluster: its name and its Storage DRS rules (sdrs.py)


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def host_state(runtime: Any) -> HostState:
    """runtime.connectionState / powerState / inMaintenanceMode / standbyMode -> HostState."""
    if runtime is None:
        return HostState.DISCONNECTED
    power = str(getattr(runtime, "powerState", "") or "")
    standby = str(getattr(runtime, "standbyMode", "") or "")
    if power == "standBy" or standby in ("entering", "in", "exiting"):
        return HostState.STANDBY
    if str(getattr(runtime, "connectionState", "") or "") != "connected" or power != "poweredOn":
        return HostState.DISCONNECTED
    if getattr(runtime, "inMaintenanceMode", False):
        return HostState.MAINTENANCE
    return HostState.ON


def vm_automation(override: Any) -> Automation:
    """A ClusterDrsVmConfigInfo -> automation, as vSphere names it: enabled false -> disabled; behavior
    manual, partiallyAutomated or fullyAutomated -> the same; none -> default (the cluster's level)."""
    if override is None:
        return Automation.DEFAULT
    if getattr(override, "enabled", None) is False:
        return Automation.DISABLED
    behavior = str(getattr(override, "behavior", "") or "")
    return {"manual": Automation.MANUAL, "partiallyAutomated": Automation.PARTIALLY_AUTOMATED,
            "fullyAutomated": Automation.FULLY_AUTOMATED}.get(behavior, Automation.DEFAULT)


@dataclass
class Storage:
    """What a cluster read finds beside hosts and VMs: (datastore, props), storage pod moid -> name (and
    its Storage DRS entry), network moid -> name (the cluster's networks, which its hosts and VMs refer
    to), and the resource pools (pool, props)."""

    datastores: list[tuple[Any, dict]] = field(default_factory=list)
    pools: list[tuple[Any, dict]] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)
    pod_entries: dict[str, tuple[str, Any]] = field(default_factory=dict)  # moid -> (name, podStorageDrsEntry)
    networks: dict[str, str] = field(default_factory=dict)


class Collector:
    def __init__(self, conn: Connection, cluster_name: str, idle_memory_share: float = IDLE_MEMORY_SHARE):
        self.idle_memory_share = idle_memory_share  # share of idle consumed memory in a VM's demand
        self.conn = conn
        self.cluster_name = cluster_name
        self._counter_ids: dict[str, int] | None = None
        self.host_net: dict[str, dict[str, float]] = {}  # host moid -> {NET_COUNTERS: Mb/s} of the last query_perf
        self.health = HealthReader(conn)  # vCenter's health update providers (Proactive HA)

    # --- inventory ------------------------------------------------------------------------
    def read_cluster(self) -> tuple[Any, dict[str, Any], list[tuple[Any, dict]], list[tuple[Any, dict]], "Storage"]:
        """(cluster, cluster properties, [(host, props)], [(vm, props)], datastores and pods) in 6 requests."""
        from pyVmomi import vim

        content = self.conn.content
        cluster = find_cluster(content, self.cluster_name, self.conn.where)
        objects = read_view(
            content, cluster, [vim.HostSystem, vim.VirtualMachine, vim.ResourcePool],
            {vim.HostSystem: HOST_PATHS, vim.VirtualMachine: VM_PATHS, vim.StoragePod: POD_PATHS,
             vim.ResourcePool: POOL_PATHS},
            extra=[(cluster, vim.ClusterComputeResource, CLUSTER_PATHS)],
            follow=[(vim.ClusterComputeResource, "datastore", vim.Datastore, DATASTORE_PATHS),
                    (vim.ClusterComputeResource, "network", vim.Network, ["name"])],
        )
        cprops: dict[str, Any] = {}
        hosts: list[tuple[Any, dict]] = []
        vms: list[tuple[Any, dict]] = []
        storage = Storage()
        for oc in objects:
            p = props(oc)
            if isinstance(oc.obj, vim.Datastore):
                storage.datastores.append((oc.obj, p))
                continue
            if isinstance(oc.obj, vim.StoragePod):
                storage.pods[moid(oc.obj)] = p.get("name", moid(oc.obj))
                storage.pod_entries[moid(oc.obj)] = (storage.pods[moid(oc.obj)], p.get("podStorageDrsEntry"))
                continue
            if isinstance(oc.obj, vim.Network):
                storage.networks[moid(oc.obj)] = p.get("name", moid(oc.obj))
                continue
            if isinstance(oc.obj, vim.ResourcePool):
                storage.pools.append((oc.obj, p))
                continue
            if isinstance(oc.obj, vim.ClusterComputeResource):
                cprops = p
            elif isinstance(oc.obj, vim.HostSystem):
                hosts.append((oc.obj, p))
            elif isinstance(oc.obj, vim.VirtualMachine):
                vms.append((oc.obj, p))
        if not cprops:
            raise SourceError(f"{self.conn.where}: cluster {self.cluster_name!r} disappeared while it was being read")
        host_ids = {moid(h) for h, _ in hosts}
        # A cluster's VMs: those running on its hosts (runtime.host; HostSystem.vm can be stale), no templates.
        vms = [
            (vm, p) for vm, p in vms
            if p.get("runtime.host") is not None and moid(p["runtime.host"]) in host_ids
            and not getattr(p.get("summary.config"), "template", False)
        ]
        return cluster, cprops, hosts, vms, storage

    def refs(self) -> ClusterRefs:
        """Managed-object references by name, for the executor (same requests as a collection, no perf)."""
        def read() -> ClusterRefs:
            cluster, cprops, hosts, vms, storage = self.read_cluster()
            self._check_unique(hosts, "host")
            refs = ClusterRefs(name=self.cluster_name, cluster=cluster, pool=cprops.get("resourcePool"))
            refs.hosts = {p["name"]: h for h, p in hosts}
            refs.duplicate_vms = duplicates((p.get("name", moid(v)), moid(v)) for v, p in vms)
            refs.vms = {p.get("name", moid(v)): v for v, p in vms}
            refs.datastores = {p.get("name", moid(d)): d for d, p in storage.datastores}
            names = resource_pools(storage.pools, cprops.get("resourcePool"))[1]
            refs.pools = {names[moid(pool)]: pool for pool, _ in storage.pools if moid(pool) in names}
            return refs

        return self.conn.call("reading the cluster inventory", read)

    def _check_unique(self, objs: list[tuple[Any, dict]], kind: str) -> None:
        dups = duplicates((p.get("name", moid(o)), moid(o)) for o, p in objs)
        if dups:
            raise duplicate_error(self.conn.where, self.cluster_name, kind, dups)

    # --- performance ----------------------------------------------------------------------
    def counter_ids(self) -> dict[str, int]:
        """group.name.rollup -> counter id (ids differ between servers); read once."""
        if self._counter_ids is None:
            from pyVmomi import vim

            content = self.conn.content
            pm = content.perfManager
            found = retrieve(content, [objects_spec([(pm, vim.PerformanceManager, ["perfCounter"])])])
            counters = props(found[0]).get("perfCounter", []) if found else []
            ids: dict[str, int] = {}
            for c in counters or []:
                key = f"{c.groupInfo.key}.{c.nameInfo.key}.{c.rollupType}"
                if key in COUNTERS or key in LATENCY_COUNTERS or key in NET_COUNTERS:
                    ids[key] = c.key
            self._counter_ids = ids
        return self._counter_ids

    def query_perf(self, vms: list[Any], hosts: list[Any] = ()) -> tuple[dict[str, dict[str, list[float]]],
                                                                      dict[str, list[float]]]:
        """({vm moid: {counter: [samples]}} for the given VMs, {datastore id: [latency ms samples]} read
        from the given hosts), in ceil(len(vms)/PERF_BATCH) QueryPerf calls (one when there are no VMs
        but hosts): the hosts' datastore counters go in the first call."""
        from pyVmomi import vim

        ids = self.counter_ids()
        vm_ids = {k: v for k, v in ids.items() if k in COUNTERS}
        ds_ids = [v for k, v in ids.items() if k in LATENCY_COUNTERS]
        net_ids = [v for k, v in ids.items() if k in NET_COUNTERS]
        self.host_net = {}
        if not ids or (not vms and not (hosts and (ds_ids or net_ids))):
            return {}, {}
        by_id = {v: k for k, v in ids.items()}
        metric_ids = [vim.PerformanceManager.MetricId(counterId=i, instance="") for i in vm_ids.values()]
        latency_ids = [vim.PerformanceManager.MetricId(counterId=i, instance="*") for i in ds_ids] + \
            [vim.PerformanceManager.MetricId(counterId=i, instance="") for i in net_ids]
        pm = self.conn.content.perfManager
        out: dict[str, dict[str, list[float]]] = {}
        latency: dict[str, list[float]] = {}
        host_ids = {moid(h) for h in hosts}
        for start in range(0, max(len(vms), 1), PERF_BATCH):
            specs = [
                vim.PerformanceManager.QuerySpec(entity=vm, metricId=metric_ids, intervalId=PERF_INTERVAL,
                                                 maxSample=PERF_SAMPLES)
                for vm in vms[start:start + PERF_BATCH]
            ] if metric_ids else []
            if start == 0 and latency_ids:
                specs += [vim.PerformanceManager.QuerySpec(entity=h, metricId=latency_ids, intervalId=PERF_INTERVAL,
                                                           maxSample=PERF_SAMPLES) for h in hosts]
            if not specs:
                continue
            try:
                results = pm.QueryPerf(querySpec=specs) or []
            except vim.fault.NotAuthenticated:
                raise
            except Exception as exc:  # noqa: BLE001 - no metrics: fall back to quickStats
                log.warning("QueryPerf failed (%s); using quickStats for demand", type(exc).__name__)
                continue
            for em in results:
                if moid(em.entity) in host_ids:
                    for s in getattr(em, "value", None) or []:
                        instance = getattr(s.id, "instance", "") or ""
                        counter = by_id.get(s.id.counterId)
                        if not instance and counter in NET_COUNTERS:
                            vals = [float(v) for v in (getattr(s, "value", None) or []) if v is not None and v >= 0]
                            if vals:  # KBps -> Mb/s
                                self.host_net.setdefault(moid(em.entity), {})[counter] = sum(vals) / len(vals) * 8 / 1000
                            continue
                        if not instance or counter not in LATENCY_COUNTERS:
                            continue
                        vals = [float(v) for v in (getattr(s, "value", None) or []) if v is not None and v >= 0]
                        if vals:
                            latency.setdefault(instance, []).append(sum(vals) / len(vals))
                    continue
                series: dict[str, list[float]] = {}
                for s in getattr(em, "value", None) or []:
                    if getattr(s.id, "instance", "") not in ("", None):
                        continue
                    name = by_id.get(s.id.counterId)
                    if name is None:
                        continue
                    vals = [float(v) for v in (getattr(s, "value", None) or []) if v is not None and v >= 0]
                    if vals:
                        series.setdefault(name, []).extend(vals)
                if series:
                    out[moid(em.entity)] = series
        return out, latency

    # --- the snapshot ---------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self.conn.call(f"collecting cluster {self.cluster_name!r}", self._snapshot)

    def _snapshot(self) -> Snapshot:
        collected_at = datetime.now(timezone.utc)
        cluster, cprops, host_objs, vm_objs, storage = self.read_cluster()
        self._check_unique(host_objs, "host")
        self._check_unique(vm_objs, "VM")

        hosts: list[Host] = []
        host_name: dict[str, str] = {}
        core_mhz: dict[str, float] = {}
        for h, p in host_objs:
            hw = p.get("summary.hardware")
            mhz = _finite(getattr(hw, "cpuMhz", None)) or 0.0
            cores = int(getattr(hw, "numCpuCores", 0) or 0)
            threads = int(getattr(hw, "numCpuThreads", 0) or 0)
            mem = (_finite(getattr(hw, "memorySize", None)) or 0.0) / (1024 * 1024)
            state = host_state(p.get("runtime"))
            if mhz <= 0 or cores <= 0 or mem <= 0:
                # Hardware not reported (typically a disconnected host): keep the host, unusable.
                log.warning("host %s reports no hardware summary; treated as disconnected", p.get("name"))
                mhz, cores, mem, state = max(mhz, 1.0), max(cores, 1), max(mem, 1.0), HostState.DISCONNECTED
            evc = evc_key(p.get("summary.maxEVCModeKey"))
            hosts.append(Host(name=p["name"], cpu_capacity_mhz=float(mhz * cores), mem_capacity_mb=float(mem),
                              wake=wake_method(p.get("config.wakeOnLanCapable"), p.get("config.ipmi")),
                              cpu_cores=cores, cpu_threads=threads if threads >= cores else None,
                              state=state, networks=network_names(p.get("network"), storage.networks),
                              cpu_vendor=cpu_vendor(getattr(hw, "cpuModel", None), evc), max_evc_mode=evc))
            host_name[moid(h)] = p["name"]
            core_mhz[moid(h)] = float(mhz)

        config = cprops.get("configurationEx")
        overrides = {moid(o.key): o for o in (getattr(config, "drsVmConfig", None) or []) if getattr(o, "key", None)}
        dpm_hosts = {moid(o.key): o for o in (getattr(config, "dpmHostConfig", None) or []) if getattr(o, "key", None)}
        hosts = [h.model_copy(update={"dpm": host_dpm(dpm_hosts.get(moid(obj)))}) for h, (obj, _) in zip(hosts, host_objs)]
        # health from vCenter's health update providers, where there are any (else unknown: the config's or the
        # HTTP API's value stands)
        health = self.health.read(config, set(host_name))
        hosts = [h.model_copy(update={"health": health[moid(obj)][0], "health_reason": health[moid(obj)][1] or None})
                 if moid(obj) in health else h for h, (obj, _) in zip(hosts, host_objs)]

        powered_on = [vm for vm, p in vm_objs if str(p.get("runtime.powerState")) == "poweredOn"]
        perf, latency = self.query_perf(powered_on, [h for h, p in host_objs if host_state(p.get("runtime")) is HostState.ON])
        hosts = [h.model_copy(update=host_network(p.get("config.network"), p.get("config.virtualNicManagerInfo"),
                                                  self.host_net.get(moid(obj), {})))
                 for h, (obj, p) in zip(hosts, host_objs)]
        # mounts are read from both sides: a datastore's host list and each host's datastore list (a real
        # vCenter fills both; a stock simulator only the hosts' fully)
        host_mounts = {moid(h): {moid(d) for d in (p.get("datastore") or [])} for h, p in host_objs}
        datastores, ds_name = self._datastore_items(storage, host_name, latency, host_mounts)

        pools, pool_names = resource_pools(storage.pools, cprops.get("resourcePool"))
        vms: list[VM] = []
        vm_name: dict[str, str] = {}
        disk_keys: dict[str, dict[int, str]] = {}  # VM moid -> {disk device key: disk name}
        for vm, p in vm_objs:
            mid = moid(vm)
            cfg = p.get("summary.config")
            on = str(p.get("runtime.powerState")) == "poweredOn"
            host_id = moid(p["runtime.host"])
            vcpus = max(1, int(getattr(cfg, "numCpu", 0) or 0))
            mem_mb = float(max(1, int(getattr(cfg, "memorySizeMB", 0) or 0)))
            cpu_d, mem_d = (0.0, 0.0)
            cpu_alloc, mem_alloc = allocation(p.get("config.cpuAllocation")), allocation(p.get("config.memoryAllocation"))
            if on:
                cpu_d, mem_d = demand(perf.get(mid), p.get("summary.quickStats"), core_mhz.get(host_id, 0.0),
                                      self.idle_memory_share)
                cpu_d = min(cpu_d, vcpus * core_mhz.get(host_id, 0.0) or cpu_d)
                mem_d = min(mem_d, mem_mb)
                # a limited VM never gets more than its limit: that is its demand as DRS sees it
                cpu_d = cpu_d if cpu_alloc.limit is None else min(cpu_d, cpu_alloc.limit)
                mem_d = mem_d if mem_alloc.limit is None else min(mem_d, mem_alloc.limit)
            cpu_res = float(max(0, _finite(getattr(cfg, "cpuReservation", 0)) or 0))
            mem_res = min(float(max(0, _finite(getattr(cfg, "memoryReservation", 0)) or 0)), mem_mb)
            vms.append(VM(
                name=p.get("name", mid),
                host=host_name[host_id],
                vcpus=vcpus,
                mem_mb=mem_mb,
                cpu_demand_mhz=float(cpu_d),
                mem_demand_mb=float(mem_d),
                cpu_reservation_mhz=cpu_res,
                mem_reservation_mb=mem_res,
                resource_pool=pool_names.get(moid(p["resourcePool"])) if p.get("resourcePool") is not None else None,
                cpu_shares=cpu_alloc.shares(), mem_shares=mem_alloc.shares(),
                cpu_limit_mhz=None if cpu_alloc.limit is None else max(cpu_alloc.limit, cpu_res),
                mem_limit_mb=None if mem_alloc.limit is None else max(mem_alloc.limit, mem_res),
                powered_on=on,
                automation=vm_automation(overrides.get(mid)),
                disks=vm_disks(p, ds_name, disk_keys.setdefault(mid, {})),
                networks=network_names(p.get("network"), storage.networks),
                min_evc_mode=evc_key(p.get("runtime.minRequiredEVCModeKey")) if on else None,
                **(served(perf.get(mid), vcpus, mem_mb) if on else {}),
            ))
            vm_name[mid] = p.get("name", mid)

        vm_groups, host_groups = groups(config, vm_name, host_name)
        rules = cluster_rules(config, vm_name, vm_groups, host_groups)
        rules += pod_rules(storage.pod_entries, vm_name, disk_keys, {r.name for r in rules})
        ha = ha_admission_control(config, host_name)
        try:
            return Snapshot(
                version=SNAPSHOT_VERSION, cluster=self.cluster_name, collected_at=collected_at, source="vcenter",
                hosts=hosts, vms=vms, vm_groups=vm_groups, host_groups=host_groups, rules=rules,
                ha=ha,
                datastores=datastores,
                evc_mode=evc_key(getattr(cprops.get("summary"), "currentEVCModeKey", None)),
                resource_pools=pools,
                datastore_clusters=pod_settings(storage.pod_entries,
                                                {d.datastore_cluster for d in datastores if d.datastore_cluster}),
                scalable_shares=str(getattr(getattr(config, "drsConfig", None), "scaleDescendantsShares", "") or "")
                == "scaleCpuAndMemoryShares",
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            raise SourceError(f"{self.conn.where}: cluster {self.cluster_name}: cannot build a snapshot: {msg}") from None


    def _datastore_items(self, storage: "Storage", host_name: dict[str, str], latency: dict[str, list[float]],
                         host_mounts: dict[str, set[str]] | None = None) -> tuple[list[Datastore], dict[str, str]]:
        """The datastores the cluster's hosts mount, and datastore moid -> name (for the disks). A host mounts a
        datastore when either side says so (``Datastore.host``, or ``HostSystem.datastore`` in
        ``host_mounts``), unless the datastore's own mount info says it is unmounted or inaccessible there."""
        out: list[Datastore] = []
        names: dict[str, str] = {}
        host_rank = {n: i for i, n in enumerate(host_name.values())}  # mounts in the hosts' order
        self._check_unique(storage.datastores, "datastore")
        for ds, p in storage.datastores:
            summary = p.get("summary")
            name = p.get("name") or getattr(summary, "name", None) or moid(ds)
            names[moid(ds)] = name
            capacity = (_finite(getattr(summary, "capacity", None)) or 0.0) / GB
            if capacity <= 0:
                log.warning("datastore %s reports no capacity; left out", name)
                continue
            free = min(capacity, max(0.0, (_finite(getattr(summary, "freeSpace", None)) or 0.0) / GB))
            uncommitted = max(0.0, (_finite(getattr(summary, "uncommitted", None)) or 0.0) / GB)
            mounts, refused = [], set()
            for m in p.get("host") or []:
                info = getattr(m, "mountInfo", None)
                h = host_name.get(moid(m.key)) if getattr(m, "key", None) is not None else None
                if getattr(info, "mounted", None) is False or getattr(info, "accessible", None) is False:
                    refused.add(h)
                    continue
                if h is not None and h not in mounts:
                    mounts.append(h)
            for h_moid, listed in (host_mounts or {}).items():
                h = host_name.get(h_moid)
                if moid(ds) in listed and h is not None and h not in mounts and h not in refused:
                    mounts.append(h)
            mounts.sort(key=host_rank.__getitem__)
            mode = str(getattr(summary, "maintenanceMode", "") or "normal")
            parent = p.get("parent")
            url = str(getattr(summary, "url", "") or "")
            samples = latency.get(url.rstrip("/").rsplit("/", 1)[-1]) if url else None
            out.append(Datastore(
                name=name, capacity_gb=round(capacity, 3), free_gb=round(free, 3),
                provisioned_gb=round(capacity - free + uncommitted, 3),
                latency_ms=round(max(samples), 2) if samples else None, hosts=mounts,
                state=DatastoreState.NORMAL if mode == "normal" else DatastoreState.MAINTENANCE,
                datastore_cluster=storage.pods.get(moid(parent)) if parent is not None else None,
                url=url or None,
            ))
        return out, names


def host_network(network: Any, vnic_manager: Any, net: dict[str, float]) -> dict[str, Any]:
    """The host's physical NICs' link speed summed (those with a link), the vMotion network's speed (the
    slowest link of the vSwitch behind the vmkernel NIC selected for vMotion; None when not found) and the
    traffic received / sent (Mb/s, ``net``: NET_COUNTERS' means): Host fields of snapshot version 6."""
    out: dict[str, Any] = {}
    speeds: dict[str, float] = {}
    for pnic in getattr(network, "pnic", None) or []:
        speed = _finite(getattr(getattr(pnic, "linkSpeed", None), "speedMb", None))
        key = getattr(pnic, "key", None)
        if speed and speed > 0 and key:
            speeds[key] = speed
    if speeds:
        out["nic_mbps"] = float(sum(speeds.values()))
        rx, tx = net.get("net.received.average"), net.get("net.transmitted.average")
        if rx is not None:
            out["net_rx_mbps"] = float(rx)
        if tx is not None:
            out["net_tx_mbps"] = float(tx)
        vmotion = vmotion_link_mbps(network, vnic_manager, speeds)
        if vmotion is not None:
            out["vmotion_mbps"] = vmotion
    return out


def vmotion_link_mbps(network: Any, vnic_manager: Any, speeds: dict[str, float]) -> float | None:
    """The slowest link speed (Mb/s) of the physical NICs of the standard vSwitch whose port group the
    vMotion vmkernel NIC is on (None: no vMotion NIC selected, or on a distributed switch)."""
    selected: set[str] = set()
    for cfg in getattr(vnic_manager, "netConfig", None) or []:
        if getattr(cfg, "nicType", None) == "vmotion":
            for key in getattr(cfg, "selectedVnic", None) or []:
                selected.add(str(key).rsplit("-", 1)[-1])  # "vmotion.key-vim.host.VirtualNic-vmk1" -> "vmk1"
    if not selected:
        return None
    groups = {getattr(v, "portgroup", None) for v in getattr(network, "vnic", None) or []
              if getattr(v, "device", None) in selected or getattr(v, "key", None) in selected}
    switches = {getattr(getattr(pg, "spec", None), "vswitchName", None) for pg in getattr(network, "portgroup", None) or []
                if getattr(getattr(pg, "spec", None), "name", None) in groups}
    links = [speeds[k] for sw in getattr(network, "vswitch", None) or [] if getattr(sw, "name", None) in switches
             for k in (getattr(sw, "pnic", None) or []) if k in speeds]
    return float(min(links)) if links else None


def wake_method(wake_on_lan: Any, ipmi: Any) -> bool | None:
    """Can DPM wake the host from standby, as vCenter reports it (HostConfigInfo)? True: Wake-on-LAN
    capable or IPMI/iLO configured (a BMC address); False: Wake-on-LAN reported off and no IPMI; None:
    neither reported (DPM judges it as vCenter would when it tries)."""
    if wake_on_lan is True or getattr(ipmi, "bmcIpAddress", None):
        return True
    if wake_on_lan is False:
        return False
    return None


def network_names(refs: Any, names: dict[str, str]) -> list[str]:
    """Network references (a host's or a VM's ``network``) -> their names, each once, in order."""
    out: list[str] = []
    for ref in refs or []:
        name = names.get(moid(ref))
        if name and name not in out:
            out.append(name)
    return out


def evc_key(value: Any) -> str | None:
    """An EVC mode key as the snapshot keeps it (``intel-broadwell``), None when unset or malformed."""
    import re

    key = str(value or "").strip().lower()
    return key if re.fullmatch(r"[a-z][a-z0-9-]{0,63}", key) else None


def cpu_vendor(cpu_model: Any, evc: str | None) -> str | None:
    """``intel`` / ``amd`` from the host's CPU model string (or its EVC mode key's vendor prefix)."""
    model = str(cpu_model or "").lower()
    for vendor in ("intel", "amd"):
        if vendor in model:
            return vendor
    if evc and evc.split("-", 1)[0] in ("intel", "amd"):
        return evc.split("-", 1)[0]
    return None


def vm_disks(p: dict[str, Any], ds_name: dict[str, str], key_names: dict[int, str] | None = None) -> list[Disk]:
    """A VM's virtual disks from config.hardware.device, their used space from layoutEx (when reported);
    ``key_names`` gets each listed disk's device key -> name."""
    from pyVmomi import vim

    sizes = {f.key: _finite(getattr(f, "size", None)) or 0.0 for f in (p.get("layoutEx.file") or [])
             if getattr(f, "key", None) is not None}
    used: dict[int, float] = {}
    for d in p.get("layoutEx.disk") or []:
        keys = [k for unit in (getattr(d, "chain", None) or []) for k in (getattr(unit, "fileKey", None) or [])]
        if keys and all(k in sizes for k in keys) and sum(sizes[k] for k in keys) > 0:  # 0: not reported
            used[d.key] = sum(sizes[k] for k in keys) / GB
    out: list[Disk] = []
    seen: set[str] = set()
    for dev in p.get("config.hardware.device") or []:
        if not isinstance(dev, vim.vm.device.VirtualDisk):
            continue
        backing = getattr(dev, "backing", None)
        ref = getattr(backing, "datastore", None)
        ds = ds_name.get(moid(ref)) if ref is not None else None
        if ds is None:
            continue  # a disk on a datastore the cluster's hosts do not mount (or an RDM without one)
        size = (_finite(getattr(dev, "capacityInBytes", None)) or (_finite(getattr(dev, "capacityInKB", None)) or 0.0) * 1024) / GB
        if size <= 0:
            continue
        label = vc_name(getattr(getattr(dev, "deviceInfo", None), "label", None)) or f"disk {dev.key}"
        name = label if label not in seen else f"{label} ({dev.key})"
        seen.add(name)
        u = used.get(dev.key)
        if key_names is not None:
            key_names[int(dev.key)] = name
        out.append(Disk(name=name, datastore=ds, size_gb=round(size, 6), thin=bool(getattr(backing, "thinProvisioned", False)),
                        used_gb=None if u is None else round(min(u, size), 6)))
    return out


def demand(series: dict[str, list[float]] | None, quick: Any, core_mhz: float,
           idle_share: float = IDLE_MEMORY_SHARE) -> tuple[float, float]:
    """(CPU MHz, memory MB) demand of a powered-on VM: perf samples averaged, quickStats as fallback;
    memory is active memory plus ``idle_share`` of the idle consumed memory (DRS's PercentIdleMBInMemDemand)."""
    cpu = mem = None
    if series:
        usage = series.get("cpu.usagemhz.average")
        if usage:
            cpu = sum(usage) / len(usage)
            ready = series.get("cpu.ready.summation")
            if ready and core_mhz > 0:
                # ready ms per 20 s sample (summed over vCPUs) -> MHz the VM wanted but did not get
                cpu += (sum(ready) / len(ready)) / (PERF_INTERVAL * 1000.0) * core_mhz
        active = series.get("mem.active.average")
        if active:
            a = sum(active) / len(active)
            consumed = series.get("mem.consumed.average")
            c = sum(consumed) / len(consumed) if consumed else a
            mem = (a + idle_share * max(0.0, c - a)) / 1024.0
    if cpu is None or not math.isfinite(cpu):
        cpu = _finite(getattr(quick, "overallCpuDemand", None)) or _finite(getattr(quick, "overallCpuUsage", None)) or 0.0
    if mem is None or not math.isfinite(mem):
        a = _finite(getattr(quick, "activeMemory", None)) or 0.0
        c = _finite(getattr(quick, "hostMemoryUsage", None)) or _finite(getattr(quick, "guestMemoryUsage", None)) or a
        mem = a + idle_share * max(0.0, c - a)
    return max(0.0, cpu), max(0.0, mem)


def _mean(samples: list[float] | None) -> float | None:
    return sum(samples) / len(samples) if samples else None


def ready_pct(ready_ms: list[float] | None, vcpus: int, interval_s: float = PERF_INTERVAL) -> float | None:
    """CPU ready in % of the time of each vCPU from ``cpu.ready.summation`` samples (ms ready in each
    ``interval_s`` sample, summed over the VM's vCPUs): mean ms / (interval x 1000 x vCPUs) x 100, at most 100;
    None when there is no sample (not known, not 0)."""
    mean = _mean(ready_ms)
    if mean is None:
        return None
    return min(100.0, max(0.0, mean / (interval_s * 1000.0 * max(vcpus, 1)) * 100.0))


MEMORY_SERVED = (("mem.vmmemctl.average", "mem_ballooned_mb"), ("mem.swapped.average", "mem_swapped_mb"),
                 ("mem.compressed.average", "mem_compressed_mb"))


def served(series: dict[str, list[float]] | None, vcpus: int, mem_mb: float) -> dict[str, float]:
    """How its host serves a powered-on VM, from its perf samples: ``cpu_ready_pct`` and memory ballooned,
    swapped and compressed (KB samples averaged, in MB, at most its memory). A counter vCenter returned no
    sample for is left out (the snapshot field stays None: not known)."""
    series = series or {}
    out: dict[str, float] = {}
    ready = ready_pct(series.get("cpu.ready.summation"), vcpus)
    if ready is not None:
        out["cpu_ready_pct"] = round(ready, 3)
    for counter, name in MEMORY_SERVED:
        kb = _mean(series.get(counter))
        if kb is not None:
            out[name] = round(min(max(kb, 0.0) / 1024.0, mem_mb), 1)
    return out


def groups(config: Any, vm_name: dict[str, str], host_name: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """ClusterVmGroup / ClusterHostGroup -> name: members (members outside the cluster dropped)."""
    from pyVmomi import vim

    vm_groups: dict[str, list[str]] = {}
    host_groups: dict[str, list[str]] = {}
    for g in getattr(config, "group", None) or []:
        if isinstance(g, vim.cluster.VmGroup):
            vm_groups[vc_name(g.name)] = _members(g.vm, vm_name)
        elif isinstance(g, vim.cluster.HostGroup):
            host_groups[vc_name(g.name)] = _members(g.host, host_name)
    return vm_groups, host_groups


def _members(objs: Any, names: dict[str, str]) -> list[str]:
    out: list[str] = []
    for o in objs or []:
        n = names.get(moid(o))
        if n is not None and n not in out:
            out.append(n)
    return out


def cluster_rules(config: Any, vm_name: dict[str, str], vm_groups: dict, host_groups: dict) -> list:
    """Affinity, anti-affinity and VM-host rules; other rule kinds are skipped (logged)."""
    from pyVmomi import vim

    rules: list = []
    for r in getattr(config, "rule", None) or []:
        enabled = getattr(r, "enabled", None) is not False
        if isinstance(r, (vim.cluster.AffinityRuleSpec, vim.cluster.AntiAffinityRuleSpec)):
            members = _members(r.vm, vm_name)
            if len(members) < 2:
                log.warning("rule %s: fewer than two of its VMs are in the cluster; ignored", r.name)
                continue
            mandatory = getattr(r, "mandatory", None)
            rules.append(VmVmRule(
                name=vc_name(r.name),
                type="vm-affinity" if isinstance(r, vim.cluster.AffinityRuleSpec) else "vm-anti-affinity",
                vms=members, mandatory=True if mandatory is None else bool(mandatory), enabled=enabled,
            ))
        elif isinstance(r, vim.cluster.VmHostRuleInfo):
            affine = getattr(r, "affineHostGroupName", None)
            anti = getattr(r, "antiAffineHostGroupName", None)
            host_group = vc_name(affine or anti)
            if not r.vmGroupName or not host_group:
                log.warning("rule %s: VM-host rule without a VM group or host group; ignored", r.name)
                continue
            if vc_name(r.vmGroupName) not in vm_groups or host_group not in host_groups:
                log.warning("rule %s: refers to a group that does not exist; ignored", r.name)
                continue
            rules.append(VmHostRule(
                name=vc_name(r.name), type="vm-host", vm_group=vc_name(r.vmGroupName), host_group=host_group,
                affine=bool(affine), mandatory=bool(getattr(r, "mandatory", False)), enabled=enabled,
            ))
        else:
            log.info("rule %s: %s rules are not modelled; ignored", getattr(r, "name", "?"), type(r).__name__)
    return rules


def ha_admission_control(config: Any, host_name: dict[str, str]) -> HaAdmissionControl | None:
    """vSphere HA admission control from ``configurationEx.dasConfig``; None when HA or admission control is off.

    Dedicated failover hosts -> ``failover-hosts``; cluster resources with percentages given ->
    ``percentage``; with automatically computed percentages, or the slot policy -> ``host-failures``
    (the failover level).
    """
    from pyVmomi import vim

    das = getattr(config, "dasConfig", None)
    if das is None or not getattr(das, "enabled", False) or not getattr(das, "admissionControlEnabled", False):
        return None
    policy = getattr(das, "admissionControlPolicy", None)
    level = int(getattr(policy, "failoverLevel", 0) or getattr(das, "failoverLevel", 0) or 1)
    level = min(max(level, 1), 32)
    if isinstance(policy, vim.cluster.FailoverHostAdmissionControlPolicy):
        hosts = [host_name[moid(h)] for h in (policy.failoverHosts or []) if moid(h) in host_name]
        if not hosts:
            log.warning("HA admission control: no failover host of the policy is in the cluster; ignored")
            return None
        return HaAdmissionControl(policy="failover-hosts", failover_hosts=sorted(set(hosts), key=hosts.index))
    if isinstance(policy, vim.cluster.FailoverResourcesAdmissionControlPolicy):
        if getattr(policy, "autoComputePercentages", False):
            return HaAdmissionControl(policy="host-failures", host_failures=level)
        cpu = min(max(float(policy.cpuFailoverResourcesPercent or 0), 0.0), 100.0)
        mem = min(max(float(policy.memoryFailoverResourcesPercent or 0), 0.0), 100.0)
        if cpu == 0 and mem == 0:
            return None
        return HaAdmissionControl(policy="percentage", cpu_percent=cpu, mem_percent=mem)
    if policy is None or isinstance(policy, vim.cluster.FailoverLevelAdmissionControlPolicy):
        return HaAdmissionControl(policy="host-failures", host_failures=level)
    log.info("HA admission control: %s is not modelled; ignored", type(policy).__name__)
    return None


@dataclass(frozen=True)
class Allocation:
    """A ``vim.ResourceAllocationInfo`` in the snapshot's words: reservation, limit (None: -1, none),
    shares level and value, expandable reservation."""

    reservation: float = 0.0
    limit: float | None = None
    level: str = "normal"
    value: int = 0
    expandable: bool = True

    def shares(self) -> Shares:
        return Shares(level="custom", value=self.value) if self.level == "custom" else Shares(level=self.level)


def allocation(info: Any) -> Allocation:
    if info is None:
        return Allocation()
    limit = _finite(getattr(info, "limit", None))
    shares = getattr(info, "shares", None)
    level = str(getattr(shares, "level", "") or "normal")
    return Allocation(reservation=max(0.0, _finite(getattr(info, "reservation", 0)) or 0.0),
                      limit=None if limit is None or limit < 0 else float(limit),
                      level=level if level in ("low", "normal", "high", "custom") else "normal",
                      value=max(0, int(getattr(shares, "shares", 0) or 0)),
                      expandable=getattr(info, "expandableReservation", True) is not False)


def resource_pools(found: list[tuple[Any, dict]], root: Any) -> tuple[list[ResourcePool], dict[str, str]]:
    """The cluster's pools below its root pool, and pool moid -> name (the root: absent). A pool is named by
    its own name, or by its path below the root (``prod/web``) when another pool has the same name."""
    root_id = moid(root) if root is not None else None
    by_id = {moid(pool): p for pool, p in found}
    parent = {mid: (moid(p["parent"]) if p.get("parent") is not None else None) for mid, p in by_id.items()}

    def path(mid: str) -> list[str]:
        out, seen = [], set()
        while mid is not None and mid != root_id and mid in by_id and mid not in seen:
            seen.add(mid)
            out.append(str(by_id[mid].get("name", mid)))
            mid = parent[mid]
        return out[::-1]

    inside = [mid for mid in by_id if mid != root_id and path(mid) and (parent[mid] == root_id or parent[mid] in by_id)]
    counts: dict[str, int] = {}
    for mid in inside:
        counts[path(mid)[-1]] = counts.get(path(mid)[-1], 0) + 1
    names = {mid: path(mid)[-1] if counts[path(mid)[-1]] == 1 else "/".join(path(mid)) for mid in inside}
    pools = []
    for mid in inside:
        cfg = by_id[mid].get("config")
        cpu, mem = allocation(getattr(cfg, "cpuAllocation", None)), allocation(getattr(cfg, "memoryAllocation", None))
        pools.append(ResourcePool(
            name=names[mid], parent=names.get(parent[mid]),
            cpu_shares=cpu.shares(), mem_shares=mem.shares(),
            cpu_reservation_mhz=cpu.reservation, mem_reservation_mb=mem.reservation,
            cpu_limit_mhz=None if cpu.limit is None else max(cpu.limit, cpu.reservation),
            mem_limit_mb=None if mem.limit is None else max(mem.limit, mem.reservation),
            cpu_expandable=cpu.expandable, mem_expandable=mem.expandable))
    return pools, names


def host_dpm(entry: Any) -> str:
    """A host's DPM override (a ``ClusterDpmHostConfigInfo``) in the snapshot's words."""
    if entry is None:
        return "default"
    if getattr(entry, "enabled", True) is False:
        return "disabled"
    behavior = str(getattr(entry, "behavior", "") or "")
    return {"manual": "manual", "automated": "automatic"}.get(behavior, "default")
