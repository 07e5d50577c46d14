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
from dataclasses import dataclass, replace

import numpy as np

from .balance import MIN_GAIN
from .cluster import BALANCED, MEM, Cluster
from .constraints import Encoding
from ..options import PlanOptions
from .repair import hard_violations, repair
from .rules import rule_violations
from .search import Search
from .vmotion import seconds as vmotion_seconds

SCALE = 4000  # deviations of utilisation are modelled in 1/4000ths
BIG_PENALTY = 1000.0  # a broken mandatory rule, in variance units (Σ dev²)
NB_HOSTS = 6  # hosts in one neighbourhood
NB_VMS_PER_HOST = 20  # candidate VMs taken from each neighbourhood host
ROUND_WORK = 0.15  # CP-SAT deterministic time per round
MEND_PRICE = 1.0  # extra price of a move while mending: above any balance gain, far below a rule
MANUAL_PRICE = 2.0  # a VM under a manual override (a recommendation for an admin) costs this many times its price
ROUNDS_PER_SECOND = 8  # round budget per second of time limit
MAX_STALE = 3  # CP-SAT rounds in a row without improvement before a phase stops
# Work budgets per second of time limit, sized so that a plan takes about its time limit on the
# reference machine (2 cores; measured in docs/benchmarks.md: the search scores about 20 units a
# second, a CP-SAT round of 0.15 deterministic seconds takes 0.1-0.5 s of wall time at the
# cluster maximum); a round is charged at least ROUND_WORK.
SEARCH_WORK_PER_SECOND = 18.0  # local-search work units (million scored pairs) per second of time limit
WORK_PER_SECOND = 0.2  # CP-SAT deterministic time per second of time limit
# The wall clock stops the solvers only at this many times the time limit: the work budgets (counted
# deterministically) end a plan on any machine up to this much slower than the reference one, so the
# same snapshot gives the same plan on an idle or a busy machine; a plan the clock ended says so.
CLOCK_SAFETY = 10.0


@dataclass
class OptimiseResult:
    place: np.ndarray
    rounds: int
    improved_rounds: int
    work_limited: bool
    repair_moves: int = 0  # VMs the repairs (phase 1) moved: they do not count against max_moves
    repair_capped: bool = False  # max_repair_moves stopped a repair
    bound: np.ndarray | None = None  # (H, 2) per-host ceiling of the steps, when repairs raised the cluster's
    clock_stopped: bool = False  # the wall clock, not the work budget, ended a phase
    repair_rank: np.ndarray | None = None  # (V,) the repair's sequence of moves (-1: not a repair move)


def move_costs(cluster: Cluster, options: PlanOptions,
               since: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-VM price of one vMotion, in variance units: the minimum gain plus the vMotion time.

    ``since``: (placement, prices) computed before for the same VMs and options: only the VMs on
    another host now are priced again (a vMotion's time depends on its host's network).

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
    out = np.empty(cluster.n_vms) if since is None else since[1].copy()
    todo = np.arange(cluster.n_vms) if since is None else np.flatnonzero(since[0] != cluster.place)
    secs = vmotion_seconds(cluster.mem_mb[todo], cluster.dirty_mbps[todo], cluster.bandwidth_mbps[cluster.place[todo]])
    out[todo] = min_gain + per_second * secs
    if cluster.manual is not None:
        manual = todo[cluster.manual[todo]]
        out[manual] *= MANUAL_PRICE  # a move an admin must make: an automatic one that gains as much comes first
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
    soft = np.zeros(cluster.n_vms, dtype=bool)
    for g in cluster.rules:
        if not g.mandatory:
            soft[g.breakers(place)] = True
    return {"mandatory": hard_violations(cluster, place), "soft": soft}


@dataclass
class Clock:
    """The solvers' budgets for one plan: deterministic work, counted; the wall clock only as a safety net.

    ``work_left``: CP-SAT deterministic seconds; ``search_work``: the balancing search's work units;
    ``deadline``: CLOCK_SAFETY x the time limit from the start; ``stopped``: the wall clock, not the
    work budget, ended a phase (the plan says so in its notes)."""

    work_left: float
    search_work: float
    max_rounds: int
    deadline: float
    rounds: int = 0
    improved: int = 0
    stopped: bool = False

    @classmethod
    def start(cls, options: PlanOptions) -> "Clock":
        seconds = options.work_limit or options.time_limit_s
        return cls(work_left=options.work_limit or max(options.time_limit_s * WORK_PER_SECOND, 0.05),
                   search_work=seconds * SEARCH_WORK_PER_SECOND,
                   max_rounds=max(4, int(options.time_limit_s * ROUNDS_PER_SECOND)),
                   deadline=time.monotonic() + CLOCK_SAFETY * options.time_limit_s)

    def out_of_time(self) -> bool:
        if time.monotonic() >= self.deadline:
            self.stopped = True
        return self.stopped

    def seconds_left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.01)


