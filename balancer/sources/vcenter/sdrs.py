"""Storage DRS rules of the datastore clusters (storage pods), as snapshot rules.

A datastore cluster keeps them in ``podStorageDrsEntry.storageDrsConfig``, read with the pod's
name in the collector's datastore request (no request more, whatever the number of VMs):

- ``podConfig.rule``: a ``ClusterAntiAffinityRuleSpec`` (VMs whose disks go on different
  datastores) becomes a ``vm-datastore-anti-affinity`` rule over those of its VMs in the cluster
  (at least two); a ``VirtualDiskAntiAffinityRuleSpec`` there names disks by device key but no
  VM, so it is left out (logged). Other kinds are not modelled (logged).
- ``vmConfig[]`` (one VM each): ``intraVmAntiAffinity`` (a ``VirtualDiskAntiAffinityRuleSpec``, the
  VM's disks by device key) becomes a ``vmdk-anti-affinity`` rule; ``virtualDiskRules`` (vSphere
  6.7 and later) ``antiAffinity`` / ``affinity`` become ``vmdk-anti-affinity`` / ``vmdk-affinity``;
  ``intraVmAffinity`` true becomes a ``vmdk-affinity`` rule over all the VM's disks.
- ``podConfig.defaultIntraVmAffinity`` false: the pod's ``keep_disks_together`` is false (its VMs'
  disks may be apart). ``intraVmAffinity`` false for one VM in a pod that keeps disks together: no
  snapshot rule says "may be apart", so the planner keeps that VM's disks together (logged once per pod).

Each pod's own settings (``pod_settings``) become a ``datastore_clusters`` entry of the snapshot, for the
pods the cluster's datastores belong to: ``podConfig.enabled``, ``defaultVmBehavior`` (automated /
manual), ``spaceLoadBalanceConfig`` (``spaceThresholdMode`` utilization: ``spaceUtilizationThreshold`` %;
freeSpace: ``freeSpaceThresholdGB``; ``minSpaceUtilizationDifference`` %), ``ioLoadBalanceEnabled``,
``ioLoadBalanceConfig.ioLatencyThreshold`` (ms) and ``defaultIntraVmAffinity``. A setting vCenter
leaves unset (or out of range) is left out: the config's ``sdrs:`` then holds for it.

Disks the cluster's snapshot does not list (on datastores its hosts do not mount) are left out of
a rule, and a rule left with fewer than two disks or VMs is dropped (logged). A rule is enabled
unless vCenter says ``enabled: false``. Rule names are kept; one already taken (by a cluster rule or
another pod's) gets the pod's name before it (``DC0_POD0/apart``).
"""

from __future__ import annotations

import logging
from typing import Any

from ...snapshot import DatastoreCluster, VmDatastoreRule, VmdkRule
from .inventory import moid, vc_name

log = logging.getLogger("balancer.vcenter")


