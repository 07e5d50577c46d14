"""Repairs: the moves that mend what is wrong now, in the order of obligations, on clusters of any size.

The order every planner holds to (docs/optimizer.md, docs/design.md):

1. **hard** -- mandatory rules, host duties (a powered-on VM runs on a host that is on and that
   the mandatory VM-host rules allow) and physical capacity (100 %): no move breaks one that holds;
2. **hard violations present now are mended first**: VMs on a host that is not on or that a
   mandatory rule forbids, mandatory anti-affinity members sharing a host, mandatory affinity
   groups split over hosts, hosts above physical capacity;
3. **the headroom limit** (capacity minus headroom) next, never at the price of 1;
4. should-rules, 5. balance: the balancing search and CP-SAT's should-rule rounds, after this.

``repair`` is a constructive pass, linear in the moves it makes (each placement is a few numpy
operations over the hosts), so it mends thousands of VMs on a 5,000-host cluster in seconds:

- a VM that must move goes with its mandatory affinity group (a *unit*: the group moves as one,
  to a host every member may use) to the allowed host without a member of its anti-affinity rules
  where it leaves the most room (should-rules it keeps now are kept when a host allows it, then the
  fewest members move, then a host with room for the unit's configured CPU is taken first);
- a host above its ceiling sheds the unit that alone brings it under (the one cheapest to move),
  or else its largest, one after the other;
- targets stay within capacity minus headroom; when no host has room, one VM on a candidate host
  is moved on to make room (an ejection chain of depth one; at most CHAINS of them per repair, so
  a cluster with no room anywhere stays fast);
- only then may a *hard* repair fill a host up to its physical capacity: mending a hard violation
  comes before our headroom (the plan's ``bound`` says how far, so the ordering allows it -- for
  repairs only -- and the report shows the host above its headroom limit).

Members that may not move stay, and the others of their unit join them. Every move is recorded in
sequence (``Repair.rank``): each step was valid when it was taken, so the ordering tries them in
that order. What is still broken afterwards (the caller tries CP-SAT rounds on it) is diagnosed by
``unmended_reasons``: each violation with the reason no move mends it, in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...snapshot import HostState
from ..budget import MoveBudget
from .cluster import CPU, MEM, Cluster
from .compat import refusal
from ...words import counted, plural

EPS = 1e-6
CHAIN_HOSTS = 32  # candidate hosts tried for an ejection chain
CHAIN_VMS = 8  # VMs per candidate host tried for eviction
CHAINS = 256  # ejection chains tried in one repair, at most (a cluster with no room anywhere stays fast)


@dataclass
class Repair:
    place: np.ndarray  # the placement after the repairs
    bound: np.ndarray  # (H, 2) what each host may carry after any step (raised where a hard repair needed it)
    moves: int  # VMs away from their starting host
    capped: bool = False  # the repair cap (max_repair_moves) stopped a repair
    # (V,) when each VM last moved, in the repair's own sequence (-1: not moved): every step of that
    # sequence was valid when it was taken, so the ordering tries the moves in it first
    rank: np.ndarray | None = None


class _Units:
    """Mandatory affinity groups as units (connected components): the VMs that must share a host."""

    def __init__(self, cluster: Cluster):
        V = cluster.n_vms
        parent = np.arange(V)

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = int(parent[a])
            return a

        for g in cluster.together:
            if g.mandatory and len(g.vms) > 1:
                root = find(int(g.vms[0]))
                for v in g.vms[1:]:
                    r = find(int(v))
                    if r != root:
                        parent[r] = root
        self.members: dict[int, np.ndarray] = {}
        grouped = [int(v) for g in cluster.together if g.mandatory for v in g.vms]
        roots: dict[int, list[int]] = {}
        for v in sorted(set(grouped)):
            roots.setdefault(find(v), []).append(v)
        for vms in roots.values():
            arr = np.array(vms, dtype=np.int64)
            for v in vms:
                self.members[v] = arr

    def of(self, v: int) -> np.ndarray:
        got = self.members.get(v)
        return got if got is not None else np.array([v], dtype=np.int64)

    def grouped(self, v: int) -> bool:
        return v in self.members


class Repairer:
    """State of one repair: the placement, host loads, the moves spent; see the module doc."""

    def __init__(self, cluster: Cluster, place: np.ndarray, may_move: np.ndarray | None = None,
                 budget: MoveBudget = MoveBudget(), stretch: bool = True):
        c = self.c = cluster
        self.place0 = place.copy()
        self.place = place.copy()
        self.loads = c.host_loads(self.place)
        self.may_move = (c.movable & c.powered) if may_move is None else may_move
        self.sheddable = self.may_move & (c.load.sum(axis=1) > 0)  # moving it takes load off its host
        self.budget = budget
        self.stretch = stretch
        self.capped = False
        self.spent = 0
        self.units = _Units(c)
        self.anti = {v: np.unique(np.concatenate([g.vms for g in gs])) for v, gs in c.apart_of.items()}
        # should-rules, for preference only: (H,) masks of hosts where a VM breaks a should VM-host rule
        self.soft_bad: dict[int, np.ndarray] = {}
        for g in c.host_sets:
            if not g.mandatory and len(g.vms):
                bad = ~g.ok
                for v in g.vms:
                    v = int(v)
                    self.soft_bad[v] = self.soft_bad[v] | bad if v in self.soft_bad else bad.copy()
        self.soft_anti: dict[int, list[np.ndarray]] = {}
        for g in c.apart:
            if not g.mandatory:
                for v in g.vms:
                    self.soft_anti.setdefault(int(v), []).append(g.vms)
        self.ceiling_hard = c.cap if stretch else c.limit
        self.stretched: set[int] = set()  # hosts a hard repair filled above their headroom limit at some point
        self.chains_left = CHAINS
        self.rank = np.full(c.n_vms, -1, dtype=np.int64)
        self.seq = 0
        self.peak = self.loads.copy()  # the most each host carried at any point of the sequence

    # ---- where a unit may go ---------------------------------------------------------------

    def _movable_unit(self, unit: np.ndarray) -> bool:
        return bool(self.may_move[unit].all())

    def _need(self, unit: np.ndarray) -> np.ndarray:
        """(H, 2) load the unit adds to each host: its members not already there."""
        c = self.c
        need = np.broadcast_to(c.load[unit].sum(axis=0), (c.n_hosts, c.load.shape[1])).copy()
        np.subtract.at(need, self.place[unit], c.load[unit])
        return need

    def _rule_ok(self, unit: np.ndarray) -> np.ndarray:
        """(H,) hosts every member may run on under the mandatory rules and host states, no anti-affinity partner there."""
        c = self.c
        ok = c.on & c.allowed[unit].all(axis=0)
        inside = set(int(v) for v in unit)
        for v in unit:
            partners = self.anti.get(int(v))
            if partners is not None:
                others = [int(p) for p in partners if int(p) not in inside]
                ok[self.place[others]] = False
        return ok

    def _soft_breaks(self, unit: np.ndarray) -> np.ndarray:
        """(H,) should-rules the unit's members would break on each host (for preference)."""
        out = np.zeros(self.c.n_hosts)
        for v in unit:
            v = int(v)
            if v in self.soft_bad:
                out += self.soft_bad[v]
            for g in self.soft_anti.get(v, ()):
                np.add.at(out, self.place[g[g != v]], 1.0)
        return out

    def _targets(self, unit: np.ndarray) -> np.ndarray:
        """(H,) hosts the unit may go to under the rules: members that may not move stay, so the others
        join them (none when they stand on several hosts); a VM alone leaves its host."""
        ok = self._rule_ok(unit)
        pinned = unit[~self.may_move[unit]]
        if len(pinned):
            hosts = np.unique(self.place[pinned])
            only = np.zeros(self.c.n_hosts, dtype=bool)
            if len(hosts) == 1:
                only[hosts[0]] = True
            ok &= only
        if len(unit) == 1:
            ok[self.place[unit[0]]] = False
        return ok

    def _choose(self, unit: np.ndarray, ceiling: np.ndarray, exclude: int | None = None) -> int | None:
        """The best host for ``unit`` within ``ceiling``: should-rules kept first, then the fewest members
        to move, then a host known to have room for its VMs' configured CPU (a burst: Cluster.cpu_burst;
        a host whose cores are not known is not), then the most room left."""
        c = self.c
        need = self._need(unit)
        ok = self._targets(unit) & np.all(self.loads + need <= ceiling + EPS, axis=1)
        if exclude is not None:
            ok[exclude] = False
        if not ok.any():
            return None
        hosts = np.flatnonzero(ok)
        fill = ((self.loads[hosts] + need[hosts]) / c.cap[hosts]).max(axis=1)
        burst = c.cpu_burst(unit[:, None], hosts[None, :]).sum(axis=0)
        room = c.cores_known(hosts) & (self.loads[hosts, CPU] + need[hosts, CPU] + burst <= c.cap[hosts, CPU] + EPS)
        there = np.bincount(self.place[unit], minlength=c.n_hosts)[hosts] if len(unit) > 1 else np.zeros(len(hosts))
        soft = self._soft_breaks(unit)[hosts]
        return int(hosts[np.lexsort((hosts, fill, ~room, -there, soft))[0]])

    # ---- moving --------------------------------------------------------------------------

    def _cost(self, unit: np.ndarray, h: int) -> int:
        """Moves the budget counts for sending ``unit`` to ``h``: VMs leaving home, less those going home."""
        away = (self.place[unit] != self.place0[unit])
        after = (h != self.place0[unit])
        return int(after.sum() - away.sum())

    def _move(self, unit: np.ndarray, h: int) -> bool:
        cost = self._cost(unit, h)
        if not self.budget.allows(self.spent + cost):
            self.capped = True
            return False
        c = self.c
        for v in unit:
            v = int(v)
            if self.place[v] != h:
                self.loads[self.place[v]] -= c.load[v]
                self.loads[h] += c.load[v]
                self.place[v] = h
                self.rank[v] = self.seq
                self.seq += 1
        self.spent += cost
        self.peak[h] = np.maximum(self.peak[h], self.loads[h])
        if np.any(self.loads[h] > c.limit[h] + EPS):
            self.stretched.add(h)
        return True

    def place_unit(self, unit: np.ndarray, hard: bool) -> bool:
        """Move ``unit`` off its host(s) to the best host with room, making room by one eviction if needed:
        within the headroom limit first (directly, then by an eviction), and only then, for a hard
        repair, up to physical capacity."""
        c = self.c
        tiers = [c.limit] + ([self.ceiling_hard] if hard and self.stretch else [])
        for ceiling in tiers:
            h = self._choose(unit, ceiling)
            if h is not None:
                return self._move(unit, h)
            if self.chains_left > 0:
                self.chains_left -= 1
                if self._chain(unit, ceiling):
                    return True
        return False

    def _chain(self, unit: np.ndarray, ceiling: np.ndarray) -> bool:
        """Make room on a host for ``unit`` by moving one VM there on (within capacity minus headroom)."""
        c = self.c
        need = self._need(unit)
        ok = self._targets(unit)
        hosts = np.flatnonzero(ok)
        if not len(hosts):
            return False
        deficit = np.maximum(self.loads[hosts] + need[hosts] - ceiling[hosts], 0.0)
        if np.any(need[hosts] > ceiling[hosts] + EPS, axis=1).all():
            return False
        short = (deficit / c.cap[hosts]).sum(axis=1)
        inside = set(int(v) for v in unit)
        for i in np.argsort(short, kind="stable")[:CHAIN_HOSTS]:
            h = int(hosts[i])
            if np.any(need[h] > ceiling[h] + EPS):
                continue
            there = np.flatnonzero((self.place == h) & self.may_move & self.c.powered)
            fits = np.all(c.load[there] >= deficit[i] - EPS, axis=1) & (c.load[there].sum(axis=1) > 0)
            there = there[fits]
            there = [int(u) for u in there[np.argsort(c.mem_mb[there], kind="stable")]
                     if int(u) not in inside and not self.units.grouped(int(u))][:CHAIN_VMS]
            for u in there:
                t = self._choose(np.array([u]), c.limit, exclude=h)
                if t is None:
                    continue
                if not self._move(np.array([u]), t):
                    return False
                # the unit's members may not join an anti-affinity partner on h: still true (u left, none came)
                if np.all(self.loads[h] + need[h] <= ceiling[h] + EPS) and self._targets(unit)[h]:
                    return self._move(unit, h)
                self._move(np.array([u]), h)  # undo: it fitted there before (the refund is counted by _cost)
        return False

    # ---- what to mend ----------------------------------------------------------------------

    def _misplaced(self, v: int) -> bool:
        """Must ``v`` leave its host: powered on, on a host that is not on or one a mandatory rule forbids?"""
        c, h = self.c, int(self.place[v])
        return bool(c.powered[v] and not (c.on[h] and c.allowed[v, h]))

    def mend_hosts_of_vms(self) -> None:
        c = self.c
        V = c.n_vms
        todo = np.flatnonzero(c.powered & (~c.on[self.place] | ~c.allowed[np.arange(V), self.place]) & self.may_move)
        size = (c.load[todo] / c.cap.max(axis=0)).max(axis=1) if len(todo) else np.zeros(0)
        done: set[int] = set()
        for v in todo[np.argsort(-size, kind="stable")]:
            v = int(v)
            if v in done or not self._misplaced(v):
                continue
            unit = self.units.of(v)
            done.update(int(u) for u in unit)
            self.place_unit(unit, hard=True)

    def mend_anti_affinity(self) -> None:
        c = self.c
        for g in c.apart:
            if not g.mandatory:
                continue
            by_host: dict[int, list[int]] = {}
            for v in g.vms:
                by_host.setdefault(int(self.place[v]), []).append(int(v))
            for h, members in by_host.items():
                if len(members) < 2:
                    continue
                # one stays: one that may not move if any, else the one dearest to move
                members.sort(key=lambda v: (bool(self.may_move[v]), -c.mem_mb[v], v))
                for v in members[1:]:
                    unit = self.units.of(v)
                    if self.place[v] == h and self.may_move[v]:
                        self.place_unit(unit, hard=True)

    def mend_affinity(self) -> None:
        """Split mandatory affinity groups come together on one host: the host of their members that may
        not move, else the one needing the fewest moves with room (within the headroom limit first)."""
        seen: set[int] = set()
        for g in self.c.together:
            if not g.mandatory:
                continue
            unit = self.units.of(int(g.vms[0]))
            if int(unit[0]) in seen:
                continue
            seen.add(int(unit[0]))
            if len(np.unique(self.place[unit])) > 1 and self.may_move[unit].any():
                self.place_unit(unit, hard=True)

    def shed(self, ceiling: np.ndarray, hard: bool) -> None:
        """Hosts above ``ceiling`` shed units until they are within it (largest excess first)."""
        c = self.c
        excess = ((self.loads - ceiling) / c.cap).max(axis=1)
        over = np.flatnonzero((excess > EPS) & c.on)
        for h in over[np.argsort(-excess[over], kind="stable")]:
            self._shed_host(int(h), ceiling[int(h)], hard)

    def _shed_host(self, h: int, ceiling: np.ndarray, hard: bool) -> None:
        c = self.c
        tried: set[int] = set()
        while True:
            excess = self.loads[h] - ceiling
            if not np.any(excess > EPS):
                return
            here = np.flatnonzero((self.place == h) & self.sheddable)
            units, seen = [], set()
            for v in here:
                v = int(v)
                if v in seen or v in tried:
                    continue
                unit = self.units.of(v)
                seen.update(int(u) for u in unit)
                if np.all(self.place[unit] == h) and self._movable_unit(unit):
                    units.append(unit)
            if not units:
                return
            loads = np.array([c.load[u].sum(axis=0) for u in units])
            covers = np.all(loads >= np.maximum(excess, 0.0) - EPS, axis=1)
            mem = np.array([c.mem_mb[u].sum() for u in units])
            if covers.any():
                # the unit that alone brings the host under, cheapest to move (vMotion copies its memory)
                order = np.lexsort((np.arange(len(units)), mem, ~covers))
            else:
                share = (loads / c.cap[h] * (excess > EPS)).max(axis=1)
                order = np.lexsort((np.arange(len(units)), -share))
            moved = False
            for i in order:
                unit = units[int(i)]
                tried.update(int(u) for u in unit)
                if self.place_unit(unit, hard):
                    moved = True
                    break
                if self.capped:
                    return
            if not moved:
                return

    def run(self) -> Repair:
        c = self.c
        if c.n_vms and c.on.any():
            self.mend_hosts_of_vms()
            self.mend_anti_affinity()
            self.mend_affinity()
            self.shed(self.ceiling_hard, hard=True)  # above physical capacity (or the limit, not stretching)
            self.shed(c.limit, hard=False)  # above the headroom limit
        bound = c.bound.copy()
        for h in sorted(self.stretched):  # the sequence may pass through a load above the final one
            bound[h] = np.maximum(bound[h], self.peak[h])
        rank = np.where(self.place != self.place0, self.rank, -1)
        return Repair(self.place, bound, int((self.place != self.place0).sum()), self.capped, rank)


