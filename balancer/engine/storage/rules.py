"""Storage DRS rules over a pool: which disks move together (units) and where a unit may not go.

- **VMDK affinity** (Storage DRS's default): a VM's disks on one datastore stay together: they move
  as one unit. A VM whose disks already sit on several datastores keeps each datastore's group
  together (the planner does not merge them on its own). An explicit ``vmdk-affinity`` rule binds
  its disks (all of the VM's when it names none) into one unit wherever they are, so a rule whose
  disks are apart is broken and mended by moving them onto one datastore.
- A VM under a ``vmdk-anti-affinity`` rule, or every VM when ``keep_disks_together`` is off, has
  no default affinity: each disk is a unit of its own (explicit affinity rules still bind).
- **VMDK anti-affinity**: the rule's disks on pairwise different datastores.
- **VM anti-affinity** (``vm-datastore-anti-affinity``): no datastore holds disks of two of its VMs.

Every enabled storage rule is mandatory: no move breaks one, and the planner mends broken ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...snapshot import VmDatastoreRule, VmdkRule
from .pool import Pool



@dataclass(frozen=True)
class Unit:
    vm: int
    disks: np.ndarray  # disk indices that move together
    rule: str | None = None  # the explicit vmdk-affinity rule that binds them, if any


@dataclass(frozen=True)
class DiskApart:
    """vmdk-anti-affinity: these disks (of one VM) on pairwise different datastores."""

    rule: str
    disks: np.ndarray


@dataclass(frozen=True)
class VmsApart:
    """vm-datastore-anti-affinity: no datastore holds disks of two of these VMs."""

    rule: str
    vms: np.ndarray


@dataclass
class StorageRules:
    units: list[Unit]
    unit_of_disk: np.ndarray  # (N,) unit index
    disks_apart: list[DiskApart] = field(default_factory=list)
    vms_apart: list[VmsApart] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # rules that contradict one another
    apart_of_disk: dict[int, list[DiskApart]] = field(default_factory=dict)
    apart_of_vm: dict[int, list[VmsApart]] = field(default_factory=dict)
    bounds: np.ndarray | None = None  # (V+1,) VM v's disks are bounds[v]:bounds[v+1] (build_pool lists them VM by VM)

    def disks_of(self, v: int) -> np.ndarray:
        return np.arange(self.bounds[v], self.bounds[v + 1], dtype=np.int64)

    def unit_ok(self, pool: Pool, disk_ds: np.ndarray, u: int, target: int) -> str | None:
        """None when unit ``u`` may go to datastore ``target`` under the rules, else the rule it would break."""
        unit = self.units[u]
        mine = set(int(k) for k in unit.disks)
        for k in unit.disks:
            for g in self.apart_of_disk.get(int(k), ()):
                for other in g.disks:
                    if int(other) not in mine and disk_ds[other] == target:
                        return g.rule
        for g in self.apart_of_vm.get(unit.vm, ()):
            for w in g.vms:
                w = int(w)
                if w != unit.vm and (disk_ds[self.bounds[w]:self.bounds[w + 1]] == target).any():
                    return g.rule
        return None

    def violations(self, pool: Pool, disk_ds: np.ndarray) -> list[tuple[str, str]]:
        """(rule, words) for every storage rule broken in ``disk_ds``."""
        out: list[tuple[str, str]] = []
        names, ds = pool.disk_names, pool.ds_names
        for unit in self.units:
            if unit.rule is not None and len(set(disk_ds[unit.disks].tolist())) > 1:
                vm = pool.vm_names[unit.vm]
                out.append((unit.rule, f"{vm}'s disks {', '.join(names[k] for k in unit.disks)} are on "
                                       f"{', '.join(sorted(set(ds[d] for d in disk_ds[unit.disks])))}"))
        for g in self.disks_apart:
            where: dict[int, list[int]] = {}
            for k in g.disks:
                where.setdefault(int(disk_ds[k]), []).append(int(k))
            for d, ks in where.items():
                if len(ks) > 1:
                    vm = pool.vm_names[pool.disk_vm[ks[0]]]
                    out.append((g.rule, f"{vm}'s disks {' and '.join(names[k] for k in ks)} share {ds[d]}"))
        for g in self.vms_apart:
            where = {}
            for w in g.vms:
                for d in set(disk_ds[self.disks_of(int(w))].tolist()):
                    where.setdefault(d, []).append(int(w))
            for d, ws in where.items():
                if len(ws) > 1:
                    out.append((g.rule, f"{' and '.join(pool.vm_names[w] for w in ws)} have disks on {ds[d]}"))
        return out


def build_rules(pool: Pool, keep_disks_together: bool | np.ndarray = True) -> StorageRules:
    """The units and rules of ``pool``; ``keep_disks_together``: VMDK affinity by default, for all or
    (a (D,) bool array, per datastore cluster) for the disks on the datastores where it is true."""
    s = pool.snapshot
    N = pool.n_disks
    vm_idx = {n: i for i, n in enumerate(pool.vm_names)}
    # a VM's disks are contiguous in the pool (build_pool lists them VM by VM)
    bounds = np.searchsorted(pool.disk_vm, np.arange(len(pool.vm_names) + 1))

    def disks_of(v: int) -> list[int]:
        return list(range(int(bounds[v]), int(bounds[v + 1])))

    def disk_of(v: int, name: str) -> int:
        return next(k for k in disks_of(v) if pool.disk_names[k] == name)

    rules = [r for r in s.storage_rules if r.enabled]
    apart_vms = [vm_idx[r.vm] for r in rules if isinstance(r, VmdkRule) and r.type == "vmdk-anti-affinity"]
    # the starting units: with the default affinity a VM's disks on one datastore, otherwise each disk
    together = np.asarray(keep_disks_together, dtype=bool)
    if together.any():
        key = pool.disk_vm * max(pool.n_datastores, 1) + pool.disk_ds
        alone = ~together[pool.disk_ds] if together.ndim else np.zeros(N, dtype=bool)
        for v in apart_vms:
            alone[disks_of(v)] = True
        key = np.where(alone, -1 - np.arange(N), key)
    else:
        key = -1 - np.arange(N)
    _, label = np.unique(key, return_inverse=True)
    label = label.reshape(-1)
    # explicit vmdk-affinity rules join units wherever their disks are
    parent = list(range(int(label.max()) + 1 if N else 0))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    bound_by: dict[int, str] = {}  # a unit label -> the explicit affinity rule on it
    for r in rules:
        if isinstance(r, VmdkRule) and r.type == "vmdk-affinity":
            v = vm_idx[r.vm]
            ks = [disk_of(v, n) for n in r.disks] if r.disks else disks_of(v)
            for a, b in zip(ks, ks[1:]):
                parent[find(int(label[a]))] = find(int(label[b]))
            if ks:
                bound_by[int(label[ks[0]])] = r.name
    if bound_by:
        label = np.array([find(int(x)) for x in label.tolist()], dtype=np.int64)
        rule_of_root = {find(x): name for x, name in bound_by.items()}
    else:
        rule_of_root = {}
    order = np.argsort(label, kind="stable")
    cuts = np.flatnonzero(np.diff(label[order])) + 1
    units: list[Unit] = []
    unit_of_disk = np.zeros(N, dtype=np.int64)
    for ks in (np.split(order, cuts) if N else []):
        unit_of_disk[ks] = len(units)
        units.append(Unit(vm=int(pool.disk_vm[ks[0]]), disks=ks.astype(np.int64), rule=rule_of_root.get(int(label[ks[0]]))))

    out = StorageRules(units=units, unit_of_disk=unit_of_disk,
                       bounds=bounds)
    for r in rules:
        if isinstance(r, VmdkRule) and r.type == "vmdk-anti-affinity":
            v = vm_idx[r.vm]
            g = DiskApart(r.name, np.array([disk_of(v, n) for n in r.disks], dtype=np.int64))
            out.disks_apart.append(g)
            for k in g.disks:
                out.apart_of_disk.setdefault(int(k), []).append(g)
            together = {}
            for k in g.disks:
                together.setdefault(int(unit_of_disk[k]), []).append(int(k))
            for u, ks in together.items():
                if len(ks) > 1:
                    out.conflicts.append(f"rules {units[u].rule} and {r.name}: {r.vm}'s disks "
                                         f"{' and '.join(pool.disk_names[k] for k in ks)} are under both affinity and anti-affinity")
        elif isinstance(r, VmDatastoreRule):
            g = VmsApart(r.name, np.array([vm_idx[n] for n in r.vms], dtype=np.int64))
            out.vms_apart.append(g)
            for w in g.vms:
                out.apart_of_vm.setdefault(int(w), []).append(g)
    return out
