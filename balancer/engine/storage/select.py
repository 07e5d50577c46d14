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
   cover the excess and, of those, nearly the ones that copy the least data (a few moves more
   when each cuts that datastore's data enough: a few disks that just reach the excess rather than
   one that far overshoots it; "enough" is a quarter, or, in a second plan, more than a move's
   fixed price in copy time, that cover tightened by swaps for smaller disks; the plan with the
   least predicted time is kept). A space move goes
   only to a target at least ``min_space_difference`` less utilised than the source at that
   step, the least utilised first, filled to the relief level (or, when none takes the unit so, to
   the threshold). When that leaves the source above the threshold, the source is planned again
   filling the fullest targets first, to the threshold (so the emptier ones are still eligible
   once the source is lower), and then with the largest units first; the best is kept. The
   stage is then held to the "largest disk off the fullest datastore" heuristic (baseline.py):
   its fullest datastore ends no fuller than the heuristic's with as many moves (see
   ``_relieve_space``);
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

import numpy as np

from ..budget import Allowance
from ..options import StorageOptions
from .baseline import fullest, largest_first
from .copy import MEGABITS_PER_GB, copy_seconds
from ..words import pct
from .layout import EPS, Choice, Layout, Step, units_on
from .pool import Pool
from .rules import StorageRules

MAX_LATENCY_SHARE = 0.5  # a datastore sheds at most half its data per plan for latency
MOVE_SECONDS = 30.0  # a Storage vMotion's fixed price beside its copy (mirror, switch-over, clean-up)
CAP_ROUNDS = 3  # rounds of relief to a cap (targets filled above it are relieved in the next)
# How many moves more than the fewest a datastore's relief may take, for less data: (the most, the
# share of the data that relief copies each must cut, or None: each when it saves more copy time
# than its MOVE_SECONDS, the cover then tightened by swaps). The space stage plans with each and
# keeps the plan with the least predicted time (see _relieve_space).
QUARTER = (2, 0.25)
PRICED = (4, None)
FEWEST = (0, None)  # the fewest moves only: one large unit may be held to the heuristic where a few small ones are not
SLACK_POLICIES = (QUARTER, PRICED, FEWEST)
FEWER_REVISIONS = 4  # revisions to fewer of the heuristic's moves tried per plan that does not hold

__all__ = ["Choice", "Layout", "Step", "choose", "cover", "tighten"]


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
    budget = options.moves_budget.allowance()
    if not options.evacuate:  # datastore maintenance: only the evacuation moves, as for hosts
        _mend_rules(lay, out, budget)
        for scope in space_scopes(lay):
            lay.scope = scope
            _relieve_space(lay, out, budget)
        lay.scope = None
        if lay.settings.io.any():
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
                                     f"its host mounts, within the {lay.settings.threshold_words(src)} space threshold")
            continue
        lay.move(u, target, "evacuate", f"{p.ds_names[src]} {why}", mandatory=True)