def repair(cluster: Cluster, place: np.ndarray | None = None, may_move: np.ndarray | None = None,
           budget: MoveBudget = MoveBudget(), stretch: bool = True) -> Repair:
    """Mend the hard violations, then the headroom limit, from ``place`` (default: the snapshot's).

    ``may_move``: (V,) the VMs the repair may move (default: movable and powered on);
    ``budget``: the repair cap; ``stretch``: a hard repair may fill a host beyond
    its headroom limit, up to its physical capacity, when no host has room within it."""
    start = cluster.place if place is None else place
    return Repairer(cluster, start, may_move, budget, stretch).run()


def hard_violations(cluster: Cluster, place: np.ndarray) -> np.ndarray:
    """(V,) powered-on VMs that break a hard obligation where they are (host duty, mandatory VM-host
    rule, a mandatory anti-affinity partner on the same host, their mandatory affinity group split)."""
    V = cluster.n_vms
    out = cluster.powered & (~cluster.on[place] | ~cluster.allowed[np.arange(V), place]) if V else np.zeros(0, dtype=bool)
    for g in cluster.rules:
        if g.mandatory and not g.folded:  # (folded ones are in `allowed`)
            out[g.breakers(place)] = True
    return out


def host_refusals(cluster: Cluster, vms: np.ndarray) -> str:
    """Why the hosts that are on refuse ``vms``, in words: mandatory VM-host rules, host duties, compatibility."""
    rules = [g.rule for g in cluster.host_sets if g.mandatory and np.isin(g.vms, vms).any()]
    why = [f"{plural(len(rules), 'rule')} {', '.join(rules)}"] if rules else []
    mem = float(cluster.mem_mb[vms].max())
    vcpus = max(cluster.snapshot.vms[int(v)].vcpus for v in vms)
    for h in np.flatnonzero(cluster.on):
        host = cluster.snapshot.hosts[int(h)]
        words = refusal(cluster.snapshot, host, mem, vcpus, closed=cluster.closed) or next(
            (w for w in (refusal(cluster.snapshot, host, 0.0, 1, cluster.snapshot.vms[int(v)]) for v in vms) if w), None)
        if words is not None:
            why.append(f"{cluster.host_names[int(h)]}: {words}")
    return "; ".join(why[:4]) + (f"; {len(why) - 4} more" if len(why) > 4 else "") if why else "the host states"


