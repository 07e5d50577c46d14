"""Host power and maintenance in a plan: DPM standby / power-on, and maintenance-mode evacuation.

``plan_power`` runs before the planner:

1. it decides which hosts leave service (DPM standby, engine/compute/dpm.py; or ``options.evacuate``
   for maintenance) or come back (DPM power-on);
2. **evacuation stage**: the optimiser's mend phase (as at threshold 1) moves the VMs that must
   leave, within capacity minus headroom and the mandatory rules; a standby candidate whose VMs cannot all
   leave stays on (its VMs stay where they were);
3. the planner then balances the cluster with those hosts changed, starting from the evacuated
   placement, and the ordering step orders every move from the original placement, so each
   intermediate step respects capacity and the mandatory rules.

After ordering, ``settle`` keeps on any leaving host the ordering could not empty, and
``actions`` numbers the power actions: power-on first (before the moves that use the woken
hosts), standby / enter-maintenance after the last move (once their hosts are empty).
Evacuation moves do not count against ``max_moves``: a host is emptied completely or not at all.
``max_moves == 0`` means no move at all: DPM then only puts hosts that are already empty into
standby (and powers hosts on).

Mandatory rules already broken by VMs that may not move (engine/compute/feasibility.py,
``exempt_pinned``) are relaxed for those VMs in ``cluster`` and ``planning``, so neither the
evacuation stage nor the planner fights a violation no plan can repair; ``settle`` gives back
the cluster with the real rules, on which the plan's violations are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ...plan import DpmEndState, DpmStep, Move, PowerAction
from ...snapshot import HostState
from .cluster import CPU, Cluster
from .dpm import PowerChoice, choose_power, end_state, ha_words, standby_reason
from .feasibility import find_conflicts, pinned_exemptions
from ..budget import MoveBudget
from ..history import History
from .hoststate import host_mask, vms_on, with_hosts_leaving, with_hosts_woken
from .optimizer import Clock, Mended, mend, move_costs
from .rules import all_violations, rule_violations
from ..options import PlanOptions
from ...words import counted, plural

EVACUATION_TIME_LIMIT_S = 10.0  # wall-clock safety net of the evacuation stage (it stops once every VM is placed)


@dataclass
class PowerPlan:
    original: Cluster  # the cluster as the snapshot shows it
    cluster: Cluster  # with the host changes made; placement: the start (moves are ordered on this)
    planning: Cluster  # the same, starting from the placement after the evacuation stage (the planner's input)
    woken: list[int] = field(default_factory=list)  # standby hosts powered on first
    leaving: list[int] = field(default_factory=list)  # hosts emptied, then put into standby / maintenance
    leave_action: str = "standby"  # or "enter-maintenance"
    why: dict[int, str] = field(default_factory=dict)  # host -> the decision in words
    notes: list[str] = field(default_factory=list)
    evacuation_moves: int = 0
    exempt_rules: list[str] = field(default_factory=list)  # mandatory rules left broken by VMs that may not move
    quarantined: dict[int, str] = field(default_factory=dict)  # VM -> why it leaves a quarantined host (in words)

    @property
    def every_vm(self) -> bool:
        return self.leave_action == "enter-maintenance"

    @property
    def first_step(self) -> int:
        """Step number of the first move: power-on actions come before every move."""
        return 1 + len(self.woken)

    def step_budget(self, budget: MoveBudget, repair_moves: int = 0) -> MoveBudget:
        """Steps the ordering may use: the balancing cap plus the repairs' and the evacuation's moves
        (neither counts against ``max_moves``)."""
        return budget.plus(repair_moves + self.evacuation_moves)

    def _must_go(self, hosts: list[int]) -> np.ndarray:
        return vms_on(self.original, host_mask(self.original, hosts), self.every_vm)

    def move_reasons(self, final: np.ndarray) -> dict[int, tuple[str, str, str | None]]:
        """Why each VM leaving a host moves: (reason, words, rule), as the planner names moves."""
        out: dict[int, tuple[str, str, str | None]] = {}
        names = self.original.host_names
        for h in self.leaving:
            for v in np.flatnonzero(self._must_go([h]) & (final != self.original.place)):
                if self.every_vm:
                    out[int(v)] = ("evacuate", f"{names[h]} enters maintenance", None)
                else:
                    out[int(v)] = ("dpm", f"empties {names[h]} for standby", None)
        for v, words in self.quarantined.items():
            if final[v] != self.original.place[v]:
                out.setdefault(v, ("evacuate", words, None))
        return out

    def soft_moves(self) -> set[int]:
        """VMs whose move is not mandatory though named ``evacuate``: those leaving a quarantined host."""
        return set(self.quarantined)

    def settle(self, place: np.ndarray) -> Cluster:
        """The cluster after the plan, given the placement the ordering reached: a host not emptied stays on.

        It carries the snapshot's rules as they are (not the planning exemptions), for the plan's violations.
        """
        done = [h for h in self.leaving if not (self._must_go([h]) & (place == h)).any()]
        for h in self.leaving:
            if h not in done:
                what = "standby" if not self.every_vm else "maintenance"
                self.notes.append(f"{self.original.host_names[h]} does not go into {what}: the moves that empty it "
                                  "could not all be ordered within the move budget, capacity and the rules")
        if done == self.leaving:
            out = self.cluster
        else:
            self.leaving = done
            base = with_hosts_woken(self.original, host_mask(self.original, self.woken)) if self.woken else self.original
            out = with_hosts_leaving(base, host_mask(self.original, done), self.every_vm)
        if out.rules is self.original.rules:
            return out
        return replace(out, rules=self.original.rules)

    def actions(self, final: np.ndarray, n_moves: int) -> list[PowerAction]:
        """Power actions with their steps: power-on before the moves, standby / enter-maintenance after them."""
        c = self.original
        out = [PowerAction(step=i, host=c.host_names[h], action="power-on", reason="dpm", detail=self.why.get(h, ""))
               for i, h in enumerate(self.woken, start=1)]
        step = len(self.woken) + n_moves + 1
        total = 0.0
        for h in self.leaving:
            if self.every_vm:
                if c.snapshot.hosts[h].state is HostState.MAINTENANCE:
                    continue  # already in maintenance: the moves were all it needed
                out.append(PowerAction(step=step, host=c.host_names[h], action="enter-maintenance",
                                       reason="maintenance", detail=self.why.get(h, "")))
            else:
                saves = self._saving(h, final)
                total += saves or 0.0
                out.append(PowerAction(step=step, host=c.host_names[h], action="standby", reason="dpm",
                                       detail=self.why.get(h, ""), saves_w=saves))
            step += 1
        if self.leaving and not self.every_vm and c.power_idle_w is not None:
            self.notes.append(f"DPM: {counted(len(self.leaving), 'host')} to standby, predicted saving ~{total:.0f} W")
        return out

    def _saving(self, h: int, final: np.ndarray) -> float | None:
        """Watts saved by host ``h`` in standby (linear idle-to-peak model; its CPU load runs elsewhere)."""
        c = self.original
        if c.power_idle_w is None or c.power_peak_w is None:
            return None
        slope = (c.power_peak_w - c.power_idle_w) / c.cap[:, CPU]
        moved = np.flatnonzero(self._must_go([h]))
        cpu = c.load[moved, CPU]
        saves = c.power_idle_w[h] + slope[h] * cpu.sum() - float((slope[final[moved]] * cpu).sum())
        return round(float(saves), 1)


    def leave_rank(self) -> np.ndarray:
        """(V,) a fraction by the order of the host each VM leaves for standby (0 for the others): with it added
        to the moves' priority, the moves that empty one host come before those of the next."""
        out = np.zeros(self.original.n_vms)
        for i, h in enumerate(self.leaving):
            out[self._must_go([h])] = (i + 1) / (len(self.leaving) + 1)
        return out

    def end_state(self, options: PlanOptions, history: History) -> DpmEndState | None:
        """DPM's end state at this demand, beyond this plan (None when DPM is off or hosts enter maintenance)."""
        dpm = options.dpm
        if dpm is None or self.every_vm:
            return None
        c = self.original
        end = end_state(c, dpm, history, list(self.leaving), list(self.woken))
        names = c.host_names
        now = set(self.leaving)
        note = f"DPM end state at this demand: {int(end.hosts_on.sum())} of {counted(int(c.on.sum()), 'host')} on"
        later = [names[h] for h in end.standby if h not in now]
        if later:
            pace = (f" ({dpm.standby_cap} a plan)" if dpm.standby_cap == 1 else
                    f" (paced: about half the rest a plan, at most {dpm.max_standby or 'no fixed number'})")
            note += f"; {', '.join(later)} could go to standby in later plans{pace}"
        if end.limit and end.standby:
            note += f"; it stops there ({end.limit})"
        if end.standby or self.leaving:
            self.notes.append(note)
        return DpmEndState(
            hosts_now=int(c.on.sum()), hosts_on=int(end.hosts_on.sum()),
            power_on=[names[h] for h in self.woken], standby_now=[names[h] for h in self.leaving],
            standby_later=later, saves_w=end.saves_w, band_low=round(dpm.band[0], 6), band_high=round(dpm.band[1], 6),
            limit=end.limit, ha=ha_words(c),
            steps=[DpmStep(hosts_on=n, cpu=_finite(u[0]), mem=_finite(u[1]), standby=names[h] if h is not None else None)
                   for n, u, h in end.steps],
        )


