"""DRS's published move selection, re-implemented for comparison: greedy hill-climbing.

1. **Constraint correction** first, as DRS does: the repairs every planner shares
   (optimizer.mend, repair.py): VMs on hosts that are not on or that a mandatory VM–host rule
   forbids, sharing a host with a member of their mandatory anti-affinity rule, split from
   their mandatory affinity group, hosts above physical capacity, then hosts above capacity
   minus headroom -- never breaking a hard obligation that holds.
2. **Load balancing**: while the imbalance is above the threshold's target and the move
   budget lasts, evaluate every movable VM on every compatible host and take the single move
   that lowers the imbalance most, provided it gains at least the threshold's minimum
   (MinGoodness) plus the price of its vMotion (DRS's cost–benefit filter, with the same
   pre-copy cost model the optimiser uses). A balancing move never breaks a rule, mandatory
   or should (a should-rule may give way to mandatory repairs, not to balance -- the same
   rules the optimiser balances under), never exceeds a host's bound (capacity minus
   headroom, or what it carries now if more), and never moves a member of an affinity group
   (it cannot move the group as one).

The budget (``max_moves``) counts balancing moves: VMs away from the repaired placement; moving
a moved VM on is free, moving it home refunds. Repairs do not count against it.
"""

from __future__ import annotations

import math

import numpy as np

from .balance import MIN_GAIN, move_delta, needs_balancing, target_imbalance
from .cluster import BALANCED, Cluster, automatic_first
from .optimizer import Mended, OptimiseResult, mend, move_costs
from ..options import PlanOptions

CHUNK = 2048  # candidate VMs scored at once, at most (the score matrices stay in the CPU's cache)
FIRST_BATCH = 128  # candidate VMs scored first in a step, those with the largest bounds



def hill_climb(cluster: Cluster, options: PlanOptions, prices: np.ndarray | None = None,
               mended: Mended | None = None) -> OptimiseResult:
    """The baseline planner: the repairs every planner shares (optimizer.mend: hard violations, then
    the headroom limit), then the hill-climb from the repaired placement within ``options.max_moves``.

    ``prices``: ``move_costs(cluster, options)`` and ``mended``: ``mend(cluster, options, prices)``
    when the caller has them. Run with one BLAS thread (``threadpool_limits``): its matrix products are small."""
    prices = move_costs(cluster, options) if prices is None else prices
    mended = mended or mend(cluster, options, prices)
    place = mended.place
    steps = mended.moves
    budget = options.moves_budget.limit(cluster.n_vms)
    work = mended.for_balancing(cluster)  # never refills a host the repairs brought under its limit
    if budget > 0 and needs_balancing(work, work.host_loads(place), options.threshold):
        place, n = climb(work, options, place, budget, mended.place, prices)
        steps += n
    return OptimiseResult(place, steps, steps, False, **mended.result_fields())


