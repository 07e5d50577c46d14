"""Compute planning: which VMs move between hosts, and which hosts change power state, for one snapshot."""

from __future__ import annotations

from copy import copy
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from ...plan import Imbalance, Move, Plan, ResourcePair, Suppressed, VMotionEstimate
from ...snapshot import Snapshot, snapshot_digest
from .balance import PAIRWISE_GAP, balancing_trigger, combined, imbalance, max_gap, needs_balancing, target_imbalance
from .cluster import BALANCED, MEM, Cluster, build_cluster, tally_over
from .entitlement import pool_loads
from .feasibility import find_conflicts
from .greedy import hill_climb
from ..history import NO_HISTORY, History
from .holds import apply_history
from .optimizer import CLOCK_SAFETY, OptimiseResult, mend
from .repair import unmended_reasons
from .portfolio import best_plan
from ..options import PlanOptions
from .order import order_moves
from .hoststate import host_mask, vms_on
from .power import PowerPlan, evacuation, interleave_standby, plan_power
from .health import HealthRemedy
from .rules import all_violations
from .scoremode import raise_scores
from .vmotion import estimates
from ...words import counted

# A planner turns the cluster into a plan, given how to build a plan from a placement: ``cp-sat``
# builds several and keeps the best (portfolio.py), ``greedy`` builds the hill-climb's.
PLANNERS = {"cp-sat": best_plan, "greedy": lambda cluster, options, build: build(hill_climb(cluster, options))}

# Priority of a move in the order: mandatory repairs first.
_PRIORITY = {"evacuate": 0, "rule": 1, "capacity": 2, "dpm": 3, "balance": 4}
# a recommended move of a VM whose DRS override is manual (PlanOptions.manual_vms): for an admin to make
MANUAL_WORDS = "the VM's DRS override is manual: a recommendation for an admin, not made automatically"


def plan_compute(snapshot: Snapshot, options: PlanOptions | None = None, history: History | None = None) -> Plan:
    options = options or PlanOptions()
    history = history or NO_HISTORY
    cluster = build_cluster(snapshot, options, history.vm_demand if options.recent_demand else None)
    before = imbalance(cluster, cluster.host_loads(cluster.place))
    target = target_imbalance(options.threshold, int(cluster.on.sum()))
    base = dict(
        cluster=snapshot.cluster,
        snapshot_digest=snapshot_digest(snapshot),
        collected_at=snapshot.collected_at.isoformat() if snapshot.collected_at else None,
        planner=options.planner,
        threshold=options.threshold,
        pools=pool_loads(snapshot, cluster.wanted, cluster.load),
    )
    violations_before = all_violations(cluster, cluster.place)
    conflicts = find_conflicts(cluster)
    note = "the mandatory rules cannot all hold: nothing is moved until they are changed"
    health = HealthRemedy.of(cluster, options) if not conflicts else HealthRemedy()
    options = health.options(options)  # a severe host to evacuate: this plan is its maintenance evacuation
    evac = health.evac if health.evac is not None else evacuation(cluster, options)  # maintenance mode: computed once
    if not conflicts and evac is not None and (conflicts := evac.conflicts):
        note = "the hosts cannot be emptied (see conflicts): nothing is moved"
    if conflicts:
        pair = ResourcePair(cpu=round(before[0], 6), mem=round(before[1], 6))
        return Plan(
            **base,
            status="infeasible",
            imbalance=Imbalance(before=pair, after=pair, target=_finite(target)),
            violations_before=violations_before,
            violations_after=violations_before,
            conflicts=conflicts,
            notes=[note],
        )

    held = apply_history(cluster, history, options)  # anti-oscillation holds (engine/compute/holds.py)
    # DPM and maintenance: hosts leaving or woken; quarantined hosts emptied where it costs nothing (power.py)
    power = plan_power(cluster, options, history, evac, health.quarantine)
    power.notes[:0] = health.notes + [f"{name}: {why}" for name, why in cluster.closed.items()
                                      if name not in health.words and cluster.on[cluster.host_index(name)]]

    def build(result: OptimiseResult) -> Plan:
        # each candidate settles its own copy of the power plan (settling keeps hosts on and adds notes)
        scored: dict[int, tuple[float, float]] = {}
        if options.model == "vm-score":  # then raise the worst-served VMs' scores (scoremode.py)
            result, scored = raise_scores(power.planning, options, result)
        plan = _build_plan(result, _own(power), options, history, base, before, target, violations_before, held)
        return _score_words(plan, power.planning, scored)

    # the planners' matrix products are small: extra BLAS threads only contend for the cores
    with threadpool_limits(limits=1, user_api="blas"):
        plan = PLANNERS[options.planner](power.planning, options, build)
        if breaks_held(plan):  # never: each solver keeps the hard obligations; a last guard all the same
            repaired = mend(power.planning, options)
            plan = build(OptimiseResult(repaired.place, 0, 0, False, **repaired.result_fields()))
            if breaks_held(plan):
                plan = build(OptimiseResult(power.planning.place.copy(), 0, 0, False))
    return _health_words(plan, health)