def _finite(x: float) -> float:
    return round(float(x), 6) if np.isfinite(x) else 0.0


def interleave_standby(moves: list[Move], power: list[PowerAction]) -> None:
    """Renumber the steps so that each host goes to standby right after the last move off it (power-on first)."""
    first = [p for p in power if p.action in ("power-on", "exit-maintenance")]
    leave = [p for p in power if p not in first]
    last = {p.host: max((i for i, m in enumerate(moves) if p.host in (m.source, m.target)), default=-1) for p in leave}
    seq: list[Move | PowerAction] = [*first, *(p for p in leave if last[p.host] < 0)]
    for i, m in enumerate(moves):
        seq.append(m)
        seq.extend(p for p in leave if last[p.host] == i)
    for step, action in enumerate(seq, start=1):
        action.step = step


def unchanged(cluster: Cluster, notes: list[str] | None = None) -> PowerPlan:
    return PowerPlan(original=cluster, cluster=cluster, planning=cluster, notes=list(notes or []))


def plan_power(cluster: Cluster, options: PlanOptions, history: History, evac: Evacuation | None = None,
               quarantine: dict[int, str] | None = None) -> PowerPlan:
    """Host changes for this plan (DPM or maintenance) and the evacuation stage; see the module doc.

    ``evac``: the maintenance evacuation already computed for this cluster and options (``evacuation``).
    ``quarantine``: host -> why it is quarantined (health): its VMs move off where that costs no rule nor capacity.
    """
    power = _plan_power(cluster, options, history, evac)
    if not options.evacuate:
        _empty_maintenance_hosts(power, options)
        if quarantine:
            _leave_quarantine(power, options, quarantine)
    # rules already broken by VMs that may not move: relaxed for them, for planning only
    exemptions = pinned_exemptions(power.cluster)
    if exemptions.broken:
        context = f"only the VMs on {', '.join(options.evacuate)} move" if options.evacuate else None
        power.notes[:0] = exemptions.notes(power.original, context)
        power.cluster = exemptions.apply(power.cluster)
        power.planning = exemptions.apply(power.planning)
        power.exempt_rules = [rule for rule, _ in exemptions.broken]
    return power


