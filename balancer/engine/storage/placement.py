"""Initial placement of a new VM's disks, as Storage DRS places them at creation (`balancer place` with a
VM spec that lists ``disks``). Pure: a snapshot, a VM spec and the plan's options in, choices out.

The disks form **units** that go to one datastore each: the disks that ask for the same datastore
cluster (``SpecDisk.datastore_cluster``; none: any datastore) are one unit when they are kept together
(the spec's ``keep_disks_together``, else that datastore cluster's default VMDK affinity, else
``sdrs.keep_disks_together``; an explicit vmdk-affinity rule of a registered VM binds them too), else
each disk is a unit. For a host, each unit, largest first, goes to the datastore that, in this order:

1. the hard obligations allow: the host mounts it, it is in the datastore cluster asked for, it is
   neither in maintenance nor being evacuated, no storage rule breaks (vm-datastore-anti-affinity:
   no disk of another VM of the rule there; vmdk-anti-affinity of a registered VM: its disks apart),
   and the unit fits within its physical capacity (with the thin disks' growth within
   ``sdrs.growth_horizon``);
2. stays within its space threshold after (its datastore cluster's, else ``sdrs:``'s), then is not
   above its latency threshold (when its I/O metric is on): a datastore above a threshold is chosen
   only when none the host mounts has room within them;
3. leaves a registered VM's disk where it is (no Storage vMotion), then is the least utilised after.

The compute placement (engine/compute/placement.py) refuses the hosts for which no datastore takes a
unit, picks the best host by (units above a threshold, its compute rank), and lists only the hosts
that mount every datastore chosen: each of them can run the VM on those disks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...plan.placement import DatastoreChoice, DatastoreRejection, DiskChoice
from ...snapshot import Snapshot, VmDatastoreRule, VmdkRule
from ...snapshot.vmspec import VmSpec
from ..options import PlanOptions, StorageOptions
from ..words import pct
from .pool import Pool, build_pool
from .settings import Settings, settings

EPS = 1e-9


@dataclass
class Need:
    name: str
    size_gb: float
    space_gb: float  # today's space + growth within the horizon
    thin: bool
    pod: str | None  # datastore cluster asked for; None: any
    current: int | None  # datastore index it is on now (a registered VM's disk)


@dataclass
class DiskContext:
    pool: Pool
    st: Settings
    needs: list[Need]
    units: list[list[int]]  # need indices, largest unit first
    apart: list[tuple[str, set[int]]]  # (rule, need indices on pairwise different datastores)
    forbidden: dict[int, str] = field(default_factory=dict)  # datastore -> the rule that keeps the VM off it
    pinned: dict[int, list[str]] = field(default_factory=dict)  # datastore -> the VM's disks that stay there

    def unit_words(self, u: int) -> str:
        ks = self.units[u]
        gb = sum(self.needs[k].space_gb for k in ks)
        return f"{'disk' if len(ks) == 1 else 'disks'} {', '.join(self.needs[k].name for k in ks)} ({gb:.0f} GB)"


@dataclass
class DiskPlan:
    where: list[int]  # per need: datastore index
    used: np.ndarray  # (D,) GB after
    over: int  # units above their datastore's space threshold after
    hot: int  # units on a datastore above its latency threshold
    moves: int  # registered disks moved


def disk_context(snapshot: Snapshot, spec: VmSpec, options: PlanOptions, pinned_only: bool = False) -> DiskContext | None:
    """The disks to place (None: the spec lists none), with the pool they are judged on. ``pinned_only``:
    none placed, a registered VM's disks all stay where they are (a spec without disks)."""
    if not spec.disks and not pinned_only:
        return None
    storage = options.storage or StorageOptions()
    pool = build_pool(snapshot, growth_days=storage.growth_days)
    st = settings(snapshot, storage)
    registered = snapshot.vms_by_name().get(spec.name)
    own = {k.name: k for k in registered.disks} if registered is not None else {}
    needs: list[Need] = []
    for d in spec.disks:
        current = own.get(d.name or "")
        if current is not None:  # a disk the VM has: its space is what it takes now (and is counted where it is)
            k = int(np.flatnonzero((pool.disk_vm == snapshot.vms.index(registered))
                                   & (np.array(pool.disk_names, dtype=object) == d.name))[0])
            needs.append(Need(d.name or "", d.size_gb, float(pool.disk_space[k]), current.thin, d.datastore_cluster,
                              int(pool.disk_ds[k])))
            continue
        space = d.size_gb if not d.thin or d.used_gb is None else d.used_gb
        grow = 0.0
        if d.thin and d.growth_gb_per_day and storage.growth_days > 0:
            grow = max(min(d.growth_gb_per_day * storage.growth_days, d.size_gb - space), 0.0)
        needs.append(Need(d.name or "", d.size_gb, space + grow, d.thin, d.datastore_cluster, None))
    pinned: dict[int, list[str]] = {}
    listed = {n.name for n in needs}
    if registered is not None:
        for k in registered.disks:
            if k.name not in listed:
                pinned.setdefault(pool.ds_index(k.datastore), []).append(k.name)
    by_name = {n.name: i for i, n in enumerate(needs)}
    together_rule: set[str] = set()
    apart: list[tuple[str, set[int]]] = []
    forbidden: dict[int, str] = {}
    for r in snapshot.rules:
        if not getattr(r, "enabled", True):
            continue
        if isinstance(r, VmdkRule) and registered is not None and r.vm == spec.name:
            names = set(r.disks) if r.disks else {k.name for k in registered.disks} | listed
            if r.type == "vmdk-affinity":
                together_rule |= names
            else:
                apart.append((r.name, {by_name[n] for n in names if n in by_name}))
        elif isinstance(r, VmDatastoreRule) and (r.name in spec.rules or spec.name in r.vms):
            for w in r.vms:
                if w != spec.name:
                    for k in getattr(snapshot.vms_by_name().get(w), "disks", []):
                        forbidden.setdefault(pool.ds_index(k.datastore), r.name)
    apart_disks = set().union(*(s for _, s in apart)) if apart else set()
    groups: dict[str | None, list[int]] = {}
    units: list[list[int]] = []
    for i, n in enumerate(needs):
        if i in apart_disks and n.name not in together_rule:
            units.append([i])
            continue
        if spec.keep_disks_together is not None:
            together = spec.keep_disks_together
        else:
            pods = {c.name: c for c in snapshot.datastore_clusters}
            c = pods.get(n.pod or "")
            together = c.keep_disks_together if c is not None and c.keep_disks_together is not None \
                else storage.keep_disks_together
        if together or n.name in together_rule:
            groups.setdefault(n.pod, []).append(i)
        else:
            units.append([i])
    units.extend(groups.values())
    units.sort(key=lambda ks: (-sum(needs[k].space_gb for k in ks), ks[0]))
    return DiskContext(pool, st, needs, units, [(r, s) for r, s in apart if len(s) > 1], forbidden, pinned)