# --- 2. rules ----------------------------------------------------------------------------------
def _mend_rules(lay: Layout, out: Choice, budget: Allowance) -> None:
    p, rules = lay.pool, lay.rules
    unmended: dict[str, str] = {}

    def send(u: int, rule: str, detail: str, include_own: bool = False) -> None:
        if budget.spent:
            unmended.setdefault(rule, "the move cap is reached")
            return
        if not p.vm_auto[rules.units[u].vm]:
            unmended.setdefault(rule, f"VM {p.vm_names[rules.units[u].vm]} may not be moved automatically")
            return
        if not lay.settings.balanced[lay.home(u)]:
            unmended.setdefault(rule, f"datastore cluster {p.pod_names[p.pod[lay.home(u)]]} leaves its disks where they are "
                                      + ("(Storage DRS off there)" if not lay.settings.manual[lay.home(u)]
                                         else "(manual automation: a recommendation only)"))
            return
        target = None
        if include_own:  # gathering a VM's disks: onto the datastore already holding most of them, when it has room
            only = np.zeros(p.n_datastores, dtype=bool)
            only[lay.home(u)] = True
            target, _ = lay.place(u, include_own=True, extra=only)
        if target is None:
            target, _ = lay.place(u, include_own=include_own)
        if target is None:
            unmended.setdefault(rule, f"no datastore with room takes {lay.describe(u)}")
            return
        lay.move(u, target, "rule", detail, rule, mandatory=True)
        budget.take()

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
def space_scopes(lay: Layout) -> list[np.ndarray | None]:
    """The datastores the space stage judges together: all of them when they share one space threshold
    (no datastore cluster has one of its own), else the datastore clusters grouped by their threshold (a
    free-space pod, whose threshold differs per datastore, on its own), the group with a datastore
    furthest above its threshold first. Each is held to the largest-disk heuristic on its own: a datastore
    at 85 % within its pod's 90 % is not "the fullest" for a pod held to 80 % (no move crosses pools)."""
    p, thr = lay.pool, lay.settings.threshold
    if len(np.unique(thr)) <= 1:
        return [None]
    keys: dict[object, np.ndarray] = {}
    for q in range(len(p.pod_names)):
        members = p.pod == q
        values = np.unique(thr[members])
        key = float(values[0]) if len(values) == 1 else ("pod", q)
        keys[key] = keys.get(key, np.zeros(p.n_datastores, dtype=bool)) | members
    excess = {k: float(np.max(np.where(m & ~p.leaving, lay.used / p.cap - thr, -np.inf))) for k, m in keys.items()}
    return [keys[k] for k in sorted(keys, key=lambda k: (-excess[k], str(k)))]


def relief_levels(lay: Layout) -> np.ndarray:
    """(D,) the utilisation a datastore above the space threshold is relieved to, and the most a
    space move fills a target to: its pool's fullest datastore within the threshold, bounded to
    [threshold - relief_margin, threshold]."""
    p, o = lay.pool, lay.options
    util = lay.used / p.cap
    thr = lay.settings.threshold
    floor = np.maximum(thr - o.relief_margin, 0.0)
    level = floor.copy()
    for q in range(len(p.pod_names)):
        members = p.pod == q
        within = members & ~p.leaving & (util <= thr + EPS)
        if within.any():
            level[members] = np.minimum(thr[members], np.maximum(float(util[within].max()), floor[members]))
    return level


def fewest(sizes: list[float], need: float) -> int:
    """How many of ``sizes`` (ascending) it takes at least to reach ``need``: the largest ones'
    count (all of them, plus one, when even all fall short)."""
    total, k = 0.0, 0
    for x in reversed(sizes):
        if total >= need - EPS:
            return k
        total += x
        k += 1
    return k if total >= need - EPS else k + 1


def cover(sizes: list[float], need: float, ascending: bool = False, count: int = 0) -> list[int]:
    """Indices into ``sizes`` of the fewest items whose sum reaches ``need`` and, of those, nearly the
    least sum: each pick is the smallest item that still lets the minimum count reach the rest.
    ``count``: this many items in all when that is more than the fewest, for less data: each pick is
    then the smallest of the lowest run of as many items left of the count, consecutive in size
    order, that reaches the rest.
    Returns them in the order picked (all of them when even all cannot reach it).
    ``ascending``: ``sizes`` is sorted already."""
    order = list(range(len(sizes))) if ascending else sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    vals = [sizes[i] for i in order]
    picked: list[int] = []
    while need > EPS and vals:
        k = fewest(vals, need)
        if k > len(vals):  # even everything falls short
            picked.extend(reversed(order))
            return picked
        if count - len(picked) > k:
            # more items than the fewest: the smallest of the lowest run of that many consecutive
            # (in size order) items that reaches need
            k = min(count - len(picked), len(vals))
            run = sum(vals[:k])
            i = 0
            while run < need - EPS and i + k < len(vals):
                run += vals[i + k] - vals[i]
                i += 1
        else:
            top = sum(vals[len(vals) - (k - 1):]) if k > 1 else 0.0
            # the smallest item outside the top k-1 that, with them, reaches need
            i = bisect_left(vals, need - top - EPS, 0, len(vals) - (k - 1))
        picked.append(order[i])
        need -= vals[i]
        del vals[i]
        del order[i]
    return picked