@dataclass
class Mended:
    """Phase 1's result, shared by the portfolio's candidates (each balances from it)."""

    place: np.ndarray
    bound: np.ndarray  # (H, 2) what each host may carry after any step (raised where a hard repair needed it)
    moves: int  # VMs the repairs moved
    capped: bool  # max_repair_moves stopped a repair
    clock: Clock
    rank: np.ndarray | None = None  # (V,) the repair's own sequence of moves (repair.Repair.rank)
    # (H, 2) what balancing may fill each host to: capacity minus headroom, or what it carries after the
    # repairs if more (a host the repairs brought under its limit is not filled above it again)
    balance_bound: np.ndarray | None = None
    cap_set: bool = False  # max_repair_moves is set: what is left to repair is not balancing's

    def for_balancing(self, cluster: Cluster) -> Cluster:
        """``cluster`` as balancing (the search, the greedy climb, should-rule rounds) sees it after the
        repairs: hosts filled at most to ``balance_bound``; with a repair cap, the VMs still breaking a hard
        obligation or on a host above its limit stay where they are (mending them is a repair, and
        the cap stopped it)."""
        work = replace(cluster, bound=self.balance_bound)
        if self.cap_set:
            over = np.any(cluster.host_loads(self.place) > cluster.limit + 1e-6, axis=1) & cluster.on
            work = replace(work, movable=cluster.movable & ~hard_violations(cluster, self.place) & ~over[self.place])
        return work

    def result_fields(self) -> dict:
        """What a planner's OptimiseResult carries of the repairs it started from."""
        return dict(repair_moves=self.moves, repair_capped=self.capped, bound=self.bound,
                    clock_stopped=self.clock.stopped, repair_rank=self.rank)


def mend(cluster: Cluster, options: PlanOptions, costs: np.ndarray | None = None, may_move: np.ndarray | None = None,
         stretch: bool = True, clock: Clock | None = None) -> Mended:
    """Phase 1: hard violations, then the headroom limit (repair.py); CP-SAT rounds over neighbourhoods
    for what the constructive repair leaves. Moves are capped by ``options.max_repair_moves`` only."""
    clock = clock or Clock.start(options)
    place0 = cluster.place
    if cluster.n_vms == 0 or not cluster.on.any():
        return Mended(place0.copy(), cluster.bound.copy(), 0, False, clock, None, cluster.bound.copy())
    rep = repair(cluster, may_move=may_move, budget=options.repair_budget, stretch=stretch)
    work = replace(cluster, bound=rep.bound)
    if may_move is not None:
        work = replace(work, movable=may_move)
    costs = move_costs(cluster, options) if costs is None else costs
    budget = options.repair_budget.limit(cluster.n_vms)
    place = _rounds(work, options, _Scoring(work), costs + MEND_PRICE, place0, rep.place, budget, "mend", clock)
    # the repairs' order: the constructive repair's sequence, then what the CP-SAT rounds moved (repairs too)
    rank = np.where(place == rep.place, rep.rank, -1)
    later = np.flatnonzero((place != rep.place) & (place != place0))
    rank[later] = max(int(rep.rank.max()), -1) + 1 + np.arange(len(later))
    return Mended(place, rep.bound, int((place != place0).sum()), rep.capped, clock, rank,
                  np.maximum(cluster.limit, cluster.host_loads(place)), options.max_repair_moves is not None)