def _why_host_stays_over(rep: Repairer, h: int) -> str:
    """Why no VM leaves host ``h`` (above its limit): none may move, the mandatory rules hold them, or
    no host their rules allow has room within capacity minus headroom -- judged per unit (a VM, or its
    mandatory affinity group, which moves as one)."""
    c, place, loads = rep.c, rep.place, rep.loads
    hn, vn = c.host_names, c.vm_names
    here = np.flatnonzero((place == h) & rep.sheddable)
    if not len(here):
        return "none of the VMs there may move (a manual, partiallyAutomated or disabled DRS override, or powered off)"
    units, seen = [], set()
    for v in (int(v) for v in here):
        if v not in seen:
            unit = rep.units.of(v)
            seen.update(int(u) for u in unit)
            units.append(unit)
    held, blocked = set(), []
    for unit in units:
        ok = rep._targets(unit)
        if not np.all(place[unit] == h) or not rep._movable_unit(unit) or not ok.any():
            held.update(g.rule for v in unit for g in c.apart_of.get(int(v), ()))
            held.update(g.rule for g in c.together if g.mandatory and np.isin(g.vms, unit).any())
            held.update(g.rule for g in c.host_sets if g.mandatory and np.isin(g.vms, unit).any())
            continue
        blocked.append((unit, ok))
    rules = f" ({plural(len(held), 'rule')} {', '.join(sorted(held))})" if held else ""
    if not blocked:
        return f"the mandatory rules and host duties keep all of its {counted(len(here), 'movable VM')} here{rules}"
    size = [float((c.load[u].sum(axis=0) / c.cap[h]).max()) for u, _ in blocked]
    unit, ok = blocked[int(np.argmin(size))]
    total = c.load[unit].sum(axis=0)
    room = np.where(ok[:, None], c.limit - loads, -np.inf)
    most = int(np.argmax((room / c.cap).min(axis=1)))
    names = ", ".join(vn[int(v)] for v in unit[:3]) + (" ..." if len(unit) > 3 else "")
    also = f"; {len(units) - len(blocked)} more are held by the mandatory rules{rules}" if len(blocked) < len(units) else ""
    return (f"no host their rules allow has room within capacity minus headroom for any of its "
            f"{counted(len(blocked), 'movable VM or group', 'movable VMs or groups')} (the smallest, {names}, needs {_amounts(c, total, last='and')}; "
            f"the most room it may use is on {hn[most]}: {_amounts(c, np.maximum(room[most], 0))}){also}")