def _empty_maintenance_hosts(power: PowerPlan, options: PlanOptions) -> None:
    """Move the powered-on VMs off hosts the snapshot shows in maintenance, before the planner runs.

    They are a repair of a hard violation present now, and like every evacuation all or nothing: they
    count against neither ``max_moves`` nor ``max_repair_moves`` (0 makes none: no repair at all), and
    the planner starts from their result.
    """
    stranded = power.original.must_leave & (power.planning.place == power.original.place)
    if options.max_repair_moves == 0 or not stranded.any():
        return
    evacuated = _evacuate(replace(power.planning, movable=stranded), options, stretch=True)
    place = evacuated.place
    before = {v.name for v in rule_violations(power.planning, power.planning.place, mandatory_only=True)}
    if any(v.name not in before for v in rule_violations(power.planning, place, mandatory_only=True)):
        return  # it would break a mandatory rule (say, affinity with a VM that cannot move): the planner weighs it
    moved = int((place != power.planning.place).sum())
    if moved:  # (a host it filled beyond its headroom limit keeps that bound for the planner and the ordering)
        power.planning = replace(power.planning, place=place, bound=np.maximum(power.planning.bound, evacuated.bound))
        power.evacuation_moves += moved


def _leave_quarantine(power: PowerPlan, options: PlanOptions, hosts: dict[int, str]) -> None:
    """Move the VMs off quarantined ``hosts`` where that costs no rule and no capacity (Proactive HA's
    quarantine): each within its target's headroom limit and its mandatory rules (the evacuation stage,
    never stretched), and none of it at all when the moves would break a rule, mandatory or should, that
    holds now. They count against neither cap (like an evacuation); none when no move is allowed."""
    base = power.planning
    if options.moves_budget.nothing and options.repair_budget.nothing:
        return
    mask = host_mask(base, hosts)
    leave = vms_on(base, mask) & base.movable & ~base.must_leave
    if not leave.any():
        return
    work = replace(with_hosts_leaving(base, mask), movable=leave, must_leave=leave)
    place = _evacuate(work, options).place
    moved = place != base.place
    if not moved.any():
        return
    names = power.original.host_names
    before = {(v.kind, v.name) for v in all_violations(base, base.place)}
    broken = [v for v in all_violations(base, place) if (v.kind, v.name) not in before]
    if broken or np.any(base.host_loads(place) > np.maximum(base.limit, base.host_loads(base.place)) + 1e-6):
        what = f"rule {broken[0].name}" if broken and broken[0].kind == "rule" else "a host's limit"
        power.notes.append(f"quarantine: the VMs stay on {', '.join(names[h] for h in hosts)}: moving them off "
                           f"would break {what}")
        return
    allowed = base.allowed.copy()
    cols = np.flatnonzero(mask)
    for v in np.flatnonzero(moved):
        allowed[v, cols] = False  # the planner does not bring them back
        h = int(base.place[v])
        power.quarantined[int(v)] = f"{names[h]} is quarantined: {hosts[h]}"
    power.planning = replace(base, place=place, allowed=allowed)
    power.evacuation_moves += int(moved.sum())
    left = int((leave & ~moved).sum())
    if left:
        power.notes.append(f"quarantine: {counted(left, 'VM')} stay on {', '.join(names[h] for h in hosts)}: no other host "
                           "has room for them within its limit and the mandatory rules")