def pod_rules(entries: dict[str, tuple[str, Any]], vm_name: dict[str, str], disk_names: dict[str, dict[int, str]],
              taken: set[str]) -> list[VmdkRule | VmDatastoreRule]:
    """The storage rules of the pods: ``entries`` pod moid -> (pod name, podStorageDrsEntry);
    ``vm_name`` VM moid -> name (the cluster's VMs); ``disk_names`` VM moid -> {disk device key:
    the disk's name in the snapshot}; ``taken`` rule names already used (updated)."""
    from pyVmomi import vim

    out: list[VmdkRule | VmDatastoreRule] = []

    def name_of(pod: str, name: str | None, fallback: str) -> str:
        name = vc_name((name or "").strip()) or fallback
        if name in taken:
            name = f"{pod}/{name}"
        n, base = 2, name
        while name in taken:
            name, n = f"{base} ({n})", n + 1
        taken.add(name)
        return name

    def disks_of(vm: str, keys: Any, rule: str) -> list[str]:
        names = disk_names.get(vm, {})
        found = [names[int(k)] for k in (keys or []) if int(k) in names]
        if len(found) < len(keys or []):
            log.info("storage rule %s: %d of its disks are not in the snapshot; left out",
                     rule, len(keys or []) - len(found))
        return found

    for pod_id in sorted(entries):
        pod, entry = entries[pod_id]
        config = getattr(getattr(entry, "storageDrsConfig", None), "podConfig", None)
        for r in getattr(config, "rule", None) or []:
            rule = getattr(r, "name", None) or "?"
            enabled = getattr(r, "enabled", None) is not False
            if isinstance(r, vim.cluster.AntiAffinityRuleSpec):
                vms = sorted({vm_name[moid(v)] for v in (r.vm or []) if moid(v) in vm_name})
                if len(vms) < 2:
                    log.warning("storage rule %s (%s): fewer than two of its VMs are in the cluster; ignored", rule, pod)
                    continue
                out.append(VmDatastoreRule(name=name_of(pod, rule, "vm-anti-affinity"), type="vm-datastore-anti-affinity",
                                           vms=vms, enabled=enabled))
            elif isinstance(r, vim.storageDrs.VirtualDiskAntiAffinityRuleSpec):
                log.warning("storage rule %s (%s): a VMDK anti-affinity rule in the pod's rules names no VM; ignored "
                            "(vCenter keeps a VM's in its vmConfig)", rule, pod)
            else:
                log.info("storage rule %s (%s): %s rules are not modelled; ignored", rule, pod, type(r).__name__)
        default_together = getattr(config, "defaultIntraVmAffinity", None) is not False
        apart_noted = False
        for vc in getattr(getattr(entry, "storageDrsConfig", None), "vmConfig", None) or []:
            ref = getattr(vc, "vm", None)
            if ref is None or moid(ref) not in vm_name:
                continue
            vm = vm_name[moid(ref)]
            mid = moid(ref)
            together = getattr(vc, "intraVmAffinity", None)
            anti = getattr(vc, "intraVmAntiAffinity", None)
            if anti is not None:
                rule = getattr(anti, "name", None) or f"{vm}-disks-apart"
                disks = disks_of(mid, getattr(anti, "diskId", None), rule)
                if len(disks) >= 2:
                    out.append(VmdkRule(name=name_of(pod, rule, f"{vm}-disks-apart"), type="vmdk-anti-affinity", vm=vm,
                                        disks=disks, enabled=getattr(anti, "enabled", None) is not False))
                else:
                    log.warning("storage rule %s (%s): fewer than two of VM %s's disks are in the snapshot; ignored",
                                rule, pod, vm)
            for d in getattr(vc, "virtualDiskRules", None) or []:
                kind = str(getattr(d, "diskRuleType", "") or "")
                if kind not in ("affinity", "antiAffinity"):
                    continue
                rule = getattr(d, "name", None) or f"{vm}-disks-{kind}"
                disks = disks_of(mid, getattr(d, "diskId", None), rule)
                if len(disks) < 2:
                    log.warning("storage rule %s (%s): fewer than two of VM %s's disks are in the snapshot; ignored",
                                rule, pod, vm)
                    continue
                out.append(VmdkRule(name=name_of(pod, rule, rule),
                                    type="vmdk-affinity" if kind == "affinity" else "vmdk-anti-affinity",
                                    vm=vm, disks=disks, enabled=getattr(d, "enabled", None) is not False))
            if together is True and anti is None and len(disk_names.get(mid, {})) >= 2:
                out.append(VmdkRule(name=name_of(pod, None, f"{vm}-disks-together"), type="vmdk-affinity", vm=vm))
            elif together is False and not apart_noted:
                apart_noted = True
                if default_together:
                    log.info("datastore cluster %s: VM %s's disks may be apart (intraVmAffinity false); the planner "
                             "keeps them together as the pod's default (defaultIntraVmAffinity) says", pod, vm)
    return out


def _percent(value: Any) -> float | None:
    """A vCenter percentage (1..100) as a share, None when unset or out of range."""
    try:
        v = int(value)
    except (TypeError, ValueError):
        return None
    return v / 100.0 if 0 < v <= 100 else None


def pod_settings(entries: dict[str, tuple[str, Any]], names: set[str]) -> list[DatastoreCluster]:
    """The Storage DRS settings of the pods named in ``names`` (those the cluster's datastores belong to):
    ``entries`` pod moid -> (pod name, podStorageDrsEntry)."""
    out: list[DatastoreCluster] = []
    seen: set[str] = set()
    for pod_id in sorted(entries):
        pod, entry = entries[pod_id]
        if pod not in names or pod in seen:
            continue
        seen.add(pod)
        config = getattr(getattr(entry, "storageDrsConfig", None), "podConfig", None)
        if config is None:
            continue
        found: dict[str, Any] = {}
        enabled = getattr(config, "enabled", None)
        if isinstance(enabled, bool):
            found["enabled"] = enabled
        behaviour = str(getattr(config, "defaultVmBehavior", "") or "")
        if behaviour in ("automated", "manual"):
            found["automation"] = behaviour
        space = getattr(config, "spaceLoadBalanceConfig", None)
        if space is not None:
            mode = str(getattr(space, "spaceThresholdMode", "") or "utilization")
            free = getattr(space, "freeSpaceThresholdGB", None)
            if mode == "freeSpace" and isinstance(free, int) and free > 0:
                found["free_space_gb"] = float(free)
            elif (share := _percent(getattr(space, "spaceUtilizationThreshold", None))) is not None:
                found["space_threshold"] = share
            diff = getattr(space, "minSpaceUtilizationDifference", None)
            if isinstance(diff, int) and 0 < diff < 100 and (found.get("space_threshold", 1.0) > diff / 100.0):
                found["min_space_difference"] = diff / 100.0
        io = getattr(config, "ioLoadBalanceEnabled", None)
        if isinstance(io, bool):
            found["io_balancing"] = io
        latency = getattr(getattr(config, "ioLoadBalanceConfig", None), "ioLatencyThreshold", None)
        if isinstance(latency, int) and latency > 0:
            found["latency_threshold_ms"] = float(latency)
        together = getattr(config, "defaultIntraVmAffinity", None)
        if isinstance(together, bool):
            found["keep_disks_together"] = together
        out.append(DatastoreCluster(name=pod, **found))
        log.info("datastore cluster %s: Storage DRS settings %s", pod,
                 ", ".join(f"{k}={v}" for k, v in found.items()) or "none set (sdrs: holds)")
    return out