def _score_words(plan: Plan, cluster: Cluster, scored: dict[int, tuple[float, float]]) -> Plan:
    """A move the vm-score mode made says the VM's score before and after it."""
    if not scored:
        return plan
    words = {cluster.vm_names[v]: f"VM score {a:.0f} → {b:.0f}" for v, (a, b) in scored.items()}
    for m in plan.moves:
        if m.reason == "balance" and m.vm in words and not m.detail.startswith("temporary hop"):
            m.detail = f"{words[m.vm]}; {m.detail}" if m.detail else words[m.vm]
    return plan


def _health_words(plan: Plan, health: HealthRemedy) -> Plan:
    """The plan's moves off, and maintenance of, a host evacuated for its health say so, with the reason."""
    if not health.evacuate:
        return plan
    words = health.words
    for m in plan.moves:
        if m.reason == "evacuate" and m.source in words:
            m.detail = f"{m.detail}: {words[m.source]}" if m.detail else words[m.source]
    for p in plan.power:
        if p.action == "enter-maintenance" and p.host in words:
            p.detail = f"{words[p.host]}; {p.detail}" if p.detail else words[p.host]
    return plan


def breaks_held(plan: Plan) -> bool:
    """Does ``plan`` break a hard obligation (a mandatory rule, a host duty, physical capacity) that held before it?"""
    before = {(v.kind, v.name) for v in plan.violations_before if v.hard}
    return any(v.hard and (v.kind, v.name) not in before for v in plan.violations_after)


def _own(power: PowerPlan) -> PowerPlan:
    """A copy of ``power`` a plan may settle (settling keeps hosts on and adds notes) without touching the others."""
    out = copy(power)
    out.notes, out.leaving = list(power.notes), list(power.leaving)
    return out