def _plan_power(cluster: Cluster, options: PlanOptions, history: History, evac: Evacuation | None) -> PowerPlan:
    if options.evacuate:
        return _maintenance(cluster, evac or evacuation(cluster, options))
    if options.dpm is None:
        return unchanged(cluster)
    choice = choose_power(cluster, options.dpm, history, empty_only=options.moves_budget.nothing)
    if choice.power_on:
        work = with_hosts_woken(cluster, host_mask(cluster, choice.power_on), history.left)
        return PowerPlan(original=cluster, cluster=work, planning=work, woken=choice.power_on, why=choice.why,
                         notes=choice.notes)
    if not choice.standby:
        return unchanged(cluster, choice.notes)
    return _standby(cluster, options, choice)


def _mend_options(options: PlanOptions) -> PlanOptions:
    """The options an evacuation mends with: threshold 1, no caps. The solver's budget is counted
    deterministically; the wall-clock limit is only a safety net, widened here so that a busy machine
    does not cut an evacuation short (the same input gives the same plan)."""
    return replace(options, threshold=1, max_moves=None, max_repair_moves=None, planner="cp-sat", dpm=None,
                   evacuate=(), time_limit_s=max(options.time_limit_s, EVACUATION_TIME_LIMIT_S))


def _evacuate(work: Cluster, options: PlanOptions, stretch: bool = False, costs: np.ndarray | None = None) -> Mended:
    """The placement after moving the VMs that must leave (``work.movable``): the repairs of phase 1
    (optimizer.mend) with only those VMs free to move. ``stretch``: a VM standing on a host that is not
    on now is a hard violation, and may fill a host up to its physical capacity when no host has room
    within its headroom limit; emptying a host for standby or a requested maintenance never does.
    ``costs``: ``move_costs(work, _mend_options(options))`` when the caller has them."""
    if not work.must_leave.any():
        return Mended(work.place.copy(), work.bound.copy(), 0, False, Clock.start(options))
    # a rule broken by VMs that stay where they are is not the evacuation's to mend
    relaxed = pinned_exemptions(work).apply(work)
    return mend(relaxed, _mend_options(options), costs,
                may_move=relaxed.movable & (relaxed.powered | relaxed.must_leave), stretch=stretch)


