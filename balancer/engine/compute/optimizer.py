"""The placement optimiser: repairs with CP-SAT over neighbourhoods, balancing with a move-budget-aware local search.

Phases (docs/optimizer.md):

1. **Mend** -- CP-SAT rounds over neighbourhoods of the VMs that break a mandatory rule,
   stand on a host being evacuated or on a host above capacity. A plain x[vm, host] model
   of a 96-host / 10,000-VM cluster has about a million booleans; each round instead takes
   the hosts involved and the allowed hosts with most room, a bounded set of candidate VMs
   on them, and solves that sub-problem with CP-SAT, warm-started from the current
   placement. Everything outside the neighbourhood stays fixed.
2. **Balance** -- :mod:`.search`: single moves, swaps and exchanges scored exactly on DRS's
   measure, within the move budget, each move paying its price (the threshold's minimum
   gain plus its vMotion time).
3. **Should-rules** -- CP-SAT rounds again, for broken should-rules whose weight pays for
   the moves that mend them.

Objective of a CP-SAT round, in one unit (the sum over hosts of squared deviations of
demand/capacity from the cluster's balance point, scaled):

    sum_h,r dev[h,r]^2                     (tracks DRS's std-dev; tangent-line convex approximation)
  + sum_v moved[v] * (min_gain + cost(v))  (a move must pay for itself: MinGoodness + vMotion cost)
  + BIG * broken mandatory rules / stranded VMs
  + soft weight * broken should-rules.

Capacity is hard: after a round every host carries at most max(capacity - headroom,
what it carries now). A round's answer is accepted only when the exact objective improves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .balance import MIN_GAIN
from .cluster import Cluster
from ..options import PlanOptions
from .rules import rule_violations
from .search import Search
from .vmotion import estimate

SCALE = 4000  # deviations of utilisation are modelled in 1/4000ths
BIG_PENALTY = 1000.0  # a broken mandatory rule, in variance units (Σ dev²)
NB_HOSTS = 6  # hosts in one neighbourhood
NB_VMS_PER_HOST = 20  # candidate VMs taken from each neighbourhood host
ROUND_WORK = 0.15  # CP-SAT deterministic time per round
MEND_PRICE = 1.0  # extra price of a move while mending: above any balance gain, far below a rule
ROUNDS_PER_SECOND = 8  # round budget per second of time limit
MAX_STALE = 3  # CP-SAT rounds in a row without improvement before a phase stops
SEARCH_WORK_PER_SECOND = 12.0  # local-search work units (million scored pairs) per second of time limit
WORK_PER_SECOND = 1.2  # CP-SAT deterministic time per wall second, rough, on a 2-core machine


@dataclass
class OptimiseResult:
    place: np.ndarray
    rounds: int
    improved_rounds: int
    work_limited: bool


def move_costs(cluster: Cluster, options: PlanOptions) -> np.ndarray:
    """Per-VM price of one vMotion, in variance units: the minimum gain plus the vMotion time.

    The price of a vMotion second is ``cost_per_vmotion_second`` at threshold 3 and scales with
    the minimum gain (the threshold's MinGoodness, or ``min_gain``): the threshold says how much
    improvement a move must promise, and the migration is paid for in the same currency — level 5
    ("even a slight improvement") accepts a long vMotion for a slight gain, level 2 ("significant
    improvement") wants four times as much gain per vMotion second as level 3.
    """
    min_gain = options.min_gain if options.min_gain is not None else MIN_GAIN[options.threshold]
    per_second = options.cost_per_vmotion_second
    if math.isinf(min_gain):
        min_gain = 1.0  # level 1: only moves that mend a mandatory rule (worth BIG_PENALTY) are made
    else:
        per_second *= min_gain / MIN_GAIN[3]
    out = np.empty(cluster.n_vms)
    bw = cluster.bandwidth_mbps
    for v in range(cluster.n_vms):
        e = estimate(cluster.mem_mb[v], cluster.dirty_mbps[v], float(bw[cluster.place[v]]))
        out[v] = min_gain + per_second * e.seconds
    return out


class _Scoring:
    """Numbers shared by all rounds: balance point, scaled coefficients."""

    def __init__(self, cluster: Cluster):
        self.balance = cluster.balance_point()
        # tangent points of the convex square approximation (in scaled units)
        pts = [0, 8, 20, 40, 70, 110, 160, 220, 300, 400, 520, 680, 880, 1150, 1500, 2000, 2700, 3600, 5000, 7000]
        self.tangents = sorted({p for q in pts for p in (q, -q)})


def _penalties(cluster: Cluster, place: np.ndarray) -> dict[str, np.ndarray]:
    """Which VMs take part in something to mend (mandatory or soft) in the current placement."""
    V = cluster.n_vms
    mandatory = np.zeros(V, dtype=bool)
    soft = np.zeros(V, dtype=bool)
    mandatory |= cluster.stranded(place)
    ok_host = cluster.allowed[np.arange(V), place] if V else np.zeros(0, dtype=bool)
    mandatory |= ~ok_host & cluster.powered
    for g in cluster.anti:
        hosts = place[g.vms]
        if len(np.unique(hosts)) < len(hosts):
            (mandatory if g.mandatory else soft)[g.vms] = True
    for g in cluster.affine:
        if len(np.unique(place[g.vms])) > 1:
            (mandatory if g.mandatory else soft)[g.vms] = True
    for g in cluster.vmhost:
        if g.mandatory or not len(g.vms):
            continue
        bad = g.vms[g.hosts[place[g.vms]] != g.affine]
        soft[bad] = True
    return {"mandatory": mandatory, "soft": soft}


def optimise(cluster: Cluster, options: PlanOptions, costs: np.ndarray | None = None) -> OptimiseResult:
    """Mend rules and capacity (CP-SAT), balance (move-budget-aware local search), mend should-rules (CP-SAT).

    ``costs``: ``move_costs(cluster, options)`` when the caller has it. The search's matrix products
    are small: the caller runs it with one BLAS thread (``threadpool_limits``), as extra BLAS
    threads only contend for the cores (badly, on a busy host)."""
    place0 = cluster.place.copy()
    place = place0.copy()
    if cluster.n_vms == 0 or not cluster.on.any():
        return OptimiseResult(place, 0, 0, False)
    scoring = _Scoring(cluster)
    costs = move_costs(cluster, options) if costs is None else costs
    budget = options.max_moves if options.max_moves is not None else cluster.n_vms
    work_left = options.work_limit or max(options.time_limit_s * WORK_PER_SECOND, 0.05)
    soft_wanted = options.threshold >= 2
    rounds = improved = 0
    # The time limit is a safety net: rounds and solver work are counted deterministically,
    # so the same snapshot gives the same plan unless the machine is too slow for the budget.
    deadline = time.monotonic() + options.time_limit_s
    max_rounds = max(4, int(options.time_limit_s * ROUNDS_PER_SECOND))

    def run_rounds(phase: str) -> None:
        nonlocal place, work_left, rounds, improved
        stale = 0
        # mending pays MEND_PRICE per move so that only moves that mend are made
        prices = costs + MEND_PRICE if phase == "mend" else costs
        while work_left > 1e-3 and budget > 0 and rounds < max_rounds and time.monotonic() < deadline:
            if phase == "soft" and int((place != place0).sum()) >= budget:
                return  # the budget is spent: nothing left to mend with
            pen = _penalties(cluster, place)
            to_mend = pen["mandatory"] & cluster.movable
            if phase == "soft":
                to_mend |= pen["soft"] & cluster.movable
            over = np.any(cluster.host_loads(place) > cluster.limit + 1e-6, axis=1) & cluster.on
            if not (to_mend.any() or over.any()):
                return
            hosts, vms = _neighbourhood(cluster, place0, place, to_mend, over, False, rounds, stale)
            if len(vms) == 0:
                return
            new_place, changed, used = _solve_round(
                cluster, options, scoring, prices, place0, place, hosts, vms, budget, min(work_left, ROUND_WORK)
            )
            if changed and phase == "soft" and not _broken_should(cluster, new_place) <= should_at_start:
                changed = False  # mending should-rules never breaks one that held (a trade of rules is no mend)
            work_left -= max(used, 0.01)
            rounds += 1
            if changed:
                place = new_place
                improved += 1
                stale = 0
            else:
                stale += 1
                # each stale round shifts the neighbourhood (a small cluster is all one neighbourhood)
                if stale >= (1 if cluster.n_hosts <= NB_HOSTS else MAX_STALE):
                    return

    should_at_start = _broken_should(cluster, place0) if soft_wanted else set()  # (only the soft phase asks)
    run_rounds("mend")
    steps = 0  # balancing steps taken by the search
    if options.threshold >= 2:  # the search stops at once when the cluster needs no balancing
        search = Search(cluster, costs, place0, place, budget, options.soft_rule_weight)
        search_work = (options.work_limit or options.time_limit_s) * SEARCH_WORK_PER_SECOND
        place = search.run(search_work, deadline, options.threshold)
        steps = search.steps
    if soft_wanted and _penalties(cluster, place)["soft"].any():
        run_rounds("soft")
    return OptimiseResult(place, rounds + steps, improved + steps, work_left <= 1e-3)


def polish(cluster: Cluster, options: PlanOptions, start: np.ndarray, costs: np.ndarray | None = None) -> OptimiseResult:
    """The balancing search (phase 2 alone) from ``start``, a placement another planner reached
    (the greedy hill-climb's), with the same move budget and prices counted from the snapshot's
    placement: swaps and exchanges revise it; every step lowers the imbalance or mends a should-rule."""
    place0 = cluster.place.copy()
    if cluster.n_vms == 0 or not cluster.on.any() or options.threshold < 2:
        return OptimiseResult(start.copy(), 0, 0, False)
    budget = options.max_moves if options.max_moves is not None else cluster.n_vms
    costs = move_costs(cluster, options) if costs is None else costs
    search = Search(cluster, costs, place0, start, budget, options.soft_rule_weight)
    work = (options.work_limit or options.time_limit_s) * SEARCH_WORK_PER_SECOND
    place = search.run(work, time.monotonic() + options.time_limit_s, options.threshold)
    return OptimiseResult(place, search.steps, search.steps, False)


def _broken_should(cluster: Cluster, place: np.ndarray) -> set[str]:
    """The should-rules ``place`` breaks."""
    return {v.name for v in rule_violations(cluster, place) if not v.mandatory}


def _neighbourhood(cluster, place0, place, to_mend, over, balance_wanted, round_no, stale):
    """Hosts and candidate VMs for one round.

    Mending first: the hosts of VMs that break a rule (or stand on a host being evacuated)
    and the hosts with the most room they may go to. Otherwise the hottest and coldest
    hosts; each round that finds nothing better shifts to the next hot/cold hosts.
    """
    H = cluster.n_hosts
    loads = cluster.host_loads(place)
    on = cluster.on
    dev = loads / cluster.cap - cluster.balance_point()
    chosen: list[int] = []

    def add(h) -> None:
        if int(h) not in chosen:
            chosen.append(int(h))

    mend_vms = np.flatnonzero(to_mend)
    if len(mend_vms):
        pick = mend_vms[(stale * 3) % len(mend_vms):][:3]
        for v in pick:
            add(place[v])
            allowed = np.flatnonzero(cluster.allowed[v])
            if len(allowed):
                room = ((cluster.limit[allowed] - loads[allowed]) / cluster.cap[allowed]).min(axis=1)
                for h in allowed[np.argsort(-room, kind="stable")[: 2 + stale % 3]]:
                    add(h)
        # VMs kept with (or apart from) a mending VM go in too, with their hosts
        for groups in (cluster.affine, cluster.anti):
            for g in groups:
                if to_mend[g.vms].any() and np.isin(g.vms, pick).any():
                    for v in g.vms:
                        add(place[v])
    for h in np.flatnonzero(over)[:2]:
        add(h)
    if H <= NB_HOSTS:
        for h in np.flatnonzero(on):
            add(h)
    elif balance_wanted or len(chosen) < 2:
        k = max(1, (NB_HOSTS - len(chosen)) // 2)
        heat = np.where(on, dev.max(axis=1), -np.inf)
        cold = np.where(on, dev.min(axis=1), np.inf)
        hot = np.argsort(-heat, kind="stable")
        coldest = np.argsort(cold, kind="stable")
        a = (stale // 2) * k
        b = (stale % 2 + stale // 4) * k
        for h in hot[a : a + k]:
            if on[h]:
                add(h)
        for h in coldest[b : b + k]:
            if on[h]:
                add(h)
        # hosts that moves already touch, so that earlier moves can be revised
        touched = np.unique(np.concatenate([place0[place != place0], place[place != place0]]))
        if len(touched):
            for h in np.roll(touched, -stale)[:2]:
                add(h)
    hosts = np.array(sorted(chosen[: max(NB_HOSTS, 4)] if len(mend_vms) == 0 else chosen), dtype=np.int64)

    # candidate VMs: those to mend, then a spread of sizes from each neighbourhood host
    in_n = np.zeros(H, dtype=bool)
    in_n[hosts] = True
    cands: list[int] = [int(v) for v in mend_vms if in_n[place[v]]]
    for groups in (cluster.affine, cluster.anti):
        for g in groups:
            if to_mend[g.vms].any():
                cands.extend(int(v) for v in g.vms if cluster.movable[v] and in_n[place[v]])
    movable = cluster.movable & in_n[place]
    size = (cluster.load / cluster.cap[place]).max(axis=1)
    for h in hosts:
        on_h = np.flatnonzero(movable & (place == h))
        if len(on_h) <= NB_VMS_PER_HOST:
            cands.extend(int(v) for v in on_h)
            continue
        order = on_h[np.argsort(-size[on_h], kind="stable")]
        stride = len(order) / NB_VMS_PER_HOST
        shift = (round_no * 0.37) % 1.0
        picks = np.unique(np.minimum((np.arange(NB_VMS_PER_HOST) + shift) * stride, len(order) - 1).astype(int))
        cands.extend(int(v) for v in order[picks])
        cands.extend(int(v) for v in order[:3])
    vms = np.array(sorted(set(cands)), dtype=np.int64)
    return hosts, vms


def _solve_round(cluster, options, scoring, costs, place0, place, hosts, vms, budget, work):
    """Build and solve one neighbourhood's CP-SAT model. Returns (placement, changed, work used)."""
    from ortools.sat.python import cp_model  # imported when a round is solved: a plan with nothing to solve starts faster

    m = cp_model.CpModel()
    H_idx = {int(h): i for i, h in enumerate(hosts)}
    cand_set = set(int(v) for v in vms)
    S = SCALE
    var_unit = S * S  # one unit of Σ dev² in the objective's integers
    loads = cluster.host_loads(place)

    # fixed part of each neighbourhood host's load: VMs that stay
    fixed = loads[hosts].copy()
    for v in vms:
        fixed[H_idx[int(place[v])]] -= cluster.load[v]

    x: dict[tuple[int, int], cp_model.IntVar] = {}
    current_vars: set = set()
    per_host_terms: list[list[tuple[cp_model.IntVar, np.ndarray]]] = [[] for _ in hosts]
    objective = []
    for v in vms:
        v = int(v)
        cur = int(place[v])
        row = []
        for h in hosts:
            h = int(h)
            ok = cluster.allowed[v, h]
            if not ok and h != cur:
                continue
            var = m.NewBoolVar("")
            x[v, h] = var
            row.append(var)
            per_host_terms[H_idx[h]].append((var, cluster.load[v]))
            if not ok:  # staying on a host a mandatory rule or maintenance forbids
                objective.append((var, int(BIG_PENALTY * var_unit)))
        m.AddExactlyOne(row)
        current_vars.add(x[v, cur])
        m.AddHint(x[v, cur], 1)
        for h in hosts:
            if (v, int(h)) in x and int(h) != cur:
                m.AddHint(x[v, int(h)], 0)

    # moves: relative to the original placement, and their price
    moved_terms = []
    already_moved_outside = int(((place != place0) & ~np.isin(np.arange(cluster.n_vms), vms)).sum())
    for v in vms:
        v = int(v)
        origin = int(place0[v])
        price = int(round(costs[v] * var_unit))
        if (v, origin) in x:
            stay = x[v, origin]
            moved_terms.append(1 - stay)
            objective.append((stay, -price))  # price paid when not staying (constant dropped)
        else:
            moved_terms.append(1)
    if budget < cluster.n_vms:
        m.Add(sum(moved_terms) <= max(budget - already_moved_outside, 0))

    # capacity and balance, per neighbourhood host and resource
    for i, h in enumerate(hosts):
        h = int(h)
        for r in (0, 1):
            cap = cluster.cap[h, r]
            coef = [(var, int(round(load[r] / cap * S))) for var, load in per_host_terms[i] if load[r] > 0]
            base = int(round(fixed[i, r] / cap * S))
            bound = int(math.floor(cluster.bound[h, r] / cap * S + 1e-9))
            expr = base + sum(c * var for var, c in coef)
            now = base + sum(c for var, c in coef if var in current_vars)
            m.Add(expr <= max(bound, now))  # never worse than now, even through rounding
            limit = int(math.floor(cluster.limit[h, r] / cap * S + 1e-9))
            if now > limit:  # over the limit now: every unit above it costs like a broken rule
                excess = m.NewIntVar(0, max(now - limit, 0), "")
                m.Add(excess >= expr - limit)
                objective.append((excess, int(BIG_PENALTY * var_unit / S)))
            if not cluster.on[h]:
                continue
            target = int(round(scoring.balance[r] * S))
            hi = max(bound, base + sum(c for _, c in coef)) - target
            lo = -target
            dev = m.NewIntVar(min(lo, 0), max(hi, 0), "")
            m.Add(dev == expr - target)
            sq = m.NewIntVar(0, min(max(lo * lo, hi * hi), 2**62), "")  # a host far above capacity: no overflow
            for t in scoring.tangents:
                if lo - 1 <= t <= hi + 1:
                    m.Add(sq >= 2 * t * dev - t * t)
            m.Add(sq >= 0)
            objective.append((sq, 1))

    # rules
    big = int(BIG_PENALTY * var_unit)
    soft_w = int(options.soft_rule_weight * var_unit)
    for g in cluster.anti:
        members = [int(v) for v in g.vms]
        w = big if g.mandatory else soft_w
        for h in hosts:
            h = int(h)
            fixed_here = sum(1 for v in members if v not in cand_set and place[v] == h)
            terms = [x[v, h] for v in members if (v, h) in x]
            if not terms or (fixed_here + len(terms) <= 1):
                continue
            extra = m.NewIntVar(0, len(terms) + fixed_here, "")
            m.Add(extra >= sum(terms) + fixed_here - 1)
            objective.append((extra, w))
    for g in cluster.affine:
        members = [int(v) for v in g.vms]
        if not any(v in cand_set for v in members):
            continue
        w = big if g.mandatory else soft_w
        outside = {int(place[v]) for v in members if v not in cand_set and int(place[v]) not in H_idx}
        used = []
        for h in hosts:
            h = int(h)
            terms = [x[v, h] for v in members if (v, h) in x]
            pinned = any(v not in cand_set and place[v] == h for v in members)
            if pinned:
                used.append(1)
            elif terms:
                z = m.NewBoolVar("")
                for t in terms:
                    m.Add(z >= t)
                used.append(z)
        split = m.NewIntVar(0, len(hosts) + len(outside), "")
        m.Add(split >= sum(used) + len(outside) - 1)
        objective.append((split, w))
    for g in cluster.vmhost:
        if g.mandatory:
            continue  # mandatory vm-host rules are in `allowed`
        for v in g.vms:
            v = int(v)
            if v not in cand_set:
                continue
            for h in hosts:
                h = int(h)
                if (v, h) in x and not g.allows(h):
                    objective.append((x[v, h], soft_w))

    m.Minimize(sum(c * var for var, c in objective))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = options.seed
    solver.parameters.max_deterministic_time = work
    solver.parameters.max_time_in_seconds = max(options.time_limit_s / 4, 0.2)
    status = solver.Solve(m)
    used = solver.response_proto.deterministic_time
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return place, False, used

    new_place = place.copy()
    for (v, h), var in x.items():
        if solver.BooleanValue(var):
            new_place[v] = h
    if np.array_equal(new_place, place):
        return place, False, used
    # accept only a true improvement, measured exactly (the model's square is approximated)
    if evaluate(cluster, options, costs, place0, new_place) >= evaluate(cluster, options, costs, place0, place) - 1e-12:
        return place, False, used
    return new_place, True, used


def evaluate(cluster: Cluster, options: PlanOptions, costs: np.ndarray, place0: np.ndarray, place: np.ndarray) -> float:
    """The exact objective of a placement: Σ squared deviations + move prices + rule penalties."""
    on = cluster.on
    loads = cluster.host_loads(place)
    util = loads[on] / cluster.cap[on]
    value = float(((util - cluster.balance_point()) ** 2).sum())
    value += float(costs[place != place0].sum())
    pen = BIG_PENALTY * float((np.maximum(loads[on] - cluster.limit[on], 0.0) / cluster.cap[on]).sum())
    stranded = cluster.stranded(place) | (~cluster.allowed[np.arange(cluster.n_vms), place] & cluster.powered)
    pen += BIG_PENALTY * int(stranded.sum())
    for g in cluster.anti:
        w = BIG_PENALTY if g.mandatory else options.soft_rule_weight
        pen += w * (len(g.vms) - len(np.unique(place[g.vms])))
    for g in cluster.affine:
        w = BIG_PENALTY if g.mandatory else options.soft_rule_weight
        pen += w * (len(np.unique(place[g.vms])) - 1)
    for g in cluster.vmhost:
        if not g.mandatory and len(g.vms):
            pen += options.soft_rule_weight * int((g.hosts[place[g.vms]] != g.affine).sum())
    return value + pen
