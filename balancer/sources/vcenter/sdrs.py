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
- ``intraVmAffinity`` false, or ``podConfig.defaultIntraVmAffinity`` false for a VM without its own
  setting: the VM's disks may be apart. No snapshot rule says so: the planner keeps a VM's disks
  on one datastore together unless ``sdrs.keep_disks_together`` is off (logged once per pod).

Disks the cluster's snapshot does not list (on datastores its hosts do not mount) are left out of
a rule, and a rule left with fewer than two disks or VMs is dropped (logged). A rule is enabled
unless vCenter says ``enabled: false``. Rule names are kept; one already taken (by a cluster rule or
another pod's) gets the pod's name before it (``DC0_POD0/apart``).
"""

from __future__ import annotations

import logging
from typing import Any

from ...snapshot import VmDatastoreRule, VmdkRule
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
                log.info("datastore cluster %s: VM %s's disks may be apart (intraVmAffinity false); the planner keeps "
                         "a VM's disks together unless sdrs.keep_disks_together is off", pod, vm)
        if not default_together:
            log.info("datastore cluster %s: VMs' disks may be apart by default (defaultIntraVmAffinity false); the "
                     "planner keeps a VM's disks together unless sdrs.keep_disks_together is off", pod)
    return out
