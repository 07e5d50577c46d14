"""DRS's published move selection, for comparison: greedy hill-climbing.

While the imbalance is above the threshold's target and the move budget lasts, evaluate
every movable VM on every compatible host and take the single move that lowers the
imbalance most, provided it gains at least the threshold's minimum (MinGoodness) and
respects capacity and the mandatory rules. It does not mend broken rules and never
moves a VM of a mandatory affinity group (it cannot move the group as one).
"""

from __future__ import annotations

import math

import numpy as np

from .balance import MIN_GAIN, needs_balancing, target_imbalance
from .cluster import Cluster
from .optimizer import OptimiseResult
from .options import PlanOptions


def hill_climb(cluster: Cluster, options: PlanOptions) -> OptimiseResult:
    """The baseline planner: hill-climb from the current placement."""
    place0 = cluster.place.copy()
    if not needs_balancing(cluster, cluster.host_loads(place0), options.threshold):
        return OptimiseResult(place0, 0, 0, False)
    budget = options.max_moves if options.max_moves is not None else cluster.n_vms
    place = climb(cluster, options, place0, budget, place0)
    moves = int((place != place0).sum())
    return OptimiseResult(place, moves, moves, False)


def climb(cluster: Cluster, options: PlanOptions, place: np.ndarray, budget: int, place0: np.ndarray,
          focus_hosts: int | None = None) -> np.ndarray:
    """Best single move at a time, until the target imbalance, MinGoodness or ``budget`` moves.

    ``budget`` counts VMs away from ``place0``: moving a VM again, or back home, is free or refunds.
    ``focus_hosts``: consider only VMs on that many of the most loaded hosts at each step (faster
    on large clusters; the baseline considers every VM).
    """
    place = place.copy()
    on = cluster.on
    if cluster.n_vms == 0 or on.sum() < 2 or budget <= 0:
        return place
    min_gain = options.min_gain if options.min_gain is not None else MIN_GAIN[options.threshold]
    if math.isinf(min_gain):
        return place
    n_on = int(on.sum())
    target = target_imbalance(options.threshold, n_on)
    in_affinity = np.zeros(cluster.n_vms, dtype=bool)
    for g in cluster.affine:
        if g.mandatory:
            in_affinity[g.vms] = True
    candidates = np.flatnonzero(cluster.movable & ~in_affinity & on[place])
    if not len(candidates):
        return place
    loads = cluster.host_loads(place)
    cap = cluster.cap
    frac = cluster.load[candidates][:, None, :] / cap[None, :, :]  # (C, H, 2) VM's share of each host
    home = place0[candidates]
    while True:
        spent = int((place != place0).sum())
        u = loads / cap
        uo = u[on]
        S1 = uo.sum(axis=0)
        S2 = (uo**2).sum(axis=0)
        var = S2 / n_on - (S1 / n_on) ** 2
        if math.sqrt(max(var.max(), 0.0)) <= target:
            break
        rows = np.arange(len(candidates))
        if focus_hosts is not None and focus_hosts < n_on:
            heat = np.where(on, (u - S1 / n_on).max(axis=1), -np.inf)
            hot = np.zeros(cluster.n_hosts, dtype=bool)
            hot[np.argsort(-heat, kind="stable")[:focus_hosts]] = True
            rows = np.flatnonzero(hot[place[candidates]])
            if not len(rows):
                break
        cand = candidates[rows]
        src = place[cand]
        frac_c = frac[rows]
        d_src = frac_c[np.arange(len(cand)), src]  # (C, 2)
        u_src = u[src]  # (C, 2)
        u_dst = u[None, :, :]  # (1, H, 2)
        # Σ u² and Σ u after moving candidate c to host h
        new_S2 = S2 - u_src**2 + (u_src - d_src) ** 2
        new_S2 = new_S2[:, None, :] - u_dst**2 + (u_dst + frac_c) ** 2
        new_S1 = (S1 - d_src)[:, None, :] + frac_c
        new_var = (new_S2 / n_on - (new_S1 / n_on) ** 2).sum(axis=2)  # (C, H)
        gain = var.sum() - new_var
        ok = cluster.allowed[cand] & on[None, :]
        ok &= np.all(loads[None, :, :] + cluster.load[cand][:, None, :] <= cluster.bound[None, :, :] + 1e-6, axis=2)
        ok[np.arange(len(cand)), src] = False
        if spent >= budget:  # only VMs already away from home may move on (or back)
            ok[src == home[rows]] = False
        for g in cluster.anti:
            if not g.mandatory:
                continue
            pos = np.searchsorted(cand, g.vms)
            present = (pos < len(cand)) & (cand[np.minimum(pos, len(cand) - 1)] == g.vms)
            for p in pos[present]:
                others = [int(o) for o in g.vms if o != cand[p]]
                ok[p, place[others]] = False
        gain = np.where(ok, gain, -np.inf)
        best = int(np.argmax(gain))
        c, h = divmod(best, cluster.n_hosts)
        if not np.isfinite(gain[c, h]) or gain[c, h] * n_on < min_gain:
            break
        v = int(cand[c])
        loads[place[v]] -= cluster.load[v]
        loads[h] += cluster.load[v]
        place[v] = h
        if spent >= budget and int((place != place0).sum()) > budget:
            break
    return place
