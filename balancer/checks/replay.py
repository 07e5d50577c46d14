"""May a saved plan be carried out on the cluster as it is now? Replayed step by step with the engine's checks.

``apply`` reads a plan written earlier (or by hand) and a fresh snapshot. Before anything is
carried out, the plan's actions are replayed on the fresh snapshot with the same checks the
engine orders its own moves by (``engine.compute.rules.move_allowed``): after every move each host
stays within its bound (capacity minus headroom, or no worse than it was when above it; for a
repair -- a mandatory move -- its physical capacity, as the engine's hard repairs may fill it) and
no mandatory rule that held is broken. A move the executor would skip -- its VM is no longer on
the planned source, or its target is not on -- is skipped here too. Power actions change which
hosts are on, as they will when carried out. Affinity is judged after the last step (a group
moves one VM at a time).

Disks are replayed the same way: a storage move (or a host move taking disks along) whose disk
is no longer on its planned source is skipped; otherwise every disk must land on a datastore
the VM's host mounts (and every disk a host move leaves behind must stay on one the new host
mounts), and no step may fill a datastore beyond Storage DRS's space threshold (beyond its
capacity for a mandatory move: an evacuation or a rule), nor break a storage rule that holds.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import numpy as np

from ..engine.compute.cluster import CPU, MEM, build_cluster, tally_refusal
from ..engine.compute.hoststate import host_mask, with_hosts_leaving, with_hosts_woken
from ..engine.budget import MoveBudget
from ..engine.options import PlanOptions
from ..engine.compute.compat import refusal
from ..engine.compute.constraints import Shape
from ..engine.compute.rules import move_allowed, rule_violations
from ..errors import InputError
from ..plan import Move, Plan, StorageMove
from ..snapshot import DatastoreState, Snapshot, VmdkRule, VmDatastoreRule

CLOCK_SKEW_S = 60.0  # a plan may claim a collection time this much later than the fresh snapshot's


def check_plan_age(fresh: Snapshot, plan: Plan, max_age_s: float, what: str = "plan") -> float:
    """The plan's age in seconds on the cluster's clock; InputError when it cannot be judged, is too old,
    or claims a time later than the fresh snapshot's (beyond ``CLOCK_SKEW_S``)."""
    return check_age(fresh.collected_at, plan.collected_at, max_age_s, what)


def check_age(now: datetime | None, collected_at: str | None, max_age_s: float, what: str) -> float:
    """The age in seconds of a snapshot collected at ``collected_at`` (ISO 8601) when the cluster's
    clock says ``now``; InputError when it cannot be judged, is too old, or is from the future."""
    if collected_at is None:
        raise InputError(f"{what}: has no collected_at, so its age cannot be checked against --max-age; "
                         "make it again with recommend")
    if now is None:
        raise InputError(f"{what}: the cluster's snapshot has no collection time to judge the plan's age by")
    age = (_utc(now) - _utc(datetime.fromisoformat(collected_at))).total_seconds()
    if age < -CLOCK_SKEW_S:
        raise InputError(f"{what}: collected_at {collected_at} is {-age:.0f} s later than the cluster's clock "
                         f"({now.isoformat()}); refusing a plan from the future")
    if age > max_age_s:
        raise InputError(f"{what}: made from a snapshot {age:.0f} s old (limit {max_age_s:.0f} s); run recommend again")
    return age