def _allowed(ctx: DiskContext, h: int) -> np.ndarray:
    """(D,) bool: datastores host ``h`` mounts, in service, no rule keeps the VM off."""
    p = ctx.pool
    ok = p.mounts[:, h] & ~p.leaving
    for d in ctx.forbidden:
        ok[d] = False
    return ok


def _in_pod(ctx: DiskContext, u: int) -> np.ndarray:
    p = ctx.pool
    pod = ctx.needs[ctx.units[u][0]].pod
    if pod is None:
        return np.ones(p.n_datastores, dtype=bool)
    return np.array([n == pod for n in p.pod_names], dtype=bool)[p.pod]


def pinned_refusal(ctx: DiskContext, h: int) -> str | None:
    """Why host ``h`` cannot reach the VM's disks that stay where they are (None: it can)."""
    p = ctx.pool
    for d, names in sorted(ctx.pinned.items()):
        if not p.mounts[d, h]:
            return f"does not mount datastore {p.ds_names[d]} (the VM's {', '.join(names)})"
    return None


def plan_disks(ctx: DiskContext, h: int) -> tuple[DiskPlan | None, str | None]:
    """The disks' datastores for host ``h`` (greedy, largest unit first), or (None, why no datastore takes one)."""
    p, st = ctx.pool, ctx.st
    why = pinned_refusal(ctx, h)
    if why is not None:
        return None, why
    used = p.used.copy()
    where = [-1] * len(ctx.needs)
    base = _allowed(ctx, h)
    over = hot = moves = 0
    for u, ks in enumerate(ctx.units):
        ok = base & _in_pod(ctx, u)
        for rule, group in ctx.apart:
            if set(ks) & group:
                for k in group - set(ks):
                    d = where[k] if where[k] >= 0 else ctx.needs[k].current
                    if d is not None and d >= 0:
                        ok[d] = False
        best, best_key = None, None
        for d in np.flatnonzero(ok):
            d = int(d)
            add = sum(ctx.needs[k].space_gb for k in ks if ctx.needs[k].current != d)
            freed = {}
            for k in ks:
                c = ctx.needs[k].current
                if c is not None and c != d:
                    freed[c] = freed.get(c, 0.0) + ctx.needs[k].space_gb
            after = used[d] + add
            if after > p.cap[d] + EPS:
                continue  # physical capacity: hard
            key = (after > st.threshold[d] * p.cap[d] + EPS,
                   bool(st.io[d] and not np.isnan(p.latency[d]) and p.latency[d] > st.latency[d]),
                   sum(1 for k in ks if ctx.needs[k].current is not None and ctx.needs[k].current != d),
                   round(after / p.cap[d], 9), d)
            if best_key is None or key < best_key:
                best, best_key = (d, add, freed), key
        if best is None:
            return None, _no_room(ctx, u, h, ok)
        d, add, freed = best
        used[d] += add
        for c, gb in freed.items():
            used[c] -= gb
        for k in ks:
            where[k] = d
        over += best_key[0]
        hot += best_key[1]
        moves += best_key[2]
    return DiskPlan(where, used, over, hot, moves), None