def optimise(cluster: Cluster, options: PlanOptions, costs: np.ndarray | None = None,
             mended: Mended | None = None) -> OptimiseResult:
    """Mend (repairs, then CP-SAT), balance (move-budget-aware local search), mend should-rules (CP-SAT).

    ``costs``: ``move_costs(cluster, options)`` and ``mended``: ``mend(cluster, options, costs)``
    when the caller has them. Balancing and should-rule moves are capped by ``options.max_moves``,
    counted from the repaired placement; repairs are not. The search's matrix products are small:
    the caller runs it with one BLAS thread (``threadpool_limits``), as extra BLAS threads only
    contend for the cores (badly, on a busy host)."""
    place0 = cluster.place.copy()
    if cluster.n_vms == 0 or not cluster.on.any():
        return OptimiseResult(place0, 0, 0, False)
    costs = move_costs(cluster, options) if costs is None else costs
    mended = mended or mend(cluster, options, costs)
    clock = mended.clock
    place = mended.place
    work = mended.for_balancing(cluster)
    budget = options.moves_budget.limit(cluster.n_vms)
    steps = 0  # balancing steps taken by the search
    if options.threshold >= 2 and budget > 0:  # the search stops at once when the cluster needs no balancing
        search = Search(work, costs, mended.place, place, budget, options.soft_rule_weight)
        place = search.run(clock.search_work, clock, options.threshold)
        steps = search.steps
    if options.threshold >= 2 and budget > 0 and _penalties(work, place)["soft"].any():
        place = _rounds(work, options, _Scoring(work), costs, mended.place, place, budget, "soft", clock,
                        should_at_start=_broken_should(cluster, place0))
    return OptimiseResult(place, clock.rounds + steps, clock.improved + steps, clock.work_left <= 1e-3,
                          **mended.result_fields())


def _rounds(cluster: Cluster, options: PlanOptions, scoring: _Scoring, prices: np.ndarray, base: np.ndarray,
            place: np.ndarray, budget: int, phase: str, clock: Clock, should_at_start: set[str] | None = None) -> np.ndarray:
    """CP-SAT rounds over neighbourhoods: ``mend`` (hard violations and hosts above their limit) or
    ``soft`` (also should-rules). ``base``: the placement ``budget`` and the prices count from.
    The rounds and the solver's work are counted deterministically (``clock``); the wall clock is a safety net."""
    stale = 0
    while clock.work_left > 1e-3 and budget > 0 and clock.rounds < clock.max_rounds and not clock.out_of_time():
        if phase == "soft" and int((place != base).sum()) >= budget:
            return place  # the budget is spent: nothing left to mend with
        pen = _penalties(cluster, place)
        to_mend = pen["mandatory"] & cluster.movable
        if phase == "soft":
            to_mend |= pen["soft"] & cluster.movable
        over = np.any(cluster.host_loads(place) > cluster.limit + 1e-6, axis=1) & cluster.on
        over &= np.bincount(place[cluster.movable & cluster.powered], minlength=cluster.n_hosts) > 0
        if not (to_mend.any() or over.any()):
            return place
        hosts, vms = _neighbourhood(cluster, base, place, to_mend, over, False, clock.rounds, stale)
        if len(vms) == 0:
            return place
        new_place, changed, used = _solve_round(
            cluster, options, scoring, prices, base, place, hosts, vms, budget, min(clock.work_left, ROUND_WORK), clock
        )
        if changed and phase == "soft" and not _broken_should(cluster, new_place) <= (should_at_start or set()):
            changed = False  # mending should-rules never breaks one that held (a trade of rules is no mend)
        clock.work_left -= max(used, ROUND_WORK)  # (model building and presolve are not in its deterministic time)
        clock.rounds += 1
        if changed:
            place = new_place
            clock.improved += 1
            stale = 0
        else:
            stale += 1
            # each stale round shifts the neighbourhood (a small cluster is all one neighbourhood)
            if stale >= (1 if cluster.n_hosts <= NB_HOSTS else MAX_STALE):
                return place
    return place


def polish(cluster: Cluster, options: PlanOptions, start: np.ndarray, costs: np.ndarray | None = None,
           mended: Mended | None = None) -> OptimiseResult:
    """The balancing search (phase 2 alone) from ``start``, a placement another planner reached
    (the greedy hill-climb's) from the same repairs, with the same move budget and prices counted
    from the repaired placement: swaps and exchanges revise it; every step lowers the imbalance or
    mends a should-rule."""
    if cluster.n_vms == 0 or not cluster.on.any() or options.threshold < 2:
        return OptimiseResult(start.copy(), 0, 0, False)
    costs = move_costs(cluster, options) if costs is None else costs
    mended = mended or mend(cluster, options, costs)
    budget = options.moves_budget.limit(cluster.n_vms)
    work = mended.for_balancing(cluster)
    search = Search(work, costs, mended.place, start, budget, options.soft_rule_weight)
    place = search.run(mended.clock.search_work, mended.clock, options.threshold)
    return OptimiseResult(place, search.steps, search.steps, False, **mended.result_fields())


def _broken_should(cluster: Cluster, place: np.ndarray) -> set[str]:
    """The should-rules ``place`` breaks."""
    return {v.name for v in rule_violations(cluster, place) if not v.mandatory}