def climb(cluster: Cluster, options: PlanOptions, place: np.ndarray, budget: int,
          place0: np.ndarray, prices: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Best single move at a time until the target imbalance, the cost-benefit filter or ``budget``.

    Returns the placement and the number of steps taken.
    """
    place = place.copy()
    on = cluster.on
    steps = 0
    if cluster.n_vms == 0 or on.sum() < 2:
        return place, steps
    min_gain = options.min_gain if options.min_gain is not None else MIN_GAIN[options.threshold]
    if math.isinf(min_gain):
        return place, steps
    prices = move_costs(cluster, options) if prices is None else prices
    target = target_imbalance(options.threshold, int(on.sum()))
    grouped = np.zeros(cluster.n_vms, dtype=bool)
    for g in cluster.together:
        grouped[g.vms] = True
    in_rules = np.zeros(cluster.n_vms, dtype=bool)
    partners: dict[int, list[np.ndarray]] = {}  # anti-affinity partners, mandatory or should
    for g in cluster.apart:
        in_rules[g.vms] = True
        for v in g.vms:
            partners.setdefault(int(v), []).append(g.vms[g.vms != v])
    partners_of = {v: np.concatenate(p) for v, p in partners.items()}
    soft_host = np.ones((cluster.n_vms, cluster.n_hosts), dtype=bool)  # should VM-host rules kept
    for g in cluster.host_sets:
        if not g.mandatory and len(g.vms):
            soft_host[g.vms] &= g.ok[None, :]
    candidates = automatic_first(cluster, np.flatnonzero(cluster.movable & cluster.powered & ~grouped & on[place]))
    if not len(candidates):
        return place, steps
    loads = cluster.host_loads(place)
    cand_load = cluster.load[candidates]
    static = cluster.allowed[candidates] & on[None, :]  # mandatory VM-host rules, host states, holds
    soft_c = soft_host[candidates]
    all_hosts = np.arange(cluster.n_hosts)

    def may_go(r: np.ndarray | slice, hosts: np.ndarray | slice) -> np.ndarray:
        """Rows ``r`` of candidates, columns ``hosts``: allowed, within the bound, keeping the should
        VM-host rules the VM keeps now, not its own host (mandatory anti-affinity is judged per step)."""
        where = place[candidates[r]]
        room = cluster.bound[hosts] + 1e-6 - loads[hosts]
        ok = np.all(cand_load[r, None, :] <= room[None, :, :], axis=2)  # CPU, memory and the tallies
        ok &= static[r][:, hosts]
        soft = soft_c[r]
        keeps = soft[np.arange(len(where)), where]
        ok &= ~keeps[:, None] | soft[:, hosts]
        ok &= where[:, None] != all_hosts[hosts][None, :]
        return ok

    n_on = int(on.sum())
    w = 1.0 / cluster.cap[:, BALANCED]  # (H, 2)
    w_max, w_min = w[on].max(axis=0), w[on].min(axis=0)
    rule_row = in_rules[candidates]
    # Which (candidate, host) pairs are allowed changes only in the moved VM's row and the two hosts'
    # columns after a move: kept up to date instead of rebuilt.
    ok = may_go(slice(None), slice(None))
    # best[c]: an upper bound of candidate c's largest gain over the hosts it may go to (inf: unknown).
    # A move changes a VM's gains only through the mean utilisation (by a bounded amount), except on
    # the two hosts involved (scored exactly for every VM) and for the VMs on them (scored again):
    # each step scores exactly only the VMs whose bound could beat the best move found, largest
    # bound first -- the same choice as scoring them all.
    best = np.full(len(candidates), np.inf)
    floor = np.nextafter(1e-12, np.inf)  # a move must lower the imbalance (gain > 1e-12)
    while True:
        u = loads[on][:, BALANCED] / cluster.cap[on][:, BALANCED]
        if u.std(axis=0).max() <= target:
            break  # DRS's published climb stops at the target imbalance (the pairwise gap does not keep it going)
        spent = int((place != place0).sum())
        home = place0[candidates] == place[candidates]
        # prices: MinGoodness + vMotion cost when leaving home; with the budget spent only VMs away move on
        need = np.maximum(np.where(home, prices[candidates], min_gain), floor)
        if spent >= budget:
            need[home] = np.inf
        bound = np.where(best + 1e-12 >= need, best, -np.inf)
        todo = np.isfinite(need) & (bound > -np.inf)
        top, top_row, top_host = -np.inf, -1, -1
        batch = FIRST_BATCH
        while True:
            rows = np.flatnonzero(todo & (bound + 1e-12 >= top))
            if not len(rows):
                break
            if len(rows) > batch:  # the largest bounds first; the batch grows while the bounds keep up
                rows = np.sort(rows[np.argpartition(-bound[rows], batch)[:batch]])
                batch = min(2 * batch, CHUNK)
            todo[rows] = False
            gain = -move_delta(cluster, cluster.on, loads, place, candidates[rows])
            for i in np.flatnonzero(rule_row[rows]):
                gain[i, place[partners_of[int(candidates[rows[i]])]]] = -np.inf  # never join an anti-affinity partner
            gain = np.where(ok[rows], gain, -np.inf)
            best[rows] = gain.max(axis=1)
            score = np.where(gain >= need[rows, None], gain, -np.inf)
            i = int(np.argmax(score))
            r, h = divmod(i, cluster.n_hosts)
            row = int(rows[r])
            if score[r, h] > top or (score[r, h] == top and row < top_row and np.isfinite(top)):
                top, top_row, top_host = float(score[r, h]), row, h
        if top_row < 0:
            break
        r, h = top_row, top_host
        v = int(candidates[r])
        s = int(place[v])
        S1_before = u.sum(axis=0)
        loads[s] -= cluster.load[v]
        loads[h] += cluster.load[v]
        place[v] = h
        steps += 1
        ok[r] = may_go(np.array([r]), slice(None))[0]
        cols = np.array([s, h])
        ok[:, cols] = may_go(slice(None), cols)
        # bounds after the move: on hosts other than s and h a VM's gain changes by
        # Σ_r 2 ΔS1_r / N · load_r · (w_d,r − w_src,r)
        dS1 = (loads[on][:, BALANCED] / cluster.cap[on][:, BALANCED]).sum(axis=0) - S1_before
        w_src = w[place[candidates]]
        spread = np.where(dS1 >= 0, dS1 * (w_max - w_src), dS1 * (w_min - w_src))
        best += (2.0 / n_on * cand_load[:, BALANCED] * spread).sum(axis=1) + 1e-12
        on_two = -move_delta(cluster, cluster.on, loads, place, candidates, cols)
        best = np.maximum(best, np.where(ok[:, cols], on_two, -np.inf).max(axis=1))
        where = place[candidates]
        best[(where == s) | (where == h)] = np.inf  # their own host's load changed: scored again
        if in_rules[v]:
            best[np.isin(candidates, partners_of[v])] = np.inf  # where its partners may go changed
    return place, steps