def _no_room(ctx: DiskContext, u: int, h: int, ok: np.ndarray) -> str:
    p = ctx.pool
    pod = ctx.needs[ctx.units[u][0]].pod
    where = f"in datastore cluster {pod}" if pod else ""
    if not ok.any():
        return f"mounts no datastore {where + ' ' if where else ''}that may take the VM's {ctx.unit_words(u)}".replace("  ", " ")
    return f"no datastore it mounts{' ' + where if where else ''} has room for the VM's {ctx.unit_words(u)}"


def describe(ctx: DiskContext, plan: DiskPlan, h: int) -> tuple[list[DiskChoice], list[DatastoreChoice],
                                                                 list[DatastoreRejection]]:
    """The disks' choices at host ``h``, the datastores receiving them, and why every other one was not chosen."""
    p, st = ctx.pool, ctx.st

    def pod_of(d: int) -> str | None:
        return p.pod_names[p.pod[d]] or None

    disks = [DiskChoice(disk=n.name, datastore=p.ds_names[plan.where[i]], datastore_cluster=pod_of(plan.where[i]),
                        size_gb=n.size_gb, space_gb=round(n.space_gb, 6), thin=n.thin,
                        moved_from=p.ds_names[n.current] if n.current is not None and n.current != plan.where[i] else None)
             for i, n in enumerate(ctx.needs)]
    chosen = sorted(set(plan.where))
    stores = []
    for d in chosen:
        before, after = float(p.used[d] / p.cap[d]), float(plan.used[d] / p.cap[d])
        lat_t = float(st.latency[d]) if st.io[d] else None
        lat = None if np.isnan(p.latency[d]) else float(p.latency[d])
        over_space = plan.used[d] > st.threshold[d] * p.cap[d] + EPS
        hot = lat is not None and lat_t is not None and lat > lat_t
        words = [f"space {pct(before)} → {pct(after)} (threshold {st.threshold_words(d)})"]
        if lat is not None:
            words.append(f"latency {lat:g} ms" + (f" (threshold {lat_t:g} ms)" if lat_t is not None else ""))
        if over_space:
            words.append("above its space threshold: no datastore the host mounts has room within its threshold")
        if hot:
            words.append("above its latency threshold: no datastore the host mounts with room is below its own")
        stores.append(DatastoreChoice(
            datastore=p.ds_names[d], datastore_cluster=pod_of(d),
            disks=[n.name for i, n in enumerate(ctx.needs) if plan.where[i] == d],
            space_before=before, space_after=after, space_threshold=float(st.threshold[d]), latency_ms=lat,
            latency_threshold_ms=lat_t, over_threshold=bool(over_space or hot), reason="; ".join(words)))
    rejected = []
    host = p.host_names[h]
    pods_asked = {ctx.needs[ks[0]].pod for ks in ctx.units}
    best_after = min(float(plan.used[d] / p.cap[d]) for d in chosen)
    best_name = p.ds_names[min(chosen, key=lambda d: plan.used[d] / p.cap[d])]
    for d in range(p.n_datastores):
        if d in chosen:
            continue
        rejected.append(DatastoreRejection(datastore=p.ds_names[d],
                                           why=_refusal(ctx, d, host, h, pods_asked, best_after, best_name)))
    return disks, stores, rejected


def _refusal(ctx: DiskContext, d: int, host: str, h: int, pods_asked: set, best_after: float, best_name: str) -> str:
    p, st = ctx.pool, ctx.st
    if p.maintenance[d]:
        return "in maintenance"
    if p.leaving[d]:
        return "being evacuated"
    pod = p.pod_names[p.pod[d]] or None
    if None not in pods_asked and pod not in pods_asked:
        asked = ", ".join(sorted(str(x) for x in pods_asked))
        return (f"in datastore cluster {pod}" if pod else "in no datastore cluster") + f": the disks ask for {asked}"
    if not p.mounts[d, h]:
        return f"not mounted by {host}, the best host"
    if d in ctx.forbidden:
        return f"rule {ctx.forbidden[d]}: another VM of the rule has disks on it"
    units = [u for u, ks in enumerate(ctx.units) if ctx.needs[ks[0]].pod in (None, pod)]
    if not units:
        return "no disk asks for its datastore cluster"
    u = units[-1]  # the smallest unit that may go there
    gb = sum(ctx.needs[k].space_gb for k in ctx.units[u] if ctx.needs[k].current != d)
    after = p.used[d] + gb
    if after > p.cap[d] + EPS:
        return f"no room: {p.cap[d] - p.used[d]:.0f} GB free, the VM's {ctx.unit_words(u)} need more"
    if after > st.threshold[d] * p.cap[d] + EPS:
        return f"would be {pct(after / p.cap[d])} used, above its {st.threshold_words(d)} space threshold"
    if st.io[d] and not np.isnan(p.latency[d]) and p.latency[d] > st.latency[d]:
        return f"latency {p.latency[d]:g} ms, above its {st.latency[d]:g} ms threshold"
    return f"more used after ({pct(after / p.cap[d])}) than {best_name} ({pct(best_after)})"


__all__ = ["DiskContext", "DiskPlan", "describe", "disk_context", "pinned_refusal", "plan_disks"]
