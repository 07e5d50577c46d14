"""Move-budget-aware local search for balancing: single moves, swaps and exchanges, scored exactly.

The state is a placement; its value is DRS's measure itself -- Σ over hosts that are on and
over CPU and memory of (utilisation − mean utilisation)², i.e. hosts × (cpu std² + mem std²) --
plus the price of every VM away from its starting host (the threshold's minimum gain plus its
vMotion time) and the weight of every broken should-rule. Three operators, each scored
exactly and vectorised with numpy:

- **single move**: one VM to another host (a VM already moved may go on, or back home for
  a refund of its price);
- **swap**: two VMs on a hot and a cold host trade places -- the net transfer is the
  difference of their sizes, the fine adjustment a single move cannot make;
- **exchange** (when the move budget is spent): send one moved VM home and spend the freed
  move on the best single move instead -- revises the early, myopic choices.

Each round takes, of the steps that pay for themselves and lower the imbalance (or mend a
should-rule), the one that lowers the imbalance most: at a binding budget every move buys as
much balance as it can. Every step keeps each host within capacity minus headroom (a host
already above it only sheds load), the allowed mask (mandatory VM–host rules, host states,
holds) and the mandatory anti-affinity rules, and breaks no should-rule; a swap is taken only
when one of its two moves fits first, so the pair can be carried out in some order. VMs in
affinity groups move only as part of mending.

Work is counted deterministically (candidate pairs scored), so the same input gives the same
result; the wall-clock deadline is only a safety net.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .balance import fits, move_delta, needs_balancing
from .cluster import BALANCED, Cluster, automatic_first

EPS = 1e-12
FOCUS = 8  # hosts at each end (hottest / coldest) the focused operators look at
SOURCE_VMS = 96  # VMs per hot host tried in single moves (largest first, then a spread of sizes)
SWAP_HOSTS = 10  # hot and cold hosts paired for swaps
SWAP_VMS = 64  # VMs per host considered for swaps (largest first, then a spread of sizes)
EXCHANGE_TRIES = 8  # moved VMs (cheapest to undo first) tried in one exchange
REVISE_WORK = 1.0  # work for revising (swaps, exchanges) once the budget is spent, besides a quarter of the rest
WORK_UNIT = 1e6  # candidate (VM, host) pairs scored per unit of work
SWAP_WORK = 3.0  # a scored (VM, VM) swap pair costs about three (VM, host) pairs
# an operator's own cost besides the pairs it scores (choosing hosts and VMs, feasibility): about a
# millisecond, so a small cluster's many cheap steps count for the time they take (docs/benchmarks.md)
STEP_WORK = 0.02
BATCH_HOSTS = 8  # with no move budget, one scoring may give a move per this many hosts that are on ...
BATCH_SHARE = 0.5  # ... each gaining at least this share of the best one's


@dataclass
class Step:
    net: float  # value saved, move prices included (> 0 improves)
    moves: list[tuple[int, int]]  # (vm, host) in an executable order
    gain: float  # how much Σ dev² falls


class Search:
    """Balancing local search over one cluster; see the module doc."""

    def __init__(self, cluster: Cluster, prices: np.ndarray, place0: np.ndarray, place: np.ndarray, budget: int,
                 soft_weight: float):
        """``prices``: per VM, the price of moving it (minimum gain + vMotion time, as in
        ``optimizer.move_costs``); ``place0``: the starting placement the budget and prices count
        from; ``place``: where to start searching from (after repairs); ``budget``: VMs that may
        end away from ``place0``; ``soft_weight``: weight of a broken should-rule."""
        c = cluster
        self.c = c
        self.prices = prices
        self.place0 = place0
        self.place = place.copy()
        self.budget = budget
        self.loads = c.host_loads(self.place)
        self.on = c.on
        self.n_on = max(int(c.on.sum()), 1)
        self.work = 0.0
        self.steps = 0  # operators applied
        self.soft_weight = soft_weight
        V = c.n_vms
        # who may take part in balancing: movable, powered on, in no affinity group (those move as one, when mending)
        grouped = np.zeros(V, dtype=bool)
        for g in c.together:
            grouped[g.vms] = True
        self.free = c.movable & c.powered & ~grouped
        self.spent = int((self.place != place0).sum())
        # should-rules as per-VM data: vm-host masks of hosts that break them; soft anti-affinity partners
        self.soft_bad: dict[int, list[np.ndarray]] = {}  # vm -> per should vm-host rule, (H,) 1 where broken
        for g in c.host_sets:
            if g.mandatory or not len(g.vms):
                continue
            bad = (~g.ok).astype(float)
            for v in g.vms:
                self.soft_bad.setdefault(int(v), []).append(bad)
        self.soft_partners: dict[int, list[np.ndarray]] = {}
        for g in c.apart:
            if g.mandatory:
                continue
            for v in g.vms:
                self.soft_partners.setdefault(int(v), []).append(g.vms[g.vms != v])
        self.anti_partners: dict[int, np.ndarray] = {}
        for v, groups in c.apart_of.items():
            self.anti_partners[v] = np.unique(np.concatenate([g.vms[g.vms != v] for g in groups]))
        self.has_anti = np.zeros(V, dtype=bool)
        self.has_anti[list(self.anti_partners)] = True
        self.has_soft = np.zeros(V, dtype=bool)
        self.has_soft[list(self.soft_bad) + list(self.soft_partners)] = True
        self.all_allowed = bool(c.allowed[:, c.on].all())  # no mandatory VM-host rule or hold narrows anything
        self.size = (c.load[:, BALANCED] / np.maximum(c.cap[c.place][:, BALANCED], 1e-9)).sum(axis=1)

    # ---- scoring ------------------------------------------------------------------------

    def util(self) -> np.ndarray:
        return self.loads[:, BALANCED] / self.c.cap[:, BALANCED]

    def value(self) -> float:
        """Σ squared deviations over hosts that are on (the balance part of the objective)."""
        u = self.util()[self.on]
        return float(((u - u.mean(axis=0)) ** 2).sum()) if len(u) else 0.0

    def _soft_rules(self, v: int) -> np.ndarray:
        """(R, H): for each should-rule of VM ``v``, 1 on the hosts where ``v`` would break it (others as they are)."""
        rows = list(self.soft_bad.get(v, ()))
        for partners in self.soft_partners.get(v, ()):
            mask = np.zeros(self.c.n_hosts)
            mask[self.place[partners]] = 1.0
            rows.append(mask)
        return np.array(rows).reshape(len(rows), self.c.n_hosts)

    def _soft_delta(self, v: int, hosts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Should-rule weight change when ``v`` goes to each of ``hosts``, and whether no rule gets broken."""
        rules = self._soft_rules(v)
        delta = rules[:, hosts] - rules[:, [int(self.place[v])]]
        return delta.sum(axis=0) * self.soft_weight, np.all(delta <= EPS, axis=0)

    def _feasible(self, vms: np.ndarray, hosts: np.ndarray) -> np.ndarray:
        """(C, D) may each VM go to each of ``hosts`` now (capacity minus headroom, allowed, mandatory anti-affinity)?"""
        c = self.c
        ok = fits(c, self.loads[hosts], vms, c.limit[hosts])  # a host above its limit receives nothing
        ok &= self.on[hosts][None, :]
        if not self.all_allowed:
            ok &= c.allowed[np.ix_(vms, hosts)]
        ok &= self.place[vms][:, None] != hosts[None, :]
        rows = np.flatnonzero(self.has_anti[vms])
        if len(rows):
            col = np.full(c.n_hosts, -1)
            col[hosts] = np.arange(len(hosts))
            for i in rows:
                cols = col[self.place[self.anti_partners[int(vms[i])]]]
                ok[i, cols[cols >= 0]] = False
        return ok

    def _feasible_home(self, vms: np.ndarray) -> np.ndarray:
        """(C,) may each VM go back to its starting host now?"""
        c = self.c
        home = self.place0[vms]
        ok = c.allowed[vms, home] & self.on[home] & (self.place[vms] != home)
        ok &= np.all(c.load[vms] <= c.limit[home] + 1e-6 - self.loads[home], axis=1)
        for i in np.flatnonzero(self.has_anti[vms]):
            ok[i] &= not np.any(self.place[self.anti_partners[int(vms[i])]] == home[i])
        return ok

    def _home_delta(self, vms: np.ndarray) -> np.ndarray:
        """(C,) change of Σ dev² when each VM alone goes back to its starting host."""
        c = self.c
        u = self.util()
        S1 = u[self.on].sum(axis=0)
        N = self.n_on
        src, dst = self.place[vms], self.place0[vms]
        ld = c.load[vms][:, BALANCED]
        fs = ld / c.cap[src][:, BALANCED] * self.on[src].astype(float)[:, None]
        fd = ld / c.cap[dst][:, BALANCED] * self.on[dst].astype(float)[:, None]
        dS1 = fd - fs
        return (fs * (fs - 2 * u[src]) + fd * (fd + 2 * u[dst]) - (2 * S1 * dS1 + dS1 * dS1) / N).sum(axis=1)

    def _swap_delta(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """(A, B) change of Σ dev² when VM a (on host x) and VM b (on host y) trade places.

        Per resource, with w = 1/capacity (0 for a host that is not on), P = w (u − S1/N) and
        c1 = 1 − 1/N, the change is (l_b − l_a)² (c1 w_x² + c1 w_y² + 2 w_x w_y / N)
        + 2 (l_b − l_a)(P_x − P_y): expanded into nine products of a term of a and a term of b,
        it is one (A, 18) × (18, B) matrix product.
        """
        c = self.c
        u = self.util()
        S1 = u[self.on].sum(axis=0)
        N = self.n_on
        c1 = 1.0 - 1.0 / N
        on = self.on.astype(float)[:, None]
        W = on / c.cap[:, BALANCED]  # (H, 2)
        P = W * (u - S1 / N)
        x, y = self.place[A], self.place[B]
        la, lb = c.load[A][:, BALANCED], c.load[B][:, BALANCED]
        wx, wy = W[x], W[y]
        px, qy = P[x], P[y]
        left = [-2 * c1 * wx * wx * la, c1 * wx * wx, c1 * la * la, -2 * c1 * la, (2 / N) * wx * la * la,
                -(4 / N) * wx * la, (2 / N) * wx, 2 * px, 2 * la]
        right = [lb, lb * lb, wy * wy, lb * wy * wy, wy, lb * wy, lb * lb * wy, lb, qy]
        a_only = (c1 * wx * wx * la * la - 2 * la * px).sum(axis=1)
        b_only = (c1 * lb * lb * wy * wy - 2 * lb * qy).sum(axis=1)
        L = np.concatenate(left, axis=1)  # (A, 18)
        R = np.concatenate(right, axis=1)  # (B, 18)
        return L @ R.T + a_only[:, None] + b_only[None, :]

    # ---- operators ----------------------------------------------------------------------

    def hot_cold(self) -> tuple[np.ndarray, np.ndarray]:
        """Hosts that are on, ordered hottest first and coldest first."""
        u = self.util()
        dev = u - u[self.on].mean(axis=0)
        heat = np.where(self.on, np.maximum(dev, 0).sum(axis=1) + 1e-3 * dev.max(axis=1), -np.inf)
        cold = np.where(self.on, np.maximum(-dev, 0).sum(axis=1) - 1e-3 * dev.min(axis=1), -np.inf)
        n = int(self.on.sum())
        return np.argsort(-heat, kind="stable")[:n], np.argsort(-cold, kind="stable")[:n]

    def best_single(self, vms: np.ndarray | None, targets: np.ndarray | None,
                    budget_left: int | None = None) -> Step | None:
        """Best single move of one of ``vms`` (None: any) to one of ``targets`` (None: any host that is on).

        Of the moves that pay for themselves (gain above the VM's price, should-rules kept),
        the one that lowers Σ dev² most.
        """
        found = self.best_singles(vms, targets, budget_left)
        return found[0] if found else None

    def best_singles(self, vms: np.ndarray | None, targets: np.ndarray | None,
                     budget_left: int | None = None, most: int = 1) -> list[Step]:
        """The best single move (``best_single``), then, up to ``most`` in all, the next best moves
        between hosts none of the moves already taken touches, each gaining at least BATCH_SHARE of
        the first: from one scoring, as many moves as a scan would find one after the other while
        the cluster is far from balanced (``run`` checks each again before making it)."""
        c = self.c
        cand = np.flatnonzero(self.free) if vms is None else vms[self.free[vms]]
        cand = automatic_first(self.c, cand)
        hosts = np.flatnonzero(self.on) if targets is None else np.asarray(targets)
        if not len(cand) or not len(hosts):
            return []
        left = self.budget - self.spent if budget_left is None else budget_left
        self.work += STEP_WORK + len(cand) * len(hosts) / WORK_UNIT
        gain = -move_delta(self.c, self.on, self.loads, self.place, cand, hosts)
        home = self.place0[cand]
        at_home = self.place[cand] == home
        net = gain - np.where(at_home, self.prices[cand], 0.0)[:, None]
        # a VM away from home may go back: its price is refunded
        col = np.full(c.n_hosts, -1)
        col[hosts] = np.arange(len(hosts))
        back = np.flatnonzero(~at_home & (col[home] >= 0))
        net[back, col[home[back]]] += self.prices[cand[back]]
        ok = self._feasible(cand, hosts)
        if left <= 0:
            ok[at_home] = False  # no budget: only VMs already away may move on or home
        mends = np.zeros(gain.shape, dtype=bool)
        for i in np.flatnonzero(self.has_soft[cand]):
            weight, keeps = self._soft_delta(int(cand[i]), hosts)
            net[i] -= weight
            ok[i] &= keeps  # balancing never breaks a should-rule; mending one earns its weight
            mends[i] = weight < -EPS
        # a step pays for itself and lowers the imbalance (or mends a should-rule)
        ok &= (net > EPS) & ((gain > EPS) | mends)
        score = np.where(ok, gain, -np.inf)
        out: list[Step] = []
        where = self.place[cand]
        while len(out) < most:
            i = int(np.argmax(score))
            r, d = divmod(i, len(hosts))
            if not np.isfinite(score[r, d]) or (out and gain[r, d] < BATCH_SHARE * out[0].gain):
                break
            out.append(Step(float(net[r, d]), [(int(cand[r]), int(hosts[d]))], float(gain[r, d])))
            if len(out) < most:  # the next moves touch neither host of this one
                touched = np.isin(hosts, [where[r], hosts[d]])
                score[:, touched] = -np.inf
                score[np.isin(where, [where[r], hosts[d]]), :] = -np.inf
        return out

    def _pick(self, hosts: np.ndarray, per_host: int) -> np.ndarray:
        """VMs on ``hosts`` worth trying: on each host all when few, else the largest half of
        ``per_host`` and every m-th of the rest by size (m chosen so at most ``per_host`` are taken)."""
        on_hosts = np.zeros(self.c.n_hosts, dtype=bool)
        on_hosts[hosts] = True
        mine = np.flatnonzero(self.free & on_hosts[self.place])
        if not len(mine):
            return mine
        where = self.place[mine]
        count = np.bincount(where, minlength=self.c.n_hosts)
        if count.max() <= per_host:
            return mine  # few enough on every host: all of them
        mine = mine[np.lexsort((-self.size[mine], where))]  # by host, largest first
        where = self.place[mine]
        first = np.searchsorted(where, where)  # index of each VM's host's first VM
        rank = np.arange(len(mine)) - first
        n = count[where]
        half = per_host // 2
        every = np.maximum(-(-(n - half) // max(per_host - half, 1)), 1)
        keep = (n <= per_host) | (rank < half) | ((rank - half) % every == 0)
        return np.sort(mine[keep])

    def _union(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.c.n_vms, dtype=bool)
        mask[a] = True
        mask[b] = True
        return np.flatnonzero(mask)

    def _targets(self) -> np.ndarray:
        """Hosts a single move may go to: the coldest by CPU, by memory and by both."""
        u = self.util()
        on = np.flatnonzero(self.on)
        k = max(FOCUS, len(on) // 8)
        if len(on) <= 3 * k:
            return on
        dev = u[on] - u[on].mean(axis=0)
        picks = [np.argsort(dev[:, 0], kind="stable")[:k], np.argsort(dev[:, 1], kind="stable")[:k],
                 np.argsort(dev.sum(axis=1), kind="stable")[:k]]
        return on[np.unique(np.concatenate(picks))]

    def best_swap(self, A: np.ndarray, B: np.ndarray) -> Step | None:
        """Best trade of places between a VM of ``A`` and a VM of ``B`` (on different hosts)."""
        c = self.c
        A = A[self.free[A]]
        B = B[self.free[B]]
        if not len(A) or not len(B):
            return None
        self.work += STEP_WORK + SWAP_WORK * len(A) * len(B) / WORK_UNIT
        x, y = self.place[A], self.place[B]
        la, lb = c.load[A], c.load[B]
        gain = -self._swap_delta(A, B)
        # prices and budget: a VM leaving home pays, one going home is refunded
        ha, hb = self.place0[A], self.place0[B]
        ma = (x == ha).astype(float)[:, None] - (ha[:, None] == y[None, :])
        mb = (y == hb).astype(float)[None, :] - (hb[None, :] == x[:, None])
        net = gain - ma * self.prices[A][:, None] - mb * self.prices[B][None, :]
        ok = (ma + mb) <= self.budget - self.spent
        ok &= x[:, None] != y[None, :]
        ok &= c.allowed[A][:, y] & c.allowed[B][:, x].T & self.on[y][None, :] & self.on[x][:, None]
        # a host above its limit may only shed load
        room_x = np.maximum(c.limit[x] - self.loads[x], 0.0) + 1e-6  # (A, R): CPU, memory, the tallies
        room_y = np.maximum(c.limit[y] - self.loads[y], 0.0) + 1e-6  # (B, R)
        a_first = np.ones((len(A), len(B)), dtype=bool)
        b_first = np.ones((len(A), len(B)), dtype=bool)
        for r in range(la.shape[1]):
            diff = lb[None, :, r] - la[:, None, r]  # what x gains and y loses
            ok &= (diff <= room_x[:, None, r]) & (-diff <= room_y[None, :, r])
            # one of the two moves must fit first, so the pair can be carried out
            a_first &= la[:, None, r] <= room_y[None, :, r]
            b_first &= lb[None, :, r] <= room_x[:, None, r]
        ok &= a_first | b_first
        net_before = net.copy()
        if self.has_anti[A].any() or self.has_anti[B].any() or self.has_soft[A].any() or self.has_soft[B].any():
            ok &= self._pair_rules(A, B, net)
        ok &= (net > EPS) & ((gain > EPS) | (net > net_before + EPS))
        score = np.where(ok, gain, -np.inf)
        i = int(np.argmax(score))
        ra, rb = divmod(i, len(B))
        if not np.isfinite(score[ra, rb]):
            return None
        a, b = int(A[ra]), int(B[rb])
        order = [(a, int(y[rb])), (b, int(x[ra]))] if a_first[ra, rb] else [(b, int(x[ra])), (a, int(y[rb]))]
        return Step(float(net[ra, rb]), order, float(gain[ra, rb]))

    def _pair_rules(self, A: np.ndarray, B: np.ndarray, net: np.ndarray) -> np.ndarray:
        """Rules for swaps: the mandatory anti-affinity mask; should-rule weights are added to ``net``."""
        ok = np.ones((len(A), len(B)), dtype=bool)
        for side, (X, Y) in enumerate(((A, B), (B, A))):
            for i in np.flatnonzero(self.has_anti[X] | self.has_soft[X]):
                v = int(X[i])
                there = self.place[Y]  # per counterpart
                row = np.ones(len(Y), dtype=bool)
                partners = self.anti_partners.get(v)
                if partners is not None:
                    # blocked where a partner runs on the counterpart's host, unless that partner is the counterpart
                    for p in partners:
                        row &= (self.place[p] != there) | (Y == p)
                # two members of one group in one swap are not judged as independent moves: not taken
                row &= ~np.isin(Y, self._group_mates(v))
                weight, keeps = self._soft_delta(v, there)
                row &= keeps  # balancing never breaks a should-rule
                if side == 0:
                    ok[i] &= row
                    net[i] -= weight
                else:
                    ok[:, i] &= row
                    net[:, i] -= weight
        return ok

    def _group_mates(self, v: int) -> np.ndarray:
        mates = [self.anti_partners.get(v, np.zeros(0, dtype=np.int64))] + list(self.soft_partners.get(v, []))
        return np.concatenate(mates)

    def best_exchange(self, vms: np.ndarray | None, targets: np.ndarray | None) -> Step | None:
        """With the budget spent: send one moved VM home and make the best single move instead."""
        moved = np.flatnonzero((self.place != self.place0) & self.free)
        if not len(moved):
            return None
        # going home first must be possible now (capacity and rules at the home host)
        back = self._home_delta(moved)
        ok_home = self._feasible_home(moved)
        refund = self.prices[moved]
        soft = np.zeros(len(moved))
        for i in np.flatnonzero(self.has_soft[moved]):
            weight, keeps = self._soft_delta(int(moved[i]), self.place0[moved[i:i + 1]])
            soft[i] = weight[0]
            ok_home[i] &= keeps[0]  # going home never breaks a should-rule either
        undo_net = -back + refund - soft
        best: Step | None = None
        for i in np.argsort(-np.where(ok_home, undo_net, -np.inf), kind="stable")[:EXCHANGE_TRIES]:
            if not ok_home[i]:
                break
            v = int(moved[i])
            cur = int(self.place[v])
            self._apply_one(v, int(self.place0[v]))
            step = self.best_single(vms, targets, budget_left=1)
            self._apply_one(v, cur)
            if step is not None and step.moves[0][0] != v:
                net = float(undo_net[i]) + step.net
                gain = float(-back[i]) + step.gain
                if net > EPS and gain > EPS and (best is None or gain > best.gain + EPS):
                    best = Step(net, [(v, int(self.place0[v]))] + step.moves, gain)
        return best

    # ---- driver ---------------------------------------------------------------------------

    def _apply_one(self, v: int, h: int) -> None:
        c = self.c
        s = int(self.place[v])
        if self.place[v] == self.place0[v]:
            self.spent += 1
        if h == self.place0[v]:
            self.spent -= 1
        self.loads[s] -= c.load[v]
        self.loads[h] += c.load[v]
        self.place[v] = h

    def apply(self, step: Step) -> None:
        self.steps += 1
        for v, h in step.moves:
            self._apply_one(v, h)

    def _apply_if_it_pays(self, step: Step) -> None:
        """Make a move found beside a better one (``best_singles``) when it still pays for itself:
        its hosts are untouched, but the mean utilisation moved a little with the moves before it."""
        (v, h), = step.moves
        gain = -float(move_delta(self.c, self.on, self.loads, self.place, np.array([v]), np.array([h]))[0, 0])
        net = gain + (step.net - step.gain)  # its price and should-rule weights are as scored: its hosts are untouched
        if gain > EPS and net > EPS:
            self.apply(Step(net, step.moves, gain))

    def run(self, work_limit: float, clock, threshold: int) -> np.ndarray:
        """Improve until no operator pays, the work limit, the target imbalance or the clock's safety net
        (``clock``: optimizer.Clock; its ``stopped`` says when the wall clock ended the search)."""
        full_checked = False
        spent_at = None  # work done when the budget was first spent: revising then gets a quarter more
        while self.work < work_limit and not clock.out_of_time():
            if not needs_balancing(self.c, self.loads, threshold):
                break
            if self.spent >= self.budget:
                spent_at = self.work if spent_at is None else spent_at
                if self.work > 1.25 * spent_at + REVISE_WORK:
                    break
            hot, cold = self.hot_cold()
            moved = np.flatnonzero(self.place != self.place0)
            focus = max(2 * FOCUS, len(hot) // 3)
            # with no move budget, one scoring gives several moves between distinct hosts while far from balance
            most = max(1, self.n_on // BATCH_HOSTS) if self.budget >= self.c.n_vms else 1
            found = self.best_singles(self._union(self._pick(hot[:focus], SOURCE_VMS), moved), self._targets(),
                                      most=most)
            step = found[0] if found else None
            if len(found) > 1:
                self.apply(step)
                for more in found[1:]:
                    self._apply_if_it_pays(more)
                full_checked = False
                continue
            if step is None:
                # hot against cold hosts; VMs already moved (on the focus hosts) trade places at no further price
                on_hot = np.zeros(self.c.n_hosts, dtype=bool)
                on_cold = np.zeros(self.c.n_hosts, dtype=bool)
                on_hot[hot[:focus]] = True
                on_cold[cold[:focus]] = True
                A = self._union(self._pick(hot[:SWAP_HOSTS], SWAP_VMS), moved[on_hot[self.place[moved]]])
                B = self._union(self._pick(cold[:SWAP_HOSTS], SWAP_VMS), moved[on_cold[self.place[moved]]])
                step = self.best_swap(A, B)
            if step is None and self.spent >= self.budget:
                step = self.best_exchange(self._pick(hot[:focus], SOURCE_VMS), self._targets())
            if step is None and not full_checked:
                # the focused operators found nothing: one full scan of single moves before stopping
                full_checked = True
                step = self.best_single(None, None)
            if step is None:
                break
            full_checked = False
            self.apply(step)
        return self.place