def _build_plan(result: OptimiseResult, power: PowerPlan, options: PlanOptions, history: History, base: dict,
                before: tuple, target: float, violations_before: list, held: list) -> Plan:
    """Order a planner's placement into steps and build the plan (``power`` is settled on the way)."""
    cluster = power.cluster
    repaired = result.repair_rank >= 0 if result.repair_rank is not None else None
    reasons = _reasons(cluster, result.place, repaired)
    reasons.update(power.move_reasons(result.place))
    if options.threshold <= 1:  # no balancing: a move no reason names makes room for a mandatory one
        _room_reasons(cluster, result.place, reasons)
    elif repaired is not None and repaired.any():
        # a VM the repairs moved that no reason names was evicted to make room for a repair
        _room_reasons(cluster, result.place, reasons, only=repaired)
        for v in np.flatnonzero(repaired & (result.place != cluster.place)):
            reasons.setdefault(int(v), ("capacity", "moved by the repairs to make room", None))
    priority = np.array([_PRIORITY[reasons.get(v, ("balance",))[0]] for v in range(cluster.n_vms)], dtype=float)
    rank = result.repair_rank
    if rank is not None and (rank >= 0).any():
        # the repair's own sequence first (each of its steps was valid when taken), before DPM and balancing
        ranked = (rank >= 0) & (result.place != cluster.place)
        priority[ranked] = 2.999 * rank[ranked] / (rank.max() + 1)
    if options.dpm is not None and options.dpm.all_steps:
        priority += power.leave_rank()  # empty one host after the other
    # a hard repair may have filled a host beyond its headroom limit: its steps may too (no other step)
    stretched = replace(cluster, bound=np.maximum(cluster.bound, result.bound)) if result.bound is not None else None
    why = [reasons.get(v, ("balance", "", None)) for v in range(cluster.n_vms)]
    soft = power.soft_moves()  # leaving a quarantined host: named evacuate, not mandatory
    mandatory = np.array([_mandatory(cluster, reason, rule) and v not in soft for v, (reason, _, rule) in enumerate(why)],
                         dtype=bool)
    ordering = order_moves(cluster, cluster.place, result.place, priority,
                           power.step_budget(options.moves_budget, result.repair_moves), stretched, mandatory)

    moves: list[Move] = []
    cur = cluster.place.copy()
    loads = cluster.host_loads(cur)
    im = imbalance(cluster, loads)
    score = combined(*im)
    vms = np.array([step.vm for step in ordering.steps], dtype=int)
    est_of = estimates(cluster.mem_mb[vms], cluster.dirty_mbps[vms],  # each step over the slower of its two hosts
                       np.minimum(cluster.bandwidth_mbps[[s.source for s in ordering.steps]],
                                  cluster.bandwidth_mbps[[s.target for s in ordering.steps]]))
    for i, step in enumerate(ordering.steps, start=power.first_step):
        v = step.vm
        loads[step.source] -= cluster.load[v]
        loads[step.target] += cluster.load[v]
        cur[v] = step.target
        new_im = imbalance(cluster, loads)
        new_score = combined(*new_im)
        reason, detail, rule = reasons.get(v, ("balance", "", None))
        if step.hop:
            detail = (detail + "; " if detail else "") + f"temporary hop on the way to {cluster.host_names[step.final]}"
        elif reason == "balance":
            detail = f"CPU imbalance {im[0]:.3f} → {new_im[0]:.3f}, memory imbalance {im[1]:.3f} → {new_im[1]:.3f}"
        if cluster.manual is not None and cluster.manual[v] and not cluster.must_leave[v]:
            detail = (detail + "; " if detail else "") + MANUAL_WORDS
        est = est_of[i - power.first_step]
        moves.append(
            Move(
                step=i,
                vm=cluster.vm_names[v],
                source=cluster.host_names[step.source],
                target=cluster.host_names[step.target],
                reason=reason,
                detail=detail,
                rule=rule,
                gain=round(score - new_score, 6),
                vmotion=VMotionEstimate(
                    seconds=round(est.seconds, 2), downtime_ms=round(est.downtime_ms, 1),
                    data_mb=round(est.data_mb, 1), converges=est.converges,
                ),
                mem_mb=float(cluster.mem_mb[v]),
                mandatory=bool(mandatory[v]),
            )
        )
        score, im = new_score, new_im
    cluster = power.settle(ordering.place)  # a host the moves could not empty stays on
    power_actions = power.actions(ordering.place, len(moves))
    if options.dpm is not None and options.dpm.all_steps:
        interleave_standby(moves, power_actions)  # each host to standby once it is empty
    end_state = power.end_state(options, history)
    after = imbalance(cluster, loads)
    suppressed = [
        Suppressed(vm=cluster.vm_names[v], target=cluster.host_names[int(result.place[v])], reason="unorderable",
                   detail="no order of moves keeps every step within capacity and rules")
        for v in ordering.dropped
    ] + held
    violations_after = all_violations(cluster, cur)
    unmended = _unmended_notes(power.original, cur, violations_after, power.exempt_rules, options, result)
    notes = list(unmended)
    notes += _cap_notes(cluster, cur, moves, result, options)
    start_loads = power.original.host_loads(power.original.place) if any(m.reason == "balance" for m in moves) else None
    if start_loads is not None and balancing_trigger(power.original, start_loads, options.threshold) == "gap":
        gap = max_gap(power.original, start_loads)
        notes.append(f"the imbalance is within the target ({target:.3f}), but two hosts' utilisation is "
                     f"{100 * gap:.0f} points apart, more than threshold {options.threshold}'s "
                     f"{100 * PAIRWISE_GAP[options.threshold]:.0f}: balancing")
    if not moves:
        if options.moves_budget.nothing and options.repair_budget.nothing:
            if not (options.storage is not None and options.storage.evacuate):  # (emptying datastores: disks only)
                notes.append("max moves 0: no moves allowed")
        elif options.moves_budget.nothing and not unmended:
            notes.append("max moves 0: no balancing moves allowed (repairs do not count against it; "
                         "max_repair_moves caps them)")
        elif unmended or power.exempt_rules:
            pass  # said above, or in the note naming the rule and the VMs that may not move
        elif options.evacuate:
            leaving = host_mask(power.original, (power.original.host_index(h) for h in options.evacuate))
            if not vms_on(power.original, leaving, every_vm=True).any():
                them = "them" if len(options.evacuate) > 1 else "it"
                notes.append(f"{', '.join(options.evacuate)}: no VMs registered on {them}; nothing to move")
        elif options.threshold == 1:
            notes.append("threshold 1: only mandatory moves; none needed")
        elif not needs_balancing(cluster, cluster.host_loads(cluster.place), options.threshold):
            notes.append(f"balanced within threshold {options.threshold} (target imbalance {target:.3f})")
        else:
            notes.append("no move gains enough to pay for its vMotion")
    return Plan(
        **base,
        moves=moves,
        imbalance=Imbalance(
            before=ResourcePair(cpu=round(before[0], 6), mem=round(before[1], 6)),
            after=ResourcePair(cpu=round(after[0], 6), mem=round(after[1], 6)),
            target=_finite(target),
        ),
        violations_before=violations_before,
        violations_after=violations_after,
        suppressed=suppressed,
        power=power_actions,
        notes=notes + power.notes,
        dpm_end_state=end_state,
    )


