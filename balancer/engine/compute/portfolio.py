"""The ``cp-sat`` planner's portfolio: its own placement and the greedy hill-climb's, the plan that ends best wins.

Candidates, all at the same move budget and move prices (with no budget, ours alone: see best_plan):

1. **ours** -- optimizer.optimise (CP-SAT mending, the balancing search, should-rule mending);
2. **greedy** -- greedy.hill_climb, DRS's published climb (the benchmark's baseline);
3. **greedy, revised** -- when the greedy's plan is at least as good as ours and spent the whole
   budget: its placement revised by the balancing search (swaps, moving moved VMs on,
   exchanges -- within the same budget), when that changes it.

Each candidate is ordered and built into a plan as the user would see it (order.py may hop or
drop a move), and the plans are compared by ``plan_key``, in the order of obligations: fewer hard
violations after the plan (mandatory rules, host duties, physical capacity), then fewer hosts
above their headroom limit, then fewer broken should-rules, then lower final imbalance (the
plan's ``imbalance.after``, √(cpu² + mem²)), then less data copied by vMotion, then fewer moves;
on a tie the earlier candidate wins (ours first). Every candidate starts from the same repairs
(optimizer.mend) and no candidate breaks a hard obligation that holds (each solver keeps them
as constraints); the planner checks the chosen plan for it all the same (planner.py). So a
``cp-sat`` plan never ends with more imbalance than the greedy climb's at the same budget unless
it leaves fewer obligations broken. Deterministic: each candidate is.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ...plan import Plan
from .cluster import Cluster
from .greedy import hill_climb
from .optimizer import OptimiseResult, mend, move_costs, optimise, polish
from ..options import PlanOptions


def best_plan(cluster: Cluster, options: PlanOptions, build: Callable[[OptimiseResult], Plan]) -> Plan:
    """The best of the candidates' plans; ``build`` turns a placement into the plan the user would see."""
    costs = move_costs(cluster, options)
    mended = mend(cluster, options, costs)  # phase 1, shared: every candidate balances from the same repairs
    ours = optimise(cluster, options, costs, mended)
    best = build(ours)
    if options.threshold < 2 or not cluster.movable.any() or options.moves_budget.nothing:
        return best  # no balancing (mandatory moves only) or nothing to move: nothing to compare with
    if not options.moves_budget.binds(int(cluster.movable.sum())):
        # No move budget (or one no plan can reach): the greedy climb stops where no single move pays for itself, and the
        # search goes on from there with swaps and exchanges (0.20-0.77 x its imbalance in the
        # benchmark); running it too would double the plan's time at the cluster maximum.
        return best
    greedy = hill_climb(cluster, options, costs, mended)
    if np.array_equal(greedy.place, ours.place):
        return best
    plan = build(greedy)
    if plan_key(plan) < plan_key(best):
        best = plan
    # the greedy's plan is as good as ours or better and spent the whole budget: revise its choices
    if plan_key(plan) <= plan_key(best) and options.moves_budget.spent_by(int((greedy.place != mended.place).sum())):
        polished = polish(cluster, options, greedy.place, costs, mended)
        if not np.array_equal(polished.place, greedy.place) and not np.array_equal(polished.place, ours.place):
            plan = build(polished)
            if plan_key(plan) < plan_key(best):
                best = plan
    return best


def plan_key(plan: Plan) -> tuple:
    """What makes one plan better than another, in the order of obligations (see the module doc):
    hard violations after the plan, then hosts above their headroom limit, then should-rules, then balance."""
    after = plan.violations_after
    hard = sum(1 for v in after if v.hard)
    headroom = sum(1 for v in after if v.kind == "headroom")
    should = sum(1 for v in after if not v.mandatory)
    imbalance = math.hypot(plan.imbalance.after.cpu, plan.imbalance.after.mem)
    data = sum(m.vmotion.data_mb for m in plan.moves if m.vmotion is not None)
    return (hard, headroom, should, imbalance, round(data, 1), len(plan.moves))


__all__ = ["best_plan", "plan_key"]