SPARE_ROUNDS = 2  # evacuations retried with spare hosts in place of those whose VMs could not all move


def _standby(cluster: Cluster, options: PlanOptions, choice: PowerChoice) -> PowerPlan:
    hosts, notes = list(choice.standby), list(choice.notes)
    work = with_hosts_leaving(cluster, host_mask(cluster, hosts))
    if options.moves_budget.nothing:  # only hosts already empty were chosen: nothing to move
        assert options.dpm is not None
        why = {h: standby_reason(cluster, options.dpm, choice, work.on, h) for h in hosts}
        return PowerPlan(original=cluster, cluster=work, planning=work, leaving=hosts, leave_action="standby",
                         why=why, notes=notes)
    # the evacuation stage moves only the VMs that leave; repairs and balancing are the planner's
    if options.dpm is not None and options.dpm.all_steps:
        # the whole consolidation: one host after the other (small solves), each onto the hosts that stay on
        place = cluster.place.copy()
        priced = (place.copy(), move_costs(work, _mend_options(options)))  # priced once; again only for VMs moved since
        for h in hosts:
            step = replace(work, place=place, movable=work.movable & vms_on(cluster, host_mask(cluster, [h])))
            priced = (place.copy(), move_costs(step, _mend_options(options), since=priced))
            place = _evacuate(step, options, costs=priced[1]).place
    else:
        place = _evacuate(replace(work, movable=work.movable & vms_on(cluster, host_mask(cluster, hosts))), options).place
        spare, tried = list(choice.spare), 0
        while tried < SPARE_ROUNDS and spare:
            # a host whose VMs cannot all be moved is replaced by the next that could go at this demand
            # (each check passed with every spare gone too, so a subset keeps them), tried a few rounds
            stuck = [h for h in hosts if (vms_on(cluster, host_mask(cluster, [h])) & (place == h)).any()]
            if not stuck:
                break
            tried += 1
            swap, spare = spare[:len(stuck)], spare[len(stuck):]
            kept = [h for h in hosts if h not in stuck]
            n_kept, n_on = len(kept), int(cluster.on.sum())
            for h in swap:  # within the vMotion limit, as the pace (dpm.paced) counts it
                moving = int(vms_on(cluster, host_mask(cluster, kept + [h])).sum())
                if moving <= options.dpm.moves_per_host * (n_on - len(kept) - 1):
                    kept.append(h)
            if len(kept) == n_kept:
                break  # no spare within the limit: the stuck hosts stay on (below)
            for h in stuck:
                notes.append(f"DPM: {cluster.host_names[h]} stays on: its VMs could not all be moved (capacity, rules or the solver's time budget)")
            hosts = kept
            work = with_hosts_leaving(cluster, host_mask(cluster, hosts))
            place = _evacuate(replace(work, movable=work.movable & vms_on(cluster, host_mask(cluster, hosts))), options).place
    stuck = [h for h in hosts if (vms_on(cluster, host_mask(cluster, [h])) & (place == h)).any()]
    if stuck:
        # Those hosts stay on: their VMs stay where they were (nothing moved onto a leaving host).
        back = vms_on(cluster, host_mask(cluster, stuck))
        place[back] = cluster.place[back]
        for h in stuck:
            notes.append(f"DPM: {cluster.host_names[h]} stays on: its VMs could not all be moved (capacity, rules or the solver's time budget)")
        hosts = [h for h in hosts if h not in stuck]
        if not hosts:
            return unchanged(cluster, notes)
        work = with_hosts_leaving(cluster, host_mask(cluster, hosts))
    assert options.dpm is not None
    if options.dpm.all_steps:  # one host after the other: each step says what stays on after it
        why = {h: standby_reason(cluster, options.dpm, choice, cluster.on & ~host_mask(cluster, hosts[:i + 1]), h)
               for i, h in enumerate(hosts)}
    else:
        why = {h: standby_reason(cluster, options.dpm, choice, work.on, h) for h in hosts}
    return PowerPlan(original=cluster, cluster=work, planning=replace(work, place=place), leaving=hosts,
                     leave_action="standby", why=why, notes=notes,
                     evacuation_moves=int((place != cluster.place).sum()))