def _utc(t: datetime) -> datetime:
    """A time without a zone is taken as UTC (snapshots are collected in UTC)."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def counted_moves(plan: Plan) -> int:
    """Moves that count against a cycle's move cap (``max_moves``): balancing and should-rule moves --
    not repairs (mandatory moves) nor those emptying a host (reason dpm or evacuate)."""
    return sum(1 for m in plan.moves if not m.mandatory and m.reason not in ("dpm", "evacuate"))


def repair_moves(plan: Plan) -> int:
    """Moves that count against the repair cap (``max_repair_moves``): mandatory moves but evacuations."""
    return sum(1 for m in plan.moves if m.mandatory and m.reason != "evacuate")


def check_plan_steps(fresh: Snapshot, plan: Plan, options: PlanOptions, what: str = "plan") -> None:
    """Replay ``plan`` on ``fresh``; InputError naming the first step that would overload a host or break
    a mandatory rule that holds. ``options``: headroom and move cap (``max_moves``)."""
    if not options.moves_budget.allows(counted_moves(plan)):
        raise InputError(f"{what}: {counted_moves(plan)} balancing moves (not counting repairs and those that empty "
                         f"a host), more than the {options.max_moves} allowed per cycle (drs.max_moves_per_cycle, "
                         "or --max-moves)")
    if not options.repair_budget.allows(repair_moves(plan)):
        raise InputError(f"{what}: {repair_moves(plan)} repair moves, more than the {options.max_repair_moves} allowed "
                         "per cycle (drs.max_repair_moves)")
    storage_cap = options.storage.moves_budget if options.storage is not None else MoveBudget()
    counted = sum(1 for m in plan.storage_moves if m.reason != "evacuate")
    if not storage_cap.allows(counted):
        raise InputError(f"{what}: {counted} storage moves (not counting those that empty a datastore), more than "
                         f"the {storage_cap.cap} allowed per cycle (sdrs.max_moves_per_cycle)")
    cluster = build_cluster(fresh, options)
    carried = {m.vm for m in plan.moves if m.disks}
    if carried and fresh.datastores:
        # a host move taking disks along may go to a host that does not mount where they are now:
        # for its VM the mounts are judged by the disk replay (the disks taken, and those left)
        unmounted = build_cluster(fresh.model_copy(update={"datastores": []}), options)
        for vm in carried & set(cluster.vm_names):
            v = cluster.vm_index(vm)
            cluster.allowed[v] = unmounted.allowed[v]
    place = cluster.place.copy()
    loads = cluster.host_loads(place)
    held = _mandatory_rules_holding(cluster, place)
    disks = _DiskReplay(fresh, options.storage.space_threshold if options.storage is not None else 1.0)
    for action in plan.actions:
        if isinstance(action, StorageMove):
            why = disks.storage_move(action)
            if why:
                raise InputError(f"{what}: step {action.step}: {why}; refusing the plan")
            continue
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
        # a repair (a mandatory move) may fill a host up to its physical capacity, as the planner's hard repairs do
        judged = replace(cluster, bound=np.maximum(cluster.bound, cluster.cap)) if action.mandatory else cluster
        if not move_allowed(judged, v, t, place, loads):
            unmounted = disks.unmounted(action)
            if unmounted:
                raise InputError(f"{what}: step {action.step}: {unmounted}; refusing the plan")
            raise InputError(f"{what}: step {action.step}: moving {action.vm} from {action.source} to "
                             f"{action.target} {_why_not(judged, v, t, place, loads)}; refusing the plan")
        why = disks.host_move(action)
        if why == "stale":
            continue  # a disk it takes along is no longer on its planned source: the executor skips it
        if why:
            raise InputError(f"{what}: step {action.step}: {why}; refusing the plan")
        loads[s] -= cluster.load[v]
        loads[t] += cluster.load[v]
        place[v] = t
    broken = [x for x in rule_violations(cluster, place, mandatory_only=True) if x.name in held]
    if broken:
        raise InputError(f"{what}: after its last step the mandatory rule {broken[0].name} would be broken "
                         f"({broken[0].detail}), and it holds now; refusing the plan")
    broken_storage = disks.rules_broken()
    if broken_storage:
        name, detail = broken_storage
        raise InputError(f"{what}: after its last step the storage rule {name} would be broken ({detail}), "
                         "and it holds now; refusing the plan")


class _DiskReplay:
    """Where every disk is and how full every datastore is, step by step (the storage half of the replay)."""

    def __init__(self, fresh: Snapshot, threshold: float):
        self.fresh = fresh
        self.threshold = threshold
        self.stores = {d.name: d for d in fresh.datastores}
        self.used = {d.name: d.used_gb for d in fresh.datastores}
        self.host = {v.name: v.host for v in fresh.vms}
        self.at = {(v.name, k.name): k.datastore for v in fresh.vms for k in v.disks}
        self.space = {(v.name, k.name): k.space_gb for v in fresh.vms for k in v.disks}
        self.disks_of = {v.name: [k.name for k in v.disks] for v in fresh.vms}
        self.rules = [r for r in fresh.storage_rules if r.enabled]
        self.held = {r.name for r in self.rules if self._broken(r) is None}

    def _mounted(self, ds: str, host: str) -> bool:
        return host in self.stores[ds].hosts

    def _land(self, vm: str, moves, host: str, mandatory: bool) -> str | None:
        """Check, then make, the disk moves of VM ``vm`` running on ``host``; the reason when not allowed."""
        live = [m for m in moves if self.at.get((vm, m.disk)) == m.source]
        if len(live) < len(moves):
            return "stale"  # a disk is not on its planned source: the executor skips the move
        coming: dict[str, float] = {}
        for m in live:
            t = self.stores[m.target]
            if t.state is DatastoreState.MAINTENANCE:
                return "stale"
            if not self._mounted(m.target, host):
                return f"puts disk {m.disk!r} of VM {vm} on datastore {m.target}, which its host {host} does not mount"
            coming[m.target] = coming.get(m.target, 0.0) + self.space[(vm, m.disk)]
        for ds, gb in coming.items():
            cap = self.stores[ds].capacity_gb
            limit = cap if mandatory else cap * self.threshold
            after = self.used[ds] + gb
            if after > limit + 1e-6:
                was = self.used[ds] / cap
                what = "its capacity" if mandatory else f"the {100 * self.threshold:.0f} % space threshold"
                extra = f" (it is at {100 * was:.0f} % now)" if was * cap > limit else ""
                return f"fills datastore {ds} to {100 * after / cap:.0f} %, above {what}{extra}"
        for m in live:
            gb = self.space[(vm, m.disk)]
            self.used[m.source] -= gb
            self.used[m.target] += gb
            self.at[(vm, m.disk)] = m.target
        return None

    def storage_move(self, move: StorageMove) -> str | None:
        host = self.host.get(move.vm)
        if host is None:
            return None
        why = self._land(move.vm, move.disks, host, move.mandatory or move.reason in ("evacuate", "rule"))
        return None if why == "stale" else why

    def host_move(self, move: Move) -> str | None:
        """A host move: its disks go along; the disks left behind must be on datastores the new host mounts."""
        if move.vm not in self.host:
            return None
        if move.disks and any(self.at.get((move.vm, m.disk)) != m.source for m in move.disks):
            return "stale"
        if move.disks:
            why = self._land(move.vm, move.disks, move.target, True)
            if why:
                return why
        why = self.unmounted(move)
        if why:
            return why
        self.host[move.vm] = move.target
        return None

    def unmounted(self, move: Move) -> str | None:
        """Words for a host move leaving a disk of its VM on a datastore the new host does not mount; None when none."""
        taken = {d.disk for d in move.disks}
        for disk in self.disks_of.get(move.vm, []):
            ds = self.at[(move.vm, disk)]
            if disk not in taken and ds in self.stores and not self._mounted(ds, move.target):
                return (f"moves VM {move.vm} to {move.target}, which does not mount datastore {ds} "
                        f"holding its disk {disk!r}")
        return None

    def _broken(self, rule: VmdkRule | VmDatastoreRule) -> str | None:
        if isinstance(rule, VmdkRule):
            names = rule.disks or self.disks_of.get(rule.vm, [])
            where = [self.at[(rule.vm, d)] for d in names if (rule.vm, d) in self.at]
            if rule.type == "vmdk-affinity" and len(set(where)) > 1:
                return f"VM {rule.vm}'s disks on {', '.join(sorted(set(where)))}"
            if rule.type == "vmdk-anti-affinity" and len(set(where)) < len(where):
                return f"two of VM {rule.vm}'s disks share a datastore"
            return None
        seen: dict[str, str] = {}
        for vm in rule.vms:
            for ds in {self.at[(vm, d)] for d in self.disks_of.get(vm, [])}:
                if ds in seen and seen[ds] != vm:
                    return f"VMs {seen[ds]} and {vm} both have disks on {ds}"
                seen[ds] = vm
        return None

    def rules_broken(self) -> tuple[str, str] | None:
        for r in self.rules:
            if r.name in self.held:
                why = self._broken(r)
                if why:
                    return r.name, why
        return None


def _mandatory_rules_holding(cluster, place) -> set[str]:
    rules = {g.rule for g in cluster.rules if g.mandatory}
    return rules - {x.name for x in rule_violations(cluster, place, mandatory_only=True)}


def _why_not(cluster, v: int, t: int, place, loads) -> str:
    """Words for what ``move_allowed`` refused: the rule or the capacity the move would break."""
    hn, vn = cluster.host_names, cluster.vm_names
    for g in sorted(cluster.rules, key=lambda g: g.shape is not Shape.HOSTS):  # host rules first
        why = g.refuses(v, t, place, hn, vn) if g.mandatory else None
        if why:
            return why
    after = loads[t] + cluster.load[v]
    for r, word in ((CPU, "CPU"), (MEM, "memory")):
        if after[r] > cluster.bound[t, r] + 1e-6:
            pct = 100 * after[r] / cluster.cap[t, r]
            limit = 100 * cluster.limit[t, r] / cluster.cap[t, r]
            if cluster.bound[t, r] > cluster.limit[t, r] + 1e-6:
                was = 100 * cluster.bound[t, r] / cluster.cap[t, r]
                return f"puts {hn[t]} at {pct:.0f} % {word}, above its {limit:.0f} % limit and worse than its {was:.0f} % now"
            return f"puts {hn[t]} at {pct:.0f} % {word}, above its {limit:.0f} % limit (capacity minus headroom)"
    for r, tally in enumerate(cluster.tallies, start=MEM + 1):
        if after[r] > cluster.bound[t, r] + 1e-6:
            return f"puts {hn[t]} at {tally_refusal(tally, float(after[r]), float(cluster.limit[t, r]))}"
    vm = cluster.snapshot.vms[v]
    duty = refusal(cluster.snapshot, cluster.snapshot.hosts[t], vm.mem_mb, vm.vcpus, vm, cluster.closed)
    if duty is not None:
        return f"is not allowed ({hn[t]}: {duty})"
    return f"is not allowed ({hn[t]} may not receive {vn[v]})"


__all__ = ["CLOCK_SKEW_S", "check_plan_age", "check_plan_steps", "counted_moves"]
