"""Storage planning: which disks move between datastores (Storage vMotion), after the compute plan.

Disks that must follow their VM to a host that does not mount their datastore move with it
(``Move.disks``, carry.py). The storage moves come after the compute moves (and before the
hosts that leave enter standby or maintenance): a disk may only go to a datastore that both the
VM's host now and the host the compute moves leave it on mount. Every plan of a snapshot with datastores lists them
(``Plan.datastores``: space before and after), whether Storage DRS is on or not.
"""

from __future__ import annotations

import numpy as np

from ...plan import CopyEstimate, DatastoreChange, DiskMove, Plan, StorageMove, Violation, plan_totals
from ...snapshot import Snapshot
from ..options import PlanOptions, StorageOptions
from .carry import carry_disks
from .copy import copy_seconds
from .pool import Pool, build_pool
from .rules import StorageRules, build_rules
from .settings import Settings, settings
from ..words import pct
from .select import Choice, Step, choose

AFTER_MOVES = ("standby", "enter-maintenance")  # power actions numbered after the last move
# a recommended storage move in a datastore cluster whose automation is manual (StorageOptions.manual_pods)
MANUAL_POD_WORDS = "datastore cluster {pod}'s automation is manual: a recommendation for an admin, not made automatically"


def plan_storage(snapshot: Snapshot, options: PlanOptions, plan: Plan) -> Plan:
    """``plan`` (the compute plan) with the storage moves and the datastores added."""
    if not snapshot.datastores:
        return plan
    out = _plan_storage(snapshot, options, plan)
    # (model_copy does not run the model's validators: the totals are derived here again)
    return out.model_copy(update={"totals": plan_totals(out.moves, out.storage_moves)})


def _plan_storage(snapshot: Snapshot, options: PlanOptions, plan: Plan) -> Plan:
    storage = options.storage
    plan, carry_conflicts = carry_disks(snapshot, plan, storage)
    final_host = {m.vm: m.target for m in plan.moves}  # the last move of a VM wins (hops come first)
    carried = {(m.vm, d.disk): d.target for m in plan.moves for d in m.disks}
    unknown = [n for n in (storage.evacuate if storage else ()) if n not in {d.name for d in snapshot.datastores}]
    st = settings(snapshot, storage) if storage is not None else None
    if unknown:
        return _infeasible(plan, build_pool(snapshot, final_host, (), carried),
                           [f"evacuating {n}: no datastore of that name in the cluster" for n in unknown], st)
    pool = build_pool(snapshot, final_host, storage.evacuate if storage else (), carried,
                      storage.growth_days if storage else 0.0)
    rules = build_rules(pool, st.together if st is not None else True)
    broken = _broken_rules(pool, rules, _snapshot_disk_ds(pool))
    plan = plan.model_copy(update={"violations_before": list(plan.violations_before) + broken})
    if carry_conflicts:
        return _infeasible(plan, build_pool(snapshot), carry_conflicts, st)
    if storage is None or plan.status != "ok":
        return plan.model_copy(update={"datastores": _datastores(pool, pool.used, evacuated=False, st=st),
                                       "violations_after": list(plan.violations_after) + broken})
    choice = choose(pool, rules, storage)
    if choice.conflicts:
        return _infeasible(plan, pool, choice.conflicts, st)
    first = _first_step(plan)
    moves = _storage_moves(pool, storage, choice, first_step=first, st=st)
    # a host action after the last compute move follows the storage moves (one before it, as a standby
    # right after the moves that empty its host in an --all-steps plan, keeps its step)
    power = [p.model_copy(update={"step": p.step + len(moves)}) if p.action in AFTER_MOVES and p.step >= first else p
             for p in plan.power]
    notes = list(plan.notes) + choice.notes
    if not moves and not choice.notes:
        notes.append(_quiet_note(pool, storage))
    return plan.model_copy(update={
        "storage_moves": moves, "power": power, "notes": notes,
        "datastores": _datastores(pool, choice.used, st=st, disk_ds=choice.disk_ds),
        "violations_after": list(plan.violations_after) + _broken_rules(pool, rules, choice.disk_ds),
    })


def _snapshot_disk_ds(pool: Pool) -> np.ndarray:
    """Every disk's datastore in the snapshot (the pool's order: VM by VM), before any move carries it."""
    return np.array([pool.ds_index(k.datastore) for vm in pool.snapshot.vms for k in vm.disks], dtype=np.int64)


def _broken_rules(pool: Pool, rules: StorageRules, disk_ds: np.ndarray) -> list[Violation]:
    """The storage rules broken with the disks on ``disk_ds``, one violation a rule (as compute rules)."""
    words: dict[str, list[str]] = {}
    for rule, detail in rules.violations(pool, disk_ds):
        words.setdefault(rule, []).append(detail)
    return [Violation(kind="rule", name=rule, detail="; ".join(details)) for rule, details in words.items()]


def _first_step(plan: Plan) -> int:
    before = [m.step for m in plan.moves] + [p.step for p in plan.power if p.action not in AFTER_MOVES]
    return max(before, default=0) + 1


def _infeasible(plan: Plan, pool: Pool, conflicts: list[str], st: Settings | None = None) -> Plan:
    return plan.model_copy(update={
        "status": "infeasible", "moves": [], "power": [], "storage_moves": [], "suppressed": [],
        "violations_after": plan.violations_before, "conflicts": list(plan.conflicts) + conflicts,
        "notes": [_infeasible_note(conflicts)],
        "datastores": _datastores(pool, pool.used, evacuated=False, st=st),
    })