def _neighbourhood(cluster, place0, place, to_mend, over, balance_wanted, round_no, stale):
    """Hosts and candidate VMs for one round.

    Mending first: the hosts of VMs that break a rule (or stand on a host being evacuated)
    and the hosts with the most room they may go to; hosts above their limit, two at a time
    (each stale round takes the next two), with the hosts that have the most room. Otherwise
    the hottest and coldest hosts; each round that finds nothing better shifts to the next
    hot/cold hosts.
    """
    H = cluster.n_hosts
    loads = cluster.host_loads(place)
    on = cluster.on
    dev = loads[:, BALANCED] / cluster.cap[:, BALANCED] - cluster.balance_point()
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
        for groups in (cluster.together, cluster.apart):
            for g in groups:
                if to_mend[g.vms].any() and np.isin(g.vms, pick).any():
                    for v in g.vms:
                        add(place[v])
    over_hosts = np.flatnonzero(over)
    if len(over_hosts):
        start = (2 * stale) % len(over_hosts)
        for h in np.roll(over_hosts, -start)[:2]:
            add(h)
        # the hosts with the most room within their limit, shifting with each stale round
        room = np.where(on & ~over, ((cluster.limit - loads) / cluster.cap).min(axis=1), -np.inf)
        k = max(NB_HOSTS - len(chosen), 2)
        ranked = np.argsort(-room, kind="stable")
        first = (stale * k) % max(int((room > -np.inf).sum()), 1)
        for h in ranked[first:first + k]:
            if np.isfinite(room[h]):
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
    hosts = np.array(sorted(chosen[: max(NB_HOSTS, 4)] if len(mend_vms) == 0 and not len(over_hosts) else chosen),
                     dtype=np.int64)

    # candidate VMs: those to mend, then a spread of sizes from each neighbourhood host
    in_n = np.zeros(H, dtype=bool)
    in_n[hosts] = True
    cands: list[int] = [int(v) for v in mend_vms if in_n[place[v]]]
    for groups in (cluster.together, cluster.apart):
        for g in groups:
            if to_mend[g.vms].any():
                cands.extend(int(v) for v in g.vms if cluster.movable[v] and in_n[place[v]])
    movable = cluster.movable & in_n[place]
    size = (cluster.load[:, BALANCED] / cluster.cap[place][:, BALANCED]).max(axis=1)
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


def _solve_round(cluster, options, scoring, costs, place0, place, hosts, vms, budget, work, clock):
    """Build and solve one neighbourhood's CP-SAT model. Returns (placement, changed, work used).

    A mandatory rule that holds in ``place`` is a constraint of the model, not a penalty: no
    round breaks it, whatever it would gain (the current placement keeps it, so the model stays
    feasible). A broken one is a large penalty, so the round mends it when it can."""
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

    # capacity and balance, per neighbourhood host and resource; the tallies (whole numbers) exactly, no balance
    for i, h in enumerate(hosts):
        h = int(h)
        for r in range(cluster.cap.shape[1]):
            cap = cluster.cap[h, r] if r <= MEM else float(S)  # a tally: one unit each
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
            if not cluster.on[h] or r > MEM:
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

    # rules: each encodes itself (constraints/)
    enc = Encoding(m, x, hosts, cand_set, place, big=int(BIG_PENALTY * var_unit),
                   soft=int(options.soft_rule_weight * var_unit), objective=objective)
    for g in cluster.rules:
        g.encode(enc)

    m.Minimize(sum(c * var for var, c in objective))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = options.seed
    solver.parameters.max_deterministic_time = work
    limit = clock.seconds_left()
    solver.parameters.max_time_in_seconds = limit  # a safety net: the work budget ends a round
    status = solver.Solve(m)
    used = solver.response_proto.deterministic_time
    if status != cp_model.OPTIMAL and used < work * 0.95 and solver.wall_time >= limit * 0.95:
        clock.stopped = True
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
    util = loads[on][:, BALANCED] / cluster.cap[on][:, BALANCED]
    value = float(((util - cluster.balance_point()) ** 2).sum())
    value += float(costs[place != place0].sum())
    pen = BIG_PENALTY * float((np.maximum(loads[on] - cluster.limit[on], 0.0) / cluster.cap[on]).sum())
    stranded = cluster.stranded(place) | (~cluster.allowed[np.arange(cluster.n_vms), place] & cluster.powered)
    pen += BIG_PENALTY * int(stranded.sum())
    for g in cluster.rules:
        if not g.folded:  # (mandatory host-shaped rules are in `allowed`, counted above)
            pen += g.weight(BIG_PENALTY, options.soft_rule_weight) * g.units(place)
    return value + pen