def tighten(sizes: list[float], picked: list[int], need: float) -> list[int]:
    """``picked`` (indices into ``sizes``, ascending) with the same count and no less data than
    ``need``, made to copy less by swaps: while some picked item can be swapped for a smaller one
    not picked (or two picked ones for two smaller ones) with the sum still reaching ``need``, the
    swap that cuts the most is made. Returns the indices, largest first."""
    chosen = set(picked)
    total = sum(sizes[i] for i in chosen)
    if total < need - EPS:
        return sorted(chosen, key=lambda i: -sizes[i])
    free = [i for i in range(len(sizes)) if i not in chosen]  # ascending, as sizes

    def smallest_free(least: float, skip: tuple = ()) -> int | None:
        j = bisect_left([sizes[i] for i in free], least - EPS)
        while j < len(free) and free[j] in skip:
            j += 1
        return free[j] if j < len(free) else None

    while True:
        slack = total - need
        best = (EPS, None)
        for a in chosen:  # one for one: the smallest free item that keeps the sum at need
            b = smallest_free(sizes[a] - slack)
            if b is not None and sizes[a] - sizes[b] > best[0]:
                best = (sizes[a] - sizes[b], ((a,), (b,)))
        if best[1] is None and len(chosen) >= 2 and free:
            for a in chosen:  # two for two: the smallest free pair, the largest free item with the smallest
                for c in chosen:
                    if c <= a:
                        continue
                    room = sizes[a] + sizes[c] - slack
                    lo = free[0]
                    b = smallest_free(room - sizes[lo], skip=(lo,))
                    if b is not None and sizes[a] + sizes[c] - sizes[lo] - sizes[b] > best[0]:
                        best = (sizes[a] + sizes[c] - sizes[lo] - sizes[b], ((a, c), (lo, b)))
        if best[1] is None:
            return sorted(chosen, key=lambda i: (-sizes[i], i))
        out_, in_ = best[1]
        chosen.difference_update(out_)
        chosen.update(in_)
        total += sum(sizes[i] for i in in_) - sum(sizes[i] for i in out_)
        free = sorted((set(free) - set(in_)) | set(out_), key=lambda i: (sizes[i], i))


def _relieve(lay: Layout, budget: Allowance, src: int, need: float, reason: str, detail: str, targets,
             fullest: bool = False, largest: bool = False, slack: int = 0, tight: bool = False) -> float:
    """Move the units off ``src`` that cover ``need`` GB; returns the GB still short.

    ``targets()``: on the current layout, the (limit, mask) pairs a target is chosen by, preferred
    first: ``limit`` (D,) the most each datastore may hold after the move, ``mask`` (D,) bool the
    datastores that may take it at all. ``largest``: the largest unit first instead of the cover's
    pick (the most relief per move while targets are still eligible). ``slack``: up to this many moves
    more than the fewest, each pick the smallest that lets the moves left reach the rest (less data)."""
    pool = units_on(lay, src)
    sizes = [float(lay.pool.disk_space[lay.rules.units[u].disks].sum()) for u in pool]
    ranked = sorted(range(len(pool)), key=lambda i: (sizes[i], pool[i]))
    pool, sizes = [pool[i] for i in ranked], [sizes[i] for i in ranked]  # ascending, as cover wants them
    allowed, made = fewest(sizes, need) + slack, 0
    while need > EPS and pool and not budget.spent:
        # the next pick is judged on the layout the last one left
        if largest:
            i = len(sizes) - 1
        else:
            picked = cover(sizes, need, ascending=True, count=allowed - made)
            i = tighten(sizes, picked, need)[0] if tight else picked[0]
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
        budget.take()
        made += 1
    return max(need, 0.0)


