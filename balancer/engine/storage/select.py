"""Which disks move where: the storage planner's choices, one step at a time on a running layout.

Stages, each on the layout the previous one left:

1. **evacuation**: every unit with a disk on a datastore in maintenance or being evacuated moves
   off, largest first, whatever its VM's automation level; a unit that finds no datastore is a
   conflict (the plan is infeasible);
2. **rules**: broken storage rules are mended (an explicit VMDK affinity rule's disks gathered on
   one datastore, anti-affinity disks or VMs sent apart);
3. **space**: each datastore above the space threshold, fullest first, is relieved down to its
   relief level: the utilisation of its pool's fullest datastore within the threshold, bounded to
   [threshold - ``relief_margin``, threshold] (it ends no fuller than its peers, with a little
   headroom, yet copies little more than needed); the units to move are the fewest that
   cover the excess and, of those, nearly the ones that copy the least data. A space move goes
   only to a target at least ``min_space_difference`` less utilised than the source at that
   step, the least utilised first, filled to the relief level (or, when none takes the unit so, to
   the threshold). When that leaves the source above the threshold, the source is planned again
   filling the fullest targets first, to the threshold (so the emptier ones are still eligible
   once the source is lower), and the better of the two is kept;
4. **latency** (``io_balancing``): each datastore above the latency threshold sheds the share of
   its data that would bring it to the threshold if latency were proportional to the data on it,
   to datastores measured below the threshold that stay below it by the same model.

A unit goes to the datastore, among those allowed, that is least utilised after the move. A
target is allowed when every host of the VM mounts it, it is in the unit's pool
(engine/storage/pool.py), it is neither in maintenance nor being evacuated, no storage rule
breaks, and it stays at or below the space threshold after the move. So every intermediate state respects space: each step only fills a datastore to its
threshold, and sources only empty.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from ..options import StorageOptions
from .pool import Pool
from .rules import StorageRules

EPS = 1e-9
MAX_LATENCY_SHARE = 0.5  # a datastore sheds at most half its data per plan for latency


@dataclass
class Step:
    unit: int
    target: int
    disks: list[tuple[int, int]]  # (disk, source datastore)
    size_gb: float
    reason: str  # space | latency | rule | evacuate
    detail: str
    rule: str | None = None
    mandatory: bool = False


@dataclass
class Choice:
    steps: list[Step] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    disk_ds: np.ndarray | None = None  # where every disk ends
    used: np.ndarray | None = None  # (D,) GB used at the end


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


class Layout:
    """Where the disks are, and the space used, as the steps so far leave them."""

    def __init__(self, pool: Pool, rules: StorageRules, options: StorageOptions) -> None:
        self.pool, self.rules, self.options = pool, rules, options
        self.disk_ds = pool.disk_ds.copy()
        self.used = pool.used.copy()
        self.ceiling = options.space_threshold * pool.cap
        self.steps: list[Step] = []

    def util(self, d: int) -> float:
        return float(self.used[d] / self.pool.cap[d])

    def moving(self, u: int, target: int) -> np.ndarray:
        ks = self.rules.units[u].disks
        return ks[self.disk_ds[ks] != target]

    def size(self, u: int, target: int) -> float:
        return float(self.pool.disk_space[self.moving(u, target)].sum())

    def home(self, u: int) -> int:
        """The datastore holding most of the unit's data (its pool is the unit's pool)."""
        ks = self.rules.units[u].disks
        where = self.disk_ds[ks]
        if len(set(where.tolist())) == 1:
            return int(where[0])
        totals: dict[int, float] = {}
        for k, d in zip(ks.tolist(), where.tolist()):
            totals[d] = totals.get(d, 0.0) + float(self.pool.disk_space[k])
        return max(totals, key=lambda d: (totals[d], -d))

    def candidates(self, u: int, headroom: np.ndarray | None = None, extra: np.ndarray | None = None,
                   include_own: bool = False, any_pool: bool = False, fullest: bool = False) -> np.ndarray:
        """Datastores unit ``u`` may go to, least utilised after the move first (rules not yet judged).

        ``headroom``: (D,) the most each target may hold after the move (default: the space ceiling);
        ``extra``: (D,) bool, further targets excluded where False; ``fullest``: the fullest first."""
        p = self.pool
        unit = self.rules.units[u]
        ok = p.vm_ok[unit.vm] & ~p.leaving
        if not any_pool:  # (``any_pool``: disks that follow their VM to another host, engine/storage/carry.py)
            pods = set(p.pod[self.disk_ds[unit.disks]].tolist())
            if len(pods) > 1:  # no storage move crosses between pools: such a unit stays where it is
                return np.zeros(0, dtype=np.int64)
            ok &= p.pod == pods.pop()
        if not include_own:
            ok[self.disk_ds[unit.disks]] = False
        if extra is not None:
            ok &= extra
        cand = np.flatnonzero(ok)
        if not len(cand):
            return cand
        ks = unit.disks
        space = p.disk_space[ks]
        # what moving there copies: the unit's disks not already on it
        sizes = space.sum() - np.bincount(self.disk_ds[ks], weights=space, minlength=p.n_datastores)[cand]
        limit = self.ceiling if headroom is None else headroom
        after = self.used[cand] + sizes
        fits = after <= np.maximum(limit[cand], 0.0) + EPS
        cand, after = cand[fits], after[fits]
        if fullest:  # best fit: the fullest datastore that takes it (keeps the emptier ones for later)
            return cand[np.argsort(-self.used[cand] / p.cap[cand], kind="stable")]
        return cand[np.argsort(after / p.cap[cand], kind="stable")]

    def place(self, u: int, **kw) -> tuple[int | None, str | None]:
        """The best target for unit ``u`` and, when none passes the rules, the rule that kept it off one."""
        blocked = None
        for d in self.candidates(u, **kw):
            rule = self.rules.unit_ok(self.pool, self.disk_ds, u, int(d))
            if rule is None:
                return int(d), None
            blocked = blocked or rule
        return None, blocked

    def save(self) -> tuple:
        return self.disk_ds.copy(), self.used.copy(), len(self.steps)

    def restore(self, saved: tuple) -> None:
        self.disk_ds, self.used = saved[0].copy(), saved[1].copy()
        del self.steps[saved[2]:]

    def move(self, u: int, target: int, reason: str, detail: str, rule: str | None = None,
             mandatory: bool = False) -> Step:
        ks = self.moving(u, target)
        disks = [(int(k), int(self.disk_ds[k])) for k in ks]
        size = float(self.pool.disk_space[ks].sum())
        for k, src in disks:
            self.used[src] -= self.pool.disk_space[k]
            self.disk_ds[k] = target
        self.used[target] += size
        step = Step(u, target, disks, size, reason, detail, rule, mandatory)
        self.steps.append(step)
        return step

    def describe(self, u: int) -> str:
        p = self.pool
        unit = self.rules.units[u]
        names = ", ".join(p.disk_names[k] for k in unit.disks)
        gb = float(p.disk_space[unit.disks].sum())
        return f"VM {p.vm_names[unit.vm]}'s {'disk' if len(unit.disks) == 1 else 'disks'} {names} ({gb:.0f} GB)"


def choose(pool: Pool, rules: StorageRules, options: StorageOptions) -> Choice:
    lay = Layout(pool, rules, options)
    out = Choice()
    if rules.conflicts:
        out.conflicts = list(rules.conflicts)
        out.disk_ds, out.used = lay.disk_ds, lay.used
        return out
    _evacuate(lay, out)
    if out.conflicts:
        lay.steps.clear()
        out.disk_ds, out.used = pool.disk_ds.copy(), pool.used.copy()
        return out
    budget = [options.max_moves if options.max_moves is not None else 1 << 62]
    if not options.evacuate:  # datastore maintenance: only the evacuation moves, as for hosts
        _mend_rules(lay, out, budget)
        _relieve_space(lay, out, budget)
        if options.io_balancing:
            _relieve_latency(lay, out, budget)
    out.steps = lay.steps
    out.disk_ds, out.used = lay.disk_ds, lay.used
    return out


# --- 1. evacuation -----------------------------------------------------------------------------
def _evacuate(lay: Layout, out: Choice) -> None:
    p = lay.pool
    leaving_units = sorted({int(lay.rules.unit_of_disk[k]) for k in np.flatnonzero(p.leaving[lay.disk_ds])},
                           key=lambda u: (-float(p.disk_space[lay.rules.units[u].disks].sum()), u))
    for u in leaving_units:
        src = lay.home(u)
        src = next((int(d) for d in lay.disk_ds[lay.rules.units[u].disks] if p.leaving[d]), src)
        why = "is in maintenance" if p.maintenance[src] else "enters maintenance"
        target, blocked = lay.place(u)
        if target is None:
            if blocked:
                out.conflicts.append(f"evacuating {p.ds_names[src]}: rule {blocked} keeps {lay.describe(u)} "
                                     "off every datastore with room")
            else:
                out.conflicts.append(f"evacuating {p.ds_names[src]}: no room for {lay.describe(u)} on a datastore "
                                     f"its host mounts, within the {pct(lay.options.space_threshold)} space threshold")
            continue
        lay.move(u, target, "evacuate", f"{p.ds_names[src]} {why}", mandatory=True)


# --- 2. rules ----------------------------------------------------------------------------------
def _mend_rules(lay: Layout, out: Choice, budget: list[int]) -> None:
    p, rules = lay.pool, lay.rules
    unmended: dict[str, str] = {}

    def send(u: int, rule: str, detail: str, include_own: bool = False) -> None:
        if budget[0] <= 0:
            unmended.setdefault(rule, "the move cap is reached")
            return
        if not p.vm_auto[rules.units[u].vm]:
            unmended.setdefault(rule, f"VM {p.vm_names[rules.units[u].vm]} may not be moved automatically")
            return
        target, _ = lay.place(u, include_own=include_own)
        if target is None:
            unmended.setdefault(rule, f"no datastore with room takes {lay.describe(u)}")
            return
        lay.move(u, target, "rule", detail, rule, mandatory=True)
        budget[0] -= 1

    for u, unit in enumerate(rules.units):
        if unit.rule is not None and len(set(lay.disk_ds[unit.disks].tolist())) > 1:
            send(u, unit.rule, f"rule {unit.rule}: keeps {p.vm_names[unit.vm]}'s disks together", include_own=True)
    for g in rules.disks_apart:
        where: dict[int, list[int]] = {}
        for k in g.disks.tolist():
            where.setdefault(int(lay.disk_ds[k]), []).append(k)
        for d, ks in where.items():
            ks.sort(key=lambda k: (-p.disk_space[k], k))  # the largest stays
            for k in ks[1:]:
                send(int(rules.unit_of_disk[k]), g.rule,
                     f"rule {g.rule}: {p.disk_names[ks[0]]} and {p.disk_names[k]} share {p.ds_names[d]}")
    for g in rules.vms_apart:
        where = {}
        for w in g.vms.tolist():
            for k in rules.disks_of(w).tolist():
                where.setdefault(int(lay.disk_ds[k]), {}).setdefault(w, []).append(k)
        for d, by_vm in where.items():
            if len(by_vm) < 2:
                continue
            keep = max(by_vm, key=lambda w: (sum(p.disk_space[k] for k in by_vm[w]), -w))
            names = " and ".join(p.vm_names[w] for w in by_vm)
            for w, ks in by_vm.items():
                if w == keep:
                    continue
                for u in sorted({int(rules.unit_of_disk[k]) for k in ks}):
                    if lay.disk_ds[rules.units[u].disks[0]] == d:
                        send(u, g.rule, f"rule {g.rule}: {names} have disks on {p.ds_names[d]}")
    for rule, why in unmended.items():
        out.notes.append(f"storage rule {rule} stays broken: {why}")


# --- 3. space ----------------------------------------------------------------------------------
def relief_levels(lay: Layout) -> np.ndarray:
    """(D,) the utilisation a datastore above the space threshold is relieved to, and the most a
    space move fills a target to: its pool's fullest datastore within the threshold, bounded to
    [threshold - relief_margin, threshold]."""
    p, o = lay.pool, lay.options
    util = lay.used / p.cap
    level = np.full(p.n_datastores, o.space_threshold - o.relief_margin)
    for q in range(len(p.pod_names)):
        within = (p.pod == q) & ~p.leaving & (util <= o.space_threshold + EPS)
        if within.any():
            level[p.pod == q] = min(o.space_threshold, max(float(util[within].max()), o.space_threshold - o.relief_margin))
    return level


def _units_on(lay: Layout, d: int) -> list[int]:
    """The units wholly on datastore ``d`` whose VM Storage DRS may move."""
    p, rules = lay.pool, lay.rules
    out = []
    for u in sorted({int(rules.unit_of_disk[k]) for k in np.flatnonzero(lay.disk_ds == d)}):
        unit = rules.units[u]
        if p.vm_auto[unit.vm] and (lay.disk_ds[unit.disks] == d).all():
            out.append(u)
    return out


def cover(sizes: list[float], need: float, ascending: bool = False) -> list[int]:
    """Indices into ``sizes`` of the fewest items whose sum reaches ``need`` and, of those, nearly the
    least sum: each pick is the smallest item that still lets the minimum count reach the rest.
    Returns them in the order picked (all of them when even all cannot reach it).
    ``ascending``: ``sizes`` is sorted already."""
    order = list(range(len(sizes))) if ascending else sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    vals = [sizes[i] for i in order]
    picked: list[int] = []
    while need > EPS and vals:
        # fewest items: the largest ones
        total, k = 0.0, 0
        for x in reversed(vals):
            total += x
            k += 1
            if total >= need - EPS:
                break
        if total < need - EPS:  # even everything falls short
            picked.extend(reversed(order))
            return picked
        top = sum(vals[len(vals) - (k - 1):]) if k > 1 else 0.0
        # the smallest item outside the top k-1 that, with them, reaches need
        i = bisect_left(vals, need - top - EPS, 0, len(vals) - (k - 1))
        picked.append(order[i])
        need -= vals[i]
        del vals[i]
        del order[i]
    return picked


def _relieve(lay: Layout, budget: list[int], src: int, need: float, reason: str, detail: str, targets,
             fullest: bool = False) -> float:
    """Move the units off ``src`` that cover ``need`` GB; returns the GB still short.

    ``targets()``: on the current layout, the (limit, mask) pairs a target is chosen by, preferred
    first: ``limit`` (D,) the most each datastore may hold after the move, ``mask`` (D,) bool the
    datastores that may take it at all."""
    pool = _units_on(lay, src)
    sizes = [float(lay.pool.disk_space[lay.rules.units[u].disks].sum()) for u in pool]
    ranked = sorted(range(len(pool)), key=lambda i: (sizes[i], pool[i]))
    pool, sizes = [pool[i] for i in ranked], [sizes[i] for i in ranked]  # ascending, as cover wants them
    while need > EPS and pool and budget[0] > 0:
        i = cover(sizes, need, ascending=True)[0]  # the next pick is judged on the layout the last one left
        u = pool[i]
        target = None
        for limit, mask in targets():
            target, _ = lay.place(u, headroom=limit, extra=mask, fullest=fullest)
            if target is not None:
                break
        del pool[i], sizes[i]
        if target is None:
            continue  # the cover changes without it
        need -= lay.move(u, target, reason, detail).size_gb
        budget[0] -= 1
    return max(need, 0.0)


def _relieve_space(lay: Layout, out: Choice, budget: list[int]) -> None:
    p, o = lay.pool, lay.options
    level = relief_levels(lay)
    over = [d for d in range(p.n_datastores) if not p.leaving[d] and lay.used[d] > lay.ceiling[d] + EPS]
    over.sort(key=lambda d: (-lay.util(d), d))
    for d in over:
        if budget[0] <= 0:
            out.notes.append(f"{p.ds_names[d]} stays above its space threshold: the move cap is reached")
            continue
        start = lay.util(d)
        detail = f"{p.ds_names[d]} at {pct(start)} is above the {pct(o.space_threshold)} space threshold"

        def targets(d=d):
            # a target at least min_space_difference less utilised than the source, filled to the
            # relief level, or else (no such target takes the unit) to the threshold
            mask = lay.used / p.cap <= lay.util(d) - o.min_space_difference + EPS
            if o.io_balancing:  # a space move does not send data to a datastore above the latency threshold
                mask &= ~(p.latency > o.latency_threshold_ms)
            return [(np.minimum(lay.ceiling, level[d] * p.cap), mask), (lay.ceiling, mask)]

        need = lay.used[d] - level[d] * p.cap[d]
        saved, left = lay.save(), budget[0]
        _relieve(lay, budget, d, need, "space", detail, targets)
        if lay.used[d] > lay.ceiling[d] + EPS and budget[0] > 0:
            # still above: filling the least utilised targets first used up those the source is
            # min_space_difference above. Try again filling the fullest that take a unit first, to the
            # threshold (the emptier ones are left for when the source is lower); keep the better
            first, spent = lay.save(), budget[0]
            lay.restore(saved)
            budget[0] = left
            _relieve(lay, budget, d, need, "space", detail, lambda d=d: targets(d)[1:], fullest=True)
            if lay.used[d] >= first[1][d] - EPS:
                lay.restore(first)
                budget[0] = spent
        if lay.used[d] > lay.ceiling[d] + EPS:
            why = "the move cap is reached" if budget[0] <= 0 else (
                "no disk there fits on another datastore of its pool that its VM's hosts mount, within the threshold, "
                f"that is at least {pct(o.min_space_difference)} less utilised")
            out.notes.append(f"{p.ds_names[d]} stays above its space threshold at {pct(lay.util(d))}: {why}")


# --- 4. latency --------------------------------------------------------------------------------
def _relieve_latency(lay: Layout, out: Choice, budget: list[int]) -> None:
    p, o = lay.pool, lay.options
    thr = o.latency_threshold_ms
    over = [d for d in range(p.n_datastores) if not p.leaving[d] and p.latency[d] > thr]
    over.sort(key=lambda d: (-p.latency[d], d))
    cool = p.latency < thr  # NaN (not measured): never a latency target
    base = lay.used.copy()  # the data each latency was measured with

    for d in over:
        if budget[0] <= 0:
            out.notes.append(f"{p.ds_names[d]} stays above its latency threshold: the move cap is reached")
            continue
        share = min(1.0 - thr / float(p.latency[d]), MAX_LATENCY_SHARE)
        need = share * float(base[d])
        detail = (f"{p.ds_names[d]} at {p.latency[d]:.1f} ms is above the {thr:g} ms latency threshold")

        def targets():
            # the predicted latency, lat x used / used at measurement, stays below the threshold
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(p.latency > 0, base * thr / p.latency, np.inf)
            return [(np.minimum(lay.ceiling, room), cool)]

        short = _relieve(lay, budget, d, need, "latency", detail, targets)
        if short > 0.5 * need:
            out.notes.append(f"{p.ds_names[d]} stays above its latency threshold ({p.latency[d]:.1f} ms): "
                             "no datastore measured below the threshold takes enough of its disks within space")