def _amounts(c: Cluster, values: np.ndarray, last: str = ",") -> str:
    """CPU and memory (and the tallies, when there are any) in words; ``last`` joins the last one."""
    words = [f"{values[CPU]:.0f} MHz", f"{values[MEM]:.0f} MB"]
    words += [f"{values[r]:g} {t}" for r, t in enumerate(c.tallies, start=MEM + 1)]
    return ", ".join(words[:-1]) + ("," if last == "," else f" {last}") + f" {words[-1]}"


def unmended_reasons(cluster: Cluster, place: np.ndarray) -> dict[str, str]:
    """Why each hard violation or host above its limit left in ``place`` is not mended: subject -> words.

    Subjects are rule names (``rule NAME``), VM names (``VM NAME``) and host names (``host NAME``)."""
    c = cluster
    rep = Repairer(c, place)
    out: dict[str, str] = {}
    hn, vn = c.host_names, c.vm_names
    V = c.n_vms

    def where_to(unit: np.ndarray) -> str:
        """Why no host takes ``unit``."""
        names = ", ".join(vn[int(v)] for v in unit[:3]) + (" ..." if len(unit) > 3 else "")
        pinned = unit[~rep.may_move[unit]]
        if len(pinned) == len(unit):
            if any(c.snapshot.hosts[int(place[v])].state is HostState.DISCONNECTED for v in unit):
                return f"{names} may not move: its host is disconnected, and vCenter moves no VM off it until it reconnects"
            return f"{names} may not move (a manual, partiallyAutomated or disabled DRS override, or powered off)"
        if len(np.unique(place[pinned])) > 1:
            return f"the VMs of {names} that may not move run on different hosts"
        allowed = c.on & c.allowed[unit].all(axis=0)
        if len(unit) == 1:
            allowed[place[unit[0]]] = False
        if not allowed.any():
            return f"no other host that is on may run {names} ({host_refusals(c, unit)})"
        ok = rep._targets(unit)
        if not ok.any():
            if len(pinned):
                return f"{names} must join {vn[int(pinned[0])]}, which may not move, on {hn[int(place[pinned[0]])]}, " \
                       "and the rules do not allow it there"
            rules = sorted({g.rule for v in unit for g in c.apart_of.get(int(v), ())})
            return f"every host that may run {names} runs a VM of {plural(len(rules), 'rule')} {', '.join(rules)}"
        need = rep._need(unit)
        room = np.where(ok[:, None], c.cap - rep.loads, -np.inf)
        short = np.where(ok, ((need - room) / c.cap).max(axis=1), np.inf)
        best = int(np.argmin(short))
        total = c.load[unit].sum(axis=0)
        return (f"no host it may use has room for {names} ({_amounts(c, total)}): "
                f"the most is on {hn[best]} ({_amounts(c, np.maximum(room[best], 0))} "
                f"free of its capacity; {counted(int(ok.sum()), 'host')} allowed)")

    bad = c.powered & (~c.on[place] | ~c.allowed[np.arange(V), place]) if V else np.zeros(0, dtype=bool)
    for v in np.flatnonzero(bad):  # (a VM that may not move is judged alone: its group cannot move it)
        out.setdefault(f"VM {vn[int(v)]}", where_to(rep.units.of(int(v)) if rep.may_move[v] else np.array([int(v)])))
    for g in c.apart:
        if g.mandatory and len(np.unique(place[g.vms])) < len(g.vms):
            seen: dict[int, int] = {}
            for v in g.vms:
                h = int(place[v])
                if h in seen:
                    out[f"rule {g.rule}"] = where_to(rep.units.of(int(v)))
                    break
                seen[h] = int(v)
    for g in c.together:
        if g.mandatory and len(np.unique(place[g.vms])) > 1:
            out[f"rule {g.rule}"] = where_to(rep.units.of(int(g.vms[0])))
    loads = rep.loads
    for h in np.flatnonzero(c.on & np.any(loads > c.limit + EPS, axis=1)):
        out[f"host {hn[int(h)]}"] = _why_host_stays_over(rep, int(h))
    return out


__all__ = ["Repair", "Repairer", "hard_violations", "repair", "unmended_reasons"]
