"""``drs.model: vm-score``: after the planner's plan (repairs, headroom, should-rules, balance, in the order of
obligations), move VMs off hosts that serve them badly to hosts that serve them better (the VM score,
vmscore.py), one move at a time, while a move pays for itself.

The objective is the sum over the powered-on VMs of (1 - score / 100)²: a VM served at 40 weighs nine times one
served at 80, so the worst-served VMs are raised first, and a move must not cost the VMs already on its target
more than it gains. A move's gain must reach its price in the imbalance mode's currency (move_costs:
MinGoodness plus the predicted vMotion seconds), and it counts against ``max_moves`` as a balancing move.

A move is taken only when it keeps every obligation the imbalance mode keeps: the VM may move automatically
and is not in an affinity group (moved as one by the planners, not here), nor moved by the repairs, nor on a
host that is not on; its target is allowed (mandatory VM-host rules, host duties and compatibility, health and
network closures, anti-oscillation holds), stays within its headroom limit in every column (CPU, memory, the
tallies), runs no anti-affinity partner of it (mandatory or should) and keeps the should VM-host rules the VM
keeps now. Leaving a host breaks nothing. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .balance import MIN_GAIN
from .cluster import BALANCED, Cluster
from .optimizer import OptimiseResult, move_costs
from .vmscore import ScoreInputs, with_residuals
from ..options import PlanOptions

CANDIDATES = 24  # the worst-served movable VMs weighed at each step


def cluster_score_inputs(cluster: Cluster) -> ScoreInputs:
    """The score's inputs as the planner sees the cluster (its demand and entitlements; residuals measured at
    the snapshot's placement)."""
    V = cluster.n_vms
    demand = (cluster.wanted if cluster.wanted is not None else cluster.load)[:, BALANCED]
    inp = ScoreInputs(demand=demand, entitled=cluster.load[:, BALANCED], mem_mb=cluster.mem_mb,
                      powered=cluster.powered, cap=cluster.cap[:, BALANCED], ready_resid=np.zeros(V),
                      reclaim_resid=np.zeros(V))
    return with_residuals(inp, cluster.snapshot.vms, cluster.place)


def _penalty(scores: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(scores), 0.0, (1.0 - scores / 100.0) ** 2)


def raise_scores(cluster: Cluster, options: PlanOptions, result: OptimiseResult
                 ) -> tuple[OptimiseResult, dict[int, tuple[float, float]]]:
    """``result`` with score moves added (module doc), and per VM moved for its score its score before → after
    its move."""
    min_gain = options.min_gain if options.min_gain is not None else MIN_GAIN[options.threshold]
    moved: dict[int, tuple[float, float]] = {}
    if cluster.n_vms == 0 or cluster.on.sum() < 2 or math.isinf(min_gain) or options.threshold <= 1:
        return result, moved
    place = result.place.copy()
    spent = int((place != cluster.place).sum()) - int(result.repair_moves)
    left = options.moves_budget.limit(cluster.n_vms) - max(spent, 0)
    if left <= 0:
        return result, moved
    inp = cluster_score_inputs(cluster)
    prices = move_costs(cluster, options)
    on = cluster.on
    free = cluster.movable & cluster.powered & ~cluster.must_leave
    if cluster.manual is not None:
        free &= ~cluster.manual  # an admin's to move
    for g in cluster.together:
        free[g.vms] = False
    if result.repair_rank is not None:
        free &= result.repair_rank < 0
    partners: dict[int, list[np.ndarray]] = {}
    for g in cluster.apart:
        for v in g.vms:
            partners.setdefault(int(v), []).append(g.vms[g.vms != v])
    soft_host = np.ones((cluster.n_vms, cluster.n_hosts), dtype=bool)
    for g in cluster.host_sets:
        if not g.mandatory and len(g.vms):
            soft_host[g.vms] &= g.ok[None, :]
    ceiling = np.minimum(cluster.bound, cluster.limit) + 1e-6
    cap = cluster.cap[:, BALANCED]
    loads = cluster.host_loads(place)
    hosts = np.arange(cluster.n_hosts)
    while left > 0:
        u = loads[:, BALANCED] / cap
        scores = inp.scores_at(np.arange(cluster.n_vms), u[place])
        pen = _penalty(scores)
        host_pen = np.zeros(cluster.n_hosts)
        np.add.at(host_pen, place, pen)
        pool = np.flatnonzero(free & on[place] & (scores < 100.0 - 1e-9))
        if not len(pool):
            break
        cands = pool[np.argsort(scores[pool], kind="stable")[:CANDIDATES]]
        ld = cluster.load[cands]  # (C, R)
        src = place[cands]
        # the source hosts without each candidate
        u_src = (loads[src][:, BALANCED] - ld[:, BALANCED]) / cap[src]
        src_after = np.zeros(len(cands))
        for i, (v, s) in enumerate(zip(cands, src)):
            others = np.flatnonzero((place == s) & (np.arange(cluster.n_vms) != v))
            if len(others):
                src_after[i] = _penalty(inp.scores_at(others, u_src[i][None, :])).sum()
        gain = np.full((len(cands), cluster.n_hosts), -np.inf)
        ok = cluster.allowed[cands] & on[None, :] & (src[:, None] != hosts[None, :])
        ok &= np.all(ld[:, None, :] <= (ceiling - loads)[None, :, :], axis=2)
        keeps = soft_host[cands, src]
        ok &= ~keeps[:, None] | soft_host[cands]
        for i, v in enumerate(cands):
            for p in partners.get(int(v), ()):
                ok[i, place[p]] = False
        for t in np.flatnonzero(ok.any(axis=0)):
            rows = np.flatnonzero(ok[:, t])
            u_t = (loads[t, BALANCED][None, :] + ld[rows][:, BALANCED]) / cap[t]  # (c, 2)
            on_t = np.flatnonzero(place == t)
            after = _penalty(inp.scores_at(cands[rows], u_t))
            if len(on_t):
                after = after + _penalty(inp.scores_at(on_t[None, :], u_t[:, None, :])).sum(axis=1)
            before = host_pen[src[rows]] + host_pen[t]
            gain[rows, t] = before - (src_after[rows] + after)
        need = prices[cands]
        score = np.where(gain >= need[:, None], gain, -np.inf)
        i = int(np.argmax(score))
        r, t = divmod(i, cluster.n_hosts)
        if not np.isfinite(score[r, t]) or score[r, t] <= 1e-12:
            break
        v = int(cands[r])
        s = int(place[v])
        was = float(scores[v])
        loads[s] -= cluster.load[v]
        loads[t] += cluster.load[v]
        if place[v] == cluster.place[v]:
            left -= 1
        place[v] = t
        if place[v] == cluster.place[v]:
            left += 1
        now = float(inp.scores_at(np.array([v]), (loads[t, BALANCED] / cap[t])[None, :])[0])
        moved[v] = (moved[v][0] if v in moved else was, now)
    return replace(result, place=place), moved


__all__ = ["cluster_score_inputs", "raise_scores"]
