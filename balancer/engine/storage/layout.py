"""A running layout for the storage planner: where every disk is and the space used as the steps
chosen so far leave them, the targets a unit may go to, and the steps themselves."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..options import StorageOptions
from .pool import Pool
from .rules import StorageRules
from .settings import settings

EPS = 1e-9


@dataclass
class Step:
    unit: int
    target: int
    disks: list[tuple[int, int]]  # (disk, source datastore)
    size_gb: float
    reason: str  # space | latency | rule | evacuate
    detail: str
    rule: str | None = None
    mandatory: bool = False


@dataclass
class Choice:
    steps: list[Step] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    disk_ds: np.ndarray | None = None  # where every disk ends
    used: np.ndarray | None = None  # (D,) GB used at the end


class Layout:
    """Where the disks are, and the space used, as the steps so far leave them."""

    def __init__(self, pool: Pool, rules: StorageRules, options: StorageOptions) -> None:
        self.pool, self.rules, self.options = pool, rules, options
        self.disk_ds = pool.disk_ds.copy()
        self.used = pool.used.copy()
        self.settings = settings(pool.snapshot, options)  # per datastore: its datastore cluster's or sdrs's
        self.ceiling = self.settings.threshold * pool.cap
        # the datastores the space stage judges now (None: all): the datastore clusters are held to the
        # largest-disk heuristic one space threshold at a time (select.space_scopes)
        self.scope: np.ndarray | None = None
        self.steps: list[Step] = []

    def in_service(self) -> np.ndarray:
        """(D,) bool: the datastores in service within the scope."""
        ok = ~self.pool.leaving
        return ok if self.scope is None else ok & self.scope

    def util(self, d: int) -> float:
        return float(self.used[d] / self.pool.cap[d])

    def moving(self, u: int, target: int) -> np.ndarray:
        ks = self.rules.units[u].disks
        return ks[self.disk_ds[ks] != target]

    def size(self, u: int, target: int) -> float:
        return float(self.pool.disk_space[self.moving(u, target)].sum())

    def home(self, u: int) -> int:
        """The datastore holding most of the unit's data (its pool is the unit's pool)."""
        ks = self.rules.units[u].disks
        where = self.disk_ds[ks]
        if len(set(where.tolist())) == 1:
            return int(where[0])
        totals: dict[int, float] = {}
        for k, d in zip(ks.tolist(), where.tolist()):
            totals[d] = totals.get(d, 0.0) + float(self.pool.disk_space[k])
        return max(totals, key=lambda d: (totals[d], -d))

    def candidates(self, u: int, headroom: np.ndarray | None = None, extra: np.ndarray | None = None,
                   include_own: bool = False, any_pool: bool = False, fullest: bool = False) -> np.ndarray:
        """Datastores unit ``u`` may go to, least utilised after the move first (rules not yet judged).

        ``headroom``: (D,) the most each target may hold after the move (default: the space ceiling);
        ``extra``: (D,) bool, further targets excluded where False; ``fullest``: the fullest first."""
        p = self.pool
        unit = self.rules.units[u]
        ok = p.vm_ok[unit.vm] & ~p.leaving
        if not any_pool:  # (``any_pool``: disks that follow their VM to another host, engine/storage/carry.py)
            pods = set(p.pod[self.disk_ds[unit.disks]].tolist())
            if len(pods) > 1:  # no storage move crosses between pools: such a unit stays where it is
                return np.zeros(0, dtype=np.int64)
            ok &= p.pod == pods.pop()
        if not include_own:
            ok[self.disk_ds[unit.disks]] = False
        if extra is not None:
            ok &= extra
        cand = np.flatnonzero(ok)
        if not len(cand):
            return cand
        ks = unit.disks
        space = p.disk_space[ks]
        # what moving there copies: the unit's disks not already on it
        sizes = space.sum() - np.bincount(self.disk_ds[ks], weights=space, minlength=p.n_datastores)[cand]
        limit = self.ceiling if headroom is None else headroom
        after = self.used[cand] + sizes
        fits = after <= np.maximum(limit[cand], 0.0) + EPS
        cand, after = cand[fits], after[fits]
        if fullest:  # best fit: the fullest datastore that takes it (keeps the emptier ones for later)
            return cand[np.argsort(-self.used[cand] / p.cap[cand], kind="stable")]
        return cand[np.argsort(after / p.cap[cand], kind="stable")]

    def place(self, u: int, **kw) -> tuple[int | None, str | None]:
        """The best target for unit ``u`` and, when none passes the rules, the rule that kept it off one."""
        blocked = None
        for d in self.candidates(u, **kw):
            rule = self.rules.unit_ok(self.pool, self.disk_ds, u, int(d))
            if rule is None:
                return int(d), None
            blocked = blocked or rule
        return None, blocked

    def save(self) -> tuple:
        """(disk places, space used, step count, steps): what ``restore`` brings back."""
        return self.disk_ds.copy(), self.used.copy(), len(self.steps), list(self.steps)

    def restore(self, saved: tuple) -> None:
        self.disk_ds, self.used = saved[0].copy(), saved[1].copy()
        self.steps[:] = saved[3]

    def move(self, u: int, target: int, reason: str, detail: str, rule: str | None = None,
             mandatory: bool = False) -> Step:
        ks = self.moving(u, target)
        disks = [(int(k), int(self.disk_ds[k])) for k in ks]
        size = float(self.pool.disk_space[ks].sum())
        for k, src in disks:
            self.used[src] -= self.pool.disk_space[k]
            self.disk_ds[k] = target
        self.used[target] += size
        step = Step(u, target, disks, size, reason, detail, rule, mandatory)
        self.steps.append(step)
        return step

    def describe(self, u: int) -> str:
        p = self.pool
        unit = self.rules.units[u]
        names = ", ".join(p.disk_names[k] for k in unit.disks)
        gb = float(p.disk_space[unit.disks].sum())
        return f"VM {p.vm_names[unit.vm]}'s {'disk' if len(unit.disks) == 1 else 'disks'} {names} ({gb:.0f} GB)"


def units_on(lay: Layout, d: int) -> list[int]:
    """The units wholly on datastore ``d`` whose VM Storage DRS may move (none when ``d``'s datastore
    cluster leaves its disks where they are: Storage DRS off there, or manual in an automatic plan)."""
    p, rules = lay.pool, lay.rules
    out = []
    if not lay.settings.balanced[d]:
        return out
    for u in sorted({int(rules.unit_of_disk[k]) for k in np.flatnonzero(lay.disk_ds == d)}):
        unit = rules.units[u]
        if p.vm_auto[unit.vm] and (lay.disk_ds[unit.disks] == d).all():
            out.append(u)
    return out