@dataclass
class Evacuation:
    """Maintenance mode's evacuation stage, computed once per plan: why it cannot be done, or where the VMs go."""

    work: Cluster  # the hosts leaving; only the VMs registered on them movable
    hosts: list[int]
    conflicts: list[str]  # [] when the hosts can be emptied
    place: np.ndarray | None = None  # the placement after the evacuation (when there are no conflicts)


def evacuation(cluster: Cluster, options: PlanOptions) -> Evacuation | None:
    """The evacuation of the hosts in ``options.evacuate`` (None when there are none): conflicts or placement."""
    if not options.evacuate:
        return None
    hosts = []
    for name in options.evacuate:
        if name not in cluster._host_idx:
            raise ValueError(f"evacuate: unknown host {name!r}")
        hosts.append(cluster._host_idx[name])
    mask = host_mask(cluster, hosts)
    # Only the VMs registered on the hosts being evacuated move.
    work = replace(with_hosts_leaving(cluster, mask, every_vm=True), movable=vms_on(cluster, mask, every_vm=True))
    what = "evacuating " + ", ".join(options.evacuate)
    for h in hosts:
        state = cluster.snapshot.hosts[h].state
        if state in (HostState.STANDBY, HostState.DISCONNECTED):
            return Evacuation(work, hosts, [f"{what}: host {cluster.host_names[h]} is {state.words}; "
                                            "its VMs cannot be moved until it is on"])
    # Only the evacuated VMs move: a rule already broken elsewhere by VMs that stay is exempted
    # (find_conflicts), so it is reported in the plan but does not block the evacuation.
    conflicts = [f"{what}: {c}" for c in find_conflicts(work)]
    if conflicts:
        return Evacuation(work, hosts, conflicts)
    if options.moves_budget.nothing and vms_on(cluster, mask, every_vm=True).any():
        return Evacuation(work, hosts, [f"{what}: max moves is 0, and the {plural(len(hosts), 'host')} still {'have' if len(hosts) > 1 else 'has'} VMs registered on {'them' if len(hosts) > 1 else 'it'}"])
    place = _evacuate(work, options).place
    stuck = np.flatnonzero(vms_on(cluster, mask, every_vm=True) & mask[place])
    if len(stuck):
        names = ", ".join(cluster.vm_names[v] for v in stuck[:5]) + (" ..." if len(stuck) > 5 else "")
        return Evacuation(work, hosts, [f"{what}: no room for {counted(len(stuck), 'VM')} ({names}) on the other hosts "
                                        "within capacity minus headroom and the mandatory rules"])
    return Evacuation(work, hosts, [], place)


def _maintenance(cluster: Cluster, evac: Evacuation) -> PowerPlan:
    assert evac.place is not None, "an evacuation with conflicts is not planned"
    work, hosts, place = evac.work, evac.hosts, evac.place
    why = {h: f"{counted(len(np.flatnonzero(vms_on(cluster, host_mask(cluster, [h]), every_vm=True))), 'VM')} registered on it moved off"
           for h in hosts}
    # The planner gets nothing more to move: an evacuation plan moves only the evacuated VMs, once.
    planning = replace(work, place=place, movable=np.zeros(cluster.n_vms, dtype=bool))
    return PowerPlan(original=cluster, cluster=work, planning=planning, leaving=hosts, leave_action="enter-maintenance",
                     why=why, evacuation_moves=int((place != cluster.place).sum()))


__all__ = ["Evacuation", "PowerPlan", "evacuation", "plan_power"]