def _relieve_space(lay: Layout, out: Choice, budget: Allowance) -> None:
    """Relieve the datastores above the space threshold, held to the "largest disk off the fullest
    datastore" heuristic (baseline.py).

    The plan: each datastore above the threshold, fullest first, relieved to its relief level by the
    cover. When that leaves the fullest datastore above threshold - 2 x relief_margin (a relief
    margin below the relief floor: lower, copying more to lower it further is not worth it) while the heuristic, with as many moves from the same layout, would leave it lower, the
    heuristic's plan is revised instead: every datastore above the heuristic's level is relieved to
    it, by the cover, with at most as many moves as the heuristic made off it (so the count is at
    most the heuristic's and the fullest datastore no fuller, and the cover copies less than its
    largest disks); and revised to the levels the heuristic leaves after fewer moves, the first
    ``FEWER_REVISIONS`` counts whose level is no higher than that plan's own fullest datastore (a
    higher level to hold to: often less data). Each of these is made with every slack policy
    (SLACK_POLICIES), the revisions for each own plan that does not hold. Of the plans that hold to the heuristic, the one with the least predicted
    Storage vMotion time is kept (its copies plus ``MOVE_SECONDS`` a move); when neither does, the
    heuristic's own moves are taken."""
    p, o = lay.pool, lay.options
    start, left, notes = lay.save(), budget.left, list(out.notes)

    def attempt(policy: tuple, cap: float | None = None, allowance: dict[int, int] | None = None) -> tuple:
        lay.restore(start)
        budget.left = left
        out.notes[:] = notes
        _relieve_to(lay, out, budget, cap, allowance, policy)
        moved = lay.steps[start[2]:]
        return (sum(st.size_gb for st in moved), len(moved), fullest(lay), lay.save(), left - len(moved),
                list(out.notes), policy)

    def keep(plan: tuple) -> None:
        lay.restore(plan[3])
        budget.left = plan[4]
        out.notes[:] = plan[5]

    def predicted(plan: tuple) -> tuple:
        """The plan's predicted Storage vMotion time (the copies plus a fixed price a move), then its moves."""
        return round(copy_seconds(plan[0], o.copy_mbps) + MOVE_SECONDS * plan[1], 6), plan[1]

    own = [attempt(policy) for policy in SLACK_POLICIES]
    first = own[0][1]  # (QUARTER's count: the heuristic's own moves below, when no plan holds)
    if not o.hold_to_heuristic:  # the stage's own plan
        keep(min(own, key=predicted))
        return
    if not any(plan[1] for plan in own):
        keep(own[0])
        return
    # (the lowest space threshold in service in the scope: every datastore's in a scope but a free-space pod's)
    ok = lay.in_service()
    low_threshold = float(lay.settings.threshold[ok].min()) if ok.any() else 1.0
    trial = Layout(p, lay.rules, o)
    trial.restore(start)
    span = min(left, max(plan[1] for plan in own) + 8)
    reached = largest_first(trial, span)  # the fullest datastore after 0, 1, ... of its moves

    def bound(n: int) -> float | None:
        if n < len(reached):
            return reached[n]
        return reached[-1] if len(reached) <= span else None  # it stopped: more moves change nothing

    def holds(plan: tuple) -> bool:
        if plan[2] <= low_threshold - 2 * o.relief_margin + EPS:
            return True  # the fullest datastore ends a relief margin below the relief floor
        b = bound(plan[1])
        return b is not None and plan[2] <= b + EPS

    def revised(plan: tuple, n: int) -> tuple:
        """``plan``'s policy held to the heuristic's first ``n`` moves: every datastore relieved to the
        level they leave, with at most as many moves off each as they make."""
        allowance: dict[int, int] = {}
        for st in trial.steps[start[2]:start[2] + n]:
            allowance[st.disks[0][1]] = allowance.get(st.disks[0][1], 0) + 1
        return attempt(plan[6], reached[n], allowance)

    plans = list(own)
    for plan in own:
        if holds(plan):
            continue
        n = min(plan[1], len(trial.steps))
        plans.append(revised(plan, n))
        # Fewer of the heuristic's moves leave a higher level to be held to, so the revision may copy
        # less: the first few counts whose level is no higher than this plan's own fullest datastore
        # (never a fuller end than the plan the stage wanted).
        fewer = [k for k in range(1, n) if reached[k] <= plan[2] + EPS][:FEWER_REVISIONS]
        plans.extend(revised(plan, k) for k in fewer)
    good = [plan for plan in plans if holds(plan)]
    if good:
        # the least predicted Storage vMotion time: the copies plus a fixed price a move
        keep(min(good, key=predicted))
        return
    # the heuristic's own moves, as many as the first plan made
    lay.restore(start)
    budget.left = left
    out.notes[:] = notes
    largest_first(lay, first)
    budget.left -= len(lay.steps) - start[2]
    for d in range(p.n_datastores):
        if not p.leaving[d] and lay.used[d] > lay.ceiling[d] + EPS:
            out.notes.append(f"{p.ds_names[d]} stays above its space threshold at {pct(lay.util(d))}: "
                             + ("the move cap is reached" if budget.spent else "no disk there fits elsewhere"))