def _finite(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


def _mandatory(cluster: Cluster, reason: str, rule: str | None) -> bool:
    """Is a move for this reason a mandatory one (a repair or an evacuation)?"""
    return reason in ("evacuate", "capacity") or (reason == "rule" and _is_mandatory(cluster, rule))


def _is_mandatory(cluster: Cluster, rule: str | None) -> bool:
    g = cluster.rule(rule)
    return g is not None and g.mandatory


def _reasons(cluster: Cluster, final: np.ndarray, repaired: np.ndarray | None = None
             ) -> dict[int, tuple[str, str, str | None]]:
    """Why each moved VM moves, judged on the starting placement: (reason, words, rule). ``repaired``:
    the VMs the repairs moved (when known): only they move for a host's limit; a VM balancing moves off
    a host the repairs already brought under its limit moves for balance."""
    place = cluster.place
    hn, vn = cluster.host_names, cluster.vm_names
    out: dict[int, tuple[str, str, str | None]] = {}
    moved = set(int(v) for v in np.flatnonzero(place != final))
    for v in moved:
        if cluster.must_leave[v]:
            state = cluster.snapshot.hosts[int(place[v])].state.words
            out[v] = ("evacuate", f"{hn[place[v]]} is {state}", None)
    # mandatory rules first, then capacity, then should-rules: a move is named for its strongest reason
    for mandatory in (True, False):
        if not mandatory:
            _capacity_reasons(cluster, moved if repaired is None else {v for v in moved if repaired[v]}, out)
        for g in (g for g in cluster.rules if g.mandatory == mandatory):
            for v, words in g.reasons(place, moved, hn, vn).items():
                if v not in out:
                    out[v] = ("rule", words, g.rule)
    # a VM that follows a member of its mandatory affinity group which had to move (the group holds
    # at the start, so no reason above names it): it moves for the rule too
    for g in (g for g in cluster.together if g.mandatory):
        led = [int(u) for u in g.vms if int(u) in out
               and _mandatory(cluster, out[int(u)][0], out[int(u)][2])]
        for v in g.vms:
            v = int(v)
            if v in moved and v not in out and any(final[u] == final[v] for u in led):
                out[v] = ("rule", f"rule {g.rule}: follows {', '.join(vn[u] for u in led if final[u] == final[v])}", g.rule)
    return out


def _unmended_notes(cluster: Cluster, place: np.ndarray, violations: list, exempt: list[str], options: PlanOptions,
                    result: OptimiseResult) -> list[str]:
    """Notes on the hard violations and hosts above their limit this plan leaves as they are, and why:
    what the repairs found in the way of each (repair.unmended_reasons), or the repair cap."""
    if options.max_repair_moves == 0:
        return ["max repair moves 0: nothing is repaired"] if any(v.mandatory for v in violations) else []
    # (a rule broken by VMs that may not move has its own note, from plan_power)
    left = [v for v in violations if v.mandatory and not (v.kind == "rule" and v.name in exempt)]
    if not left:
        return []
    if result.repair_capped:
        what = "; ".join(_subject(v) for v in left[:3]) + (f"; {len(left) - 3} more" if len(left) > 3 else "")
        return [f"still broken after this plan: {what} — the repair cap (max_repair_moves "
                f"{options.max_repair_moves}) stopped the repairs after {counted(result.repair_moves, 'move')}"]
    reasons = unmended_reasons(cluster, place)
    pinned, room = [], []
    for v in left:
        why = reasons.get(f"rule {v.name}" if v.kind == "rule" else f"host {v.name}")
        if v.kind != "rule" and why is None and v.name in cluster._host_idx:  # VMs on a host that is not on
            h = cluster.host_index(v.name)
            why = next((reasons[f"VM {cluster.vm_names[int(u)]}"] for u in np.flatnonzero(place == h)
                        if f"VM {cluster.vm_names[int(u)]}" in reasons), None)
        if why is None:
            why = "this plan finds no moves that mend it within capacity and the mandatory rules"
        (pinned if why.startswith("none of the VMs there may move") else room).append(f"{_subject(v)} — {why}")
    out = [f"still broken after this plan: {r}" for r in (pinned + room)[:5]]
    if len(pinned) + len(room) > 5:
        out.append(f"still broken after this plan: {len(pinned) + len(room) - 5} more (violations_after lists them)")
    return out


def _subject(v) -> str:
    return f"rule {v.name} ({v.detail})" if v.kind == "rule" else f"{v.name}: {v.detail}"


def _cap_notes(cluster: Cluster, place: np.ndarray, moves: list[Move], result: OptimiseResult,
               options: PlanOptions) -> list[str]:
    """Which cap or clock stopped what: the balancing cap (max_moves), the wall clock's safety net."""
    out = []
    balance = sum(1 for m in moves if m.reason == "balance")
    cap = options.moves_budget
    if (options.threshold >= 2 and cap.capped and not cap.nothing and cap.spent_by(balance) and needs_balancing(cluster, cluster.host_loads(place), options.threshold)):
        out.append(f"the balancing cap (max_moves {options.max_moves}) stopped balancing; repairs do not count "
                   f"against it (max_repair_moves caps them)")
    if result.clock_stopped:
        out.append(f"the wall clock ({CLOCK_SAFETY:g} x the {options.time_limit_s:g} s time limit), not the work budget, "
                   "ended the search: this machine is far slower than the reference one or very busy, and another "
                   "run may give another plan")
    return out


def _room_reasons(cluster: Cluster, final: np.ndarray, out: dict, only: np.ndarray | None = None) -> None:
    """Name each unnamed move (of the VMs in ``only``, default all) after a named move onto the host it
    leaves: it makes room for that VM (reason ``capacity``: a repair, capped by max_repair_moves)."""
    hn, vn = cluster.host_names, cluster.vm_names
    moved = (cluster.place != final) if only is None else (cluster.place != final) & only
    unnamed = [int(v) for v in np.flatnonzero(moved) if int(v) not in out]
    while unnamed:  # room made for a VM that itself makes room: a chain
        named = 0
        for v in unnamed:
            src = int(cluster.place[v])
            for u in list(out):
                if int(final[u]) == src and int(cluster.place[u]) != src:
                    out[v] = ("capacity", f"makes room on {hn[src]} for {vn[u]}", None)
                    named += 1
                    break
        if not named:
            return
        unnamed = [v for v in unnamed if v not in out]


def _capacity_reasons(cluster: Cluster, moved: set[int], out: dict) -> None:
    place = cluster.place
    hn = cluster.host_names
    loads = cluster.host_loads(place)
    over = np.any(loads > cluster.limit + 1e-6, axis=1)
    for v in moved:
        if v not in out and over[place[v]] and cluster.on[place[v]]:
            h = int(place[v])
            over_tally = [(r, t) for r, t in enumerate(cluster.tallies, start=MEM + 1)
                          if loads[h, r] > cluster.limit[h, r] + 1e-6]
            if over_tally and not np.any(loads[h, BALANCED] > cluster.limit[h, BALANCED] + 1e-6):
                r, tally = over_tally[0]
                out[v] = ("capacity", f"{hn[h]}: {tally_over(tally, float(loads[h, r]), float(cluster.limit[h, r]))}", None)
                continue
            pct = 100 * (loads[h, BALANCED] / cluster.cap[h, BALANCED]).max()
            lim = 100 * (cluster.limit[h, BALANCED] / cluster.cap[h, BALANCED]).min()
            out[v] = ("capacity", f"{hn[h]} at {pct:.0f} % is above its {lim:.0f} % limit", None)