def _infeasible_note(conflicts: list[str]) -> str:
    if any(c.startswith("evacuating") for c in conflicts):
        return "the datastores cannot be emptied (see conflicts): nothing is moved"
    if any(c.startswith("moving") for c in conflicts):
        return "the disks of a VM that must change host have no datastore there (see conflicts): nothing is moved"
    return "the storage rules cannot all hold: nothing is moved until they are changed"


def spread(pool: Pool, used: np.ndarray) -> float:
    """The storage imbalance measure: population std-dev of space utilisation over the datastores in
    service, averaged over the pools weighted by their datastore count (moves never cross pools)."""
    util = used / pool.cap
    total, n = 0.0, 0
    for q in range(len(pool.pod_names)):
        members = (pool.pod == q) & ~pool.leaving
        if members.sum() > 1:
            total += float(util[members].std()) * int(members.sum())
            n += int(members.sum())
    return total / n if n else 0.0


def _storage_moves(pool: Pool, options: StorageOptions, choice: Choice, first_step: int,
                   st: Settings | None = None) -> list[StorageMove]:
    used = pool.used.copy()
    score = spread(pool, used)
    out: list[StorageMove] = []
    for i, step in enumerate(choice.steps):
        detail = step.detail
        src = step.disks[0][1]
        before = (used[src] / pool.cap[src], used[step.target] / pool.cap[step.target])
        for k, s in step.disks:
            used[s] -= pool.disk_space[k]
        used[step.target] += step.size_gb
        new = spread(pool, used)
        if step.reason in ("space", "latency"):
            detail += (f": {pool.ds_names[src]} {pct(before[0])} → {pct(used[src] / pool.cap[src])}, "
                       f"{pool.ds_names[step.target]} {pct(before[1])} → {pct(used[step.target] / pool.cap[step.target])}")
        if st is not None and st.manual[src] and step.reason != "evacuate":
            detail += f"; {MANUAL_POD_WORDS.format(pod=pool.pod_names[pool.pod[src]])}"
        out.append(_move(pool, options, step, first_step + i, detail, round(score - new, 6)))
        score = new
    return out


def _move(pool: Pool, options: StorageOptions, step: Step, number: int, detail: str, gain: float) -> StorageMove:
    vm = pool.snapshot.vms[int(pool.disk_vm[step.disks[0][0]])]
    copied = float(sum(pool.disk_copy[k] for k, _ in step.disks))  # (today's space: growth is not copied)
    return StorageMove(
        step=number,
        vm=vm.name,
        disks=[DiskMove(disk=pool.disk_names[k], source=pool.ds_names[s], target=pool.ds_names[step.target],
                        size_gb=round(float(pool.disk_copy[k]), 3)) for k, s in step.disks],
        reason=step.reason,
        detail=detail,
        rule=step.rule,
        gain=gain,
        storage_vmotion=CopyEstimate(seconds=round(copy_seconds(copied, options.copy_mbps), 1),
                                     data_gb=round(copied, 3)),
        mandatory=step.mandatory,
    )


def _datastores(pool: Pool, used_after: np.ndarray, evacuated: bool = True,
                st: Settings | None = None, disk_ds: np.ndarray | None = None) -> list[DatastoreChange]:
    """Every datastore before and after; ``state`` after the plan (``evacuated``: the datastores
    being emptied enter maintenance); ``st``: with Storage DRS on, what each was judged by."""
    s = pool.snapshot
    out = []
    growth = pool.growth_on(pool.disk_ds if disk_ds is None else disk_ds)
    grows = pool.growth_days > 0
    used_after = used_after - growth  # (the space used now; the growth is said apart)
    for i, d in enumerate(s.datastores):
        judged = {}
        if st is not None:
            judged = {"space_threshold": round(float(st.threshold[i]), 6),
                      "latency_threshold_ms": float(st.latency[i]) if st.io[i] else None,
                      "automation": "off" if not st.enabled[i] else "manual" if st.manual[i] else "automated"}
        out.append(DatastoreChange(
            name=d.name, capacity_gb=d.capacity_gb, used_before_gb=round(d.used_gb, 3) + 0.0,
            used_after_gb=max(round(float(used_after[i]), 3), 0.0) + 0.0, latency_ms=d.latency_ms,
            state="maintenance" if evacuated and pool.leaving[i] else d.state.value,
            datastore_cluster=d.datastore_cluster, provisioned_gb=d.provisioned_gb, **judged,
            growth_gb=round(float(growth[i]), 3) if grows else None,
        ))
    return out


def _quiet_note(pool: Pool, options: StorageOptions) -> str:
    """Why no disk moves, when nothing else said so."""
    if options.evacuate:
        them = "them" if len(options.evacuate) > 1 else "it"
        return f"{', '.join(options.evacuate)}: no disks on {them}; nothing to move"
    if options.moves_budget.nothing:
        return "sdrs max moves 0: no storage moves allowed"
    st = settings(pool.snapshot, options)
    util = pool.used / pool.cap
    top = int(np.argmax(np.where(pool.leaving, -1.0, util)))
    service = np.flatnonzero(~pool.leaving)
    space = st.all_words(service)
    words = f"datastores within {space.replace('their', 'their own')} (fullest: {pool.ds_names[top]} {pct(util[top])})"
    judged = service[st.io[service]]
    lat = {float(st.latency[d]) for d in judged}
    if len(lat) == 1:
        words += f" and the {lat.pop():g} ms latency threshold"
    elif lat:
        words += " and their own latency thresholds"
    return words + ": no storage moves"