def _relieve_to(lay: Layout, out: Choice, budget: Allowance, cap: float | None = None,
                allowance: dict[int, int] | None = None, policy: tuple = QUARTER) -> None:
    """Relieve each datastore above the space threshold (with ``cap``: above ``cap``), fullest first, to
    its relief level (with ``cap``: to ``cap``), by the cover: the fewest moves, or more by ``policy``
    (SLACK_POLICIES: up to its most, each when it cuts the data copied enough); with ``allowance`` (datastore ->
    moves), never more moves off a datastore than that."""
    p, o = lay.pool, lay.options
    level = relief_levels(lay)
    if cap is not None:  # every datastore relieved to the cap (no further margin: it would cost moves)
        level = np.minimum(cap, lay.settings.threshold)
    # the most a datastore may keep, and a target take when none takes a unit within the relief level
    goal = lay.ceiling if cap is None else np.minimum(lay.ceiling, cap * p.cap)
    allowance = dict(allowance) if allowance is not None else None  # moves left off each datastore
    tried: set[int] = set()
    for _ in range(1 if cap is None else CAP_ROUNDS):  # (a target filled above the cap is relieved in turn)
        ok = lay.in_service()
        over = [d for d in range(p.n_datastores) if ok[d] and lay.used[d] > goal[d] + EPS
                and d not in tried and (allowance is None or allowance.get(d, 0) > 0)]
        if not over:
            break
        over.sort(key=lambda d: (-lay.util(d), d))
        tried.update(over)
        for d in over:
            made = len(lay.steps)
            _relieve_one(lay, out, budget, d, level, goal, allowance, policy)
            if allowance is not None:
                allowance[d] = allowance.get(d, 0) - (len(lay.steps) - made)


def _cheaper(lay: Layout, first: int, copied: float, count: int, gain: float | None) -> bool:
    """Whether the steps from ``first`` on copy enough less than the ``copied`` GB of ``count`` moves:
    by at least the share ``gain`` of it, or (``gain`` None) by more than their extra moves' price."""
    now = sum(st.size_gb for st in lay.steps[first:])
    extra = len(lay.steps) - first - count
    if gain is not None:
        return now <= (1 - gain) * copied + EPS
    price = MOVE_SECONDS * lay.options.copy_mbps / MEGABITS_PER_GB  # GB a move's fixed price is worth
    return now + price * extra < copied - EPS


