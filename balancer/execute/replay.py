"""May a saved plan be carried out on the cluster as it is now? Replayed step by step with the engine's checks.

``apply`` reads a plan written earlier (or by hand) and a fresh snapshot. Before anything is
carried out, the plan's actions are replayed on the fresh snapshot with the same checks the
engine orders its own moves by (``engine.compute.rules.move_allowed``): after every move each host
stays within its bound (capacity minus headroom, or no worse than it was when above it) and no
mandatory rule that held is broken. A move the executor would skip -- its VM is no longer on
the planned source, or its target is not on -- is skipped here too. Power actions change which
hosts are on, as they will when carried out. Affinity is judged after the last step (a group
moves one VM at a time). Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..engine.compute.cluster import CPU, MEM, build_cluster
from ..engine.compute.hoststate import host_mask, with_hosts_leaving, with_hosts_woken
from ..engine.options import PlanOptions
from ..engine.compute.rules import move_allowed, rule_violations
from ..errors import InputError
from ..plan import Move, Plan
from ..snapshot import Snapshot

CLOCK_SKEW_S = 60.0  # a plan may claim a collection time this much later than the fresh snapshot's


def check_plan_age(fresh: Snapshot, plan: Plan, max_age_s: float, what: str = "plan") -> float:
    """The plan's age in seconds on the cluster's clock; InputError when it cannot be judged, is too old,
    or claims a time later than the fresh snapshot's (beyond ``CLOCK_SKEW_S``)."""
    if plan.collected_at is None:
        raise InputError(f"{what}: has no collected_at, so its age cannot be checked against --max-age; "
                         "make it again with recommend")
    if fresh.collected_at is None:
        raise InputError(f"{what}: the cluster's snapshot has no collection time to judge the plan's age by")
    age = (_utc(fresh.collected_at) - _utc(datetime.fromisoformat(plan.collected_at))).total_seconds()
    if age < -CLOCK_SKEW_S:
        raise InputError(f"{what}: collected_at {plan.collected_at} is {-age:.0f} s later than the cluster's clock "
                         f"({fresh.collected_at.isoformat()}); refusing a plan from the future")
    if age > max_age_s:
        raise InputError(f"{what}: made from a snapshot {age:.0f} s old (limit {max_age_s:.0f} s); run recommend again")
    return age


def _utc(t: datetime) -> datetime:
    """A time without a zone is taken as UTC (snapshots are collected in UTC)."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def counted_moves(plan: Plan) -> int:
    """Moves that count against a cycle's move cap: all but those emptying a host (reason dpm or evacuate)."""
    return sum(1 for m in plan.moves if m.reason not in ("dpm", "evacuate"))


def check_plan_steps(fresh: Snapshot, plan: Plan, options: PlanOptions, what: str = "plan") -> None:
    """Replay ``plan`` on ``fresh``; InputError naming the first step that would overload a host or break
    a mandatory rule that holds. ``options``: headroom and move cap (``max_moves``)."""
    if options.max_moves is not None and counted_moves(plan) > options.max_moves:
        raise InputError(f"{what}: {counted_moves(plan)} moves (not counting those that empty a host), more than "
                         f"the {options.max_moves} allowed per cycle (drs.max_moves_per_cycle, or --max-moves)")
    cluster = build_cluster(fresh, options)
    place = cluster.place.copy()
    loads = cluster.host_loads(place)
    held = _mandatory_rules_holding(cluster, place)
    for action in plan.actions:
        if not isinstance(action, Move):
            mask = host_mask(cluster, [cluster.host_index(action.host)])
            if action.action in ("power-on", "exit-maintenance"):
                cluster = with_hosts_woken(cluster, mask)
            else:
                cluster = with_hosts_leaving(cluster, mask)
            continue
        v, s, t = cluster.vm_index(action.vm), cluster.host_index(action.source), cluster.host_index(action.target)
        if place[v] != s or not cluster.on[t]:
            continue  # stale: the executor skips it, and so does the replay
        if not move_allowed(cluster, v, t, place, loads):
            raise InputError(f"{what}: step {action.step}: moving {action.vm} from {action.source} to "
                             f"{action.target} {_why_not(cluster, v, t, place, loads)}; refusing the plan")
        loads[s] -= cluster.load[v]
        loads[t] += cluster.load[v]
        place[v] = t
    broken = [x for x in rule_violations(cluster, place, mandatory_only=True) if x.name in held]
    if broken:
        raise InputError(f"{what}: after its last step the mandatory rule {broken[0].name} would be broken "
                         f"({broken[0].detail}), and it holds now; refusing the plan")


def _mandatory_rules_holding(cluster, place) -> set[str]:
    rules = {g.rule for g in [*cluster.anti, *cluster.affine, *cluster.vmhost] if g.mandatory}
    return rules - {x.name for x in rule_violations(cluster, place, mandatory_only=True)}


def _why_not(cluster, v: int, t: int, place, loads) -> str:
    """Words for what ``move_allowed`` refused: the rule or the capacity the move would break."""
    hn, vn = cluster.host_names, cluster.vm_names
    for g in cluster.vmhost:
        if g.mandatory and v in g.vms and not g.allows(t):
            return f"breaks the mandatory rule {g.rule} ({vn[v]} must run {'on' if g.affine else 'off'} its host group)"
    for g in cluster.anti_of.get(v, ()):
        for other in g.vms:
            if other != v and place[other] == t:
                return f"breaks the mandatory rule {g.rule} ({vn[v]} and {vn[int(other)]} would share {hn[t]})"
    after = loads[t] + cluster.load[v]
    for r, word in ((CPU, "CPU"), (MEM, "memory")):
        if after[r] > cluster.bound[t, r] + 1e-6:
            pct = 100 * after[r] / cluster.cap[t, r]
            limit = 100 * cluster.limit[t, r] / cluster.cap[t, r]
            if cluster.bound[t, r] > cluster.limit[t, r] + 1e-6:
                was = 100 * cluster.bound[t, r] / cluster.cap[t, r]
                return f"puts {hn[t]} at {pct:.0f} % {word}, above its {limit:.0f} % limit and worse than its {was:.0f} % now"
            return f"puts {hn[t]} at {pct:.0f} % {word}, above its {limit:.0f} % limit (capacity minus headroom)"
    return f"is not allowed ({hn[t]} may not receive {vn[v]})"


__all__ = ["CLOCK_SKEW_S", "check_plan_age", "check_plan_steps", "counted_moves"]