def _relieve_one(lay: Layout, out: Choice, budget: Allowance, d: int, level: np.ndarray, goal: np.ndarray,
                 allowance: dict[int, int] | None, policy: tuple = QUARTER) -> None:
    """Relieve datastore ``d`` to ``level[d]`` (see _relieve_to)."""
    p, o = lay.pool, lay.options
    if budget.spent:
        if lay.used[d] > lay.ceiling[d] + EPS:
            out.notes.append(f"{p.ds_names[d]} stays above its space threshold: the move cap is reached")
        return
    start = lay.util(d)
    if lay.used[d] > lay.ceiling[d] + EPS:
        detail = f"{p.ds_names[d]} at {pct(start)} is above the {lay.settings.threshold_words(d)} space threshold"
    else:
        detail = f"{p.ds_names[d]} at {pct(start)} is above the {pct(level[d])} relief level"

    def targets(d=d):
        # a target at least min_space_difference less utilised than the source, filled to the
        # relief level, or else (no such target takes the unit) to the threshold
        mask = lay.used / p.cap <= lay.util(d) - lay.settings.min_difference[d] + EPS
        # a space move does not send data to a datastore above the latency threshold (where latency is judged)
        mask &= ~(lay.settings.io & (p.latency > lay.settings.latency))
        return [(np.minimum(lay.ceiling, level[d] * p.cap), mask), (lay.ceiling, mask)]

    need = lay.used[d] - level[d] * p.cap[d]
    saved, left = lay.save(), budget.left
    _relieve(lay, budget, d, need, "space", detail, targets)
    most, gain = policy
    if not budget.spent and lay.used[d] <= goal[d] + EPS:
        # moves more than the fewest when they cut the data this datastore's relief copies enough
        # (one large disk that overshoots the need, against a few that just reach it); every count up
        # to the policy's most is tried (one that cannot reach the level does not end the search),
        # each against the best so far
        best, spent = lay.save(), budget.left
        for extra in range(1, most + 1):
            copied = sum(st.size_gb for st in best[3][saved[2]:])
            lay.restore(saved)
            budget.left = left
            _relieve(lay, budget, d, need, "space", detail, targets, slack=extra, tight=gain is None)
            if not (lay.used[d] > goal[d] + EPS
                    or lay.used[d] > max(best[1][d], level[d] * p.cap[d]) + EPS  # (less relieved than the best)
                    or (allowance is not None and len(lay.steps) - saved[2] > allowance.get(d, 0))
                    or not _cheaper(lay, saved[2], copied, len(best[3]) - saved[2], gain)):
                best, spent = lay.save(), budget.left
        lay.restore(best)
        budget.left = spent
    if lay.used[d] > goal[d] + EPS and not budget.spent:
        # still above: filling the least utilised targets first used up those the source is
        # min_space_difference above. Try again filling the fullest that take a unit first, to the
        # threshold (the emptier ones are left for when the source is lower); keep the better
        first, spent = lay.save(), budget.left
        lay.restore(saved)
        budget.left = left
        _relieve(lay, budget, d, need, "space", detail, lambda d=d: targets(d)[-1:], fullest=True)
        if lay.used[d] >= first[1][d] - EPS:
            lay.restore(first)
            budget.left = spent
    if lay.used[d] > goal[d] + EPS and not budget.spent:
        # still above: the targets ran out as the source came down. Try the largest units first
        # (the most relief while the most targets are eligible); keep the better
        best, spent = lay.save(), budget.left
        lay.restore(saved)
        budget.left = left
        _relieve(lay, budget, d, need, "space", detail, targets, largest=True)
        if lay.used[d] >= best[1][d] - EPS:
            lay.restore(best)
            budget.left = spent
    if lay.used[d] > lay.ceiling[d] + EPS:
        why = "the move cap is reached" if budget.spent else (
            "no disk there fits on another datastore of its pool that its VM's hosts mount, within the threshold, "
            f"that is at least {pct(lay.settings.min_difference[d])} less utilised")
        out.notes.append(f"{p.ds_names[d]} stays above its space threshold at {pct(lay.util(d))}: {why}")


# --- 4. latency --------------------------------------------------------------------------------
def _relieve_latency(lay: Layout, out: Choice, budget: Allowance) -> None:
    p = lay.pool
    lat = lay.settings.latency  # (D,) each datastore's latency threshold
    over = [d for d in range(p.n_datastores) if not p.leaving[d] and lay.settings.io[d] and p.latency[d] > lat[d]
            and lay.settings.balanced[d]]
    over.sort(key=lambda d: (-p.latency[d], d))
    cool = p.latency < lat  # NaN (not measured): never a latency target
    base = lay.used.copy()  # the data each latency was measured with

    for d in over:
        if budget.spent:
            out.notes.append(f"{p.ds_names[d]} stays above its latency threshold: the move cap is reached")
            continue
        thr = float(lat[d])
        share = min(1.0 - thr / float(p.latency[d]), MAX_LATENCY_SHARE)
        need = share * float(base[d])
        detail = (f"{p.ds_names[d]} at {p.latency[d]:.1f} ms is above the {thr:g} ms latency threshold")

        def targets():
            # the predicted latency, lat x used / used at measurement, stays below the threshold
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(p.latency > 0, base * lat / p.latency, np.inf)
            return [(np.minimum(lay.ceiling, room), cool)]

        short = _relieve(lay, budget, d, need, "latency", detail, targets)
        if short > 0.5 * need:
            out.notes.append(f"{p.ds_names[d]} stays above its latency threshold ({p.latency[d]:.1f} ms): "
                             "no datastore measured below the threshold takes enough of its disks within space")
