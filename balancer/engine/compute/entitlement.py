"""Entitlement: what each VM is entitled to when the cluster cannot give every VM its demand.

DRS balances *entitlement*, not raw demand (docs/resource-pools.md has the method with a worked
example). Per resource (CPU, memory), on its own:

1. A powered-on VM's **load** is its demand capped by its limit and raised to its reservation
   (``VM.cpu_load_mhz``); a powered-off VM's is 0.
2. While the loads fit in the cluster's capacity (every host that is on or in standby: DPM would
   wake hosts before VMs go short) and no pool has a limit, every VM is entitled to its load:
   nothing more is computed.
3. Otherwise that capacity is **divided down the resource-pool tree**,
   from the root pool: each child (a VM or a pool) first gets its reservation (a pool with an
   expandable reservation: at least what its children reserve, borrowed from its parent), then
   what is left is shared out in proportion to the children's shares, each child at most its
   demand (a pool's demand: its children's, capped by its limit); what a child cannot use goes
   to its siblings (water-filling). A pool's entitlement is then divided among its own children
   the same way.

Shares: a VM's level counts per vCPU (CPU: low 500, normal 1000, high 2000) or per MB of memory
(5, 10, 20); a pool's is fixed (CPU 2000 / 4000 / 8000, memory 81,920 / 163,840 / 327,680); a
``custom`` value is taken as it is. With **scalable shares** (vSphere 7, ``scalable_shares``), a
pool's shares are its level's ratio (low 0.5, normal 1, high 2) times the shares of what it
holds, so a pool with more VMs is not diluted; custom shares stay as they are.

Pure: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

import numpy as np

from ...plan import PoolLoad
from ...snapshot import HostState, Snapshot
from ...snapshot.pools import LEVEL_RATIO, share_value

RES = ("cpu", "mem")
EPS = 1e-9


def entitle(snapshot: Snapshot, load: np.ndarray) -> np.ndarray:
    """(V, 2) each VM's entitlement, from its ``load`` (V, 2): the load itself while the cluster has
    room and no pool has a limit (the usual case: no tree walk at all), else divided as the module
    doc says."""
    hosts = snapshot.hosts
    could_run = np.array([h.state in (HostState.ON, HostState.STANDBY) for h in hosts], dtype=bool)
    cap = np.array([[h.cpu_capacity_mhz, h.mem_capacity_mb] for h in hosts], dtype=float).reshape(len(hosts), 2)
    capacity = cap[could_run].sum(axis=0)
    out = load
    for r, res in enumerate(RES):
        limited = any(getattr(p, f"{res}_limit_{_unit(res)}") is not None for p in snapshot.resource_pools)
        contended = load[:, r].sum() > capacity[r] + 1e-6
        if contended or limited:
            out = out.copy() if out is load else out
            out[:, r] = divide(snapshot, load[:, r], float(capacity[r]), res)
    return out


def divide(snapshot: Snapshot, load: np.ndarray, capacity: float, res: str) -> np.ndarray:
    """(V,) one resource's ``capacity`` divided among the VMs down the pool tree (module doc, step 3)."""
    tree = _Tree(snapshot, load, res)
    out = np.zeros(len(load))
    tree.give(None, capacity, out)
    return out


class _Tree:
    """The pool tree of one resource: for each node (None: the root pool; a pool's name; a VM's index)
    its children, demand, reservation and shares."""

    def __init__(self, snapshot: Snapshot, load: np.ndarray, res: str):
        self.pools = {p.name: p for p in snapshot.resource_pools}
        self.children: dict[str | None, list] = {None: []}
        for p in snapshot.resource_pools:
            self.children.setdefault(p.name, [])
        for p in snapshot.resource_pools:
            self.children[p.parent].append(p.name)
        self.demand: dict = {}
        self.reserve: dict = {}
        self.shares: dict = {}
        for i, v in enumerate(snapshot.vms):
            if not v.powered_on or load[i] <= 0:
                continue
            self.children[v.resource_pool].append(i)
            self.demand[i] = float(load[i])
            self.reserve[i] = min(getattr(v, f"{res}_reservation_{_unit(res)}"), float(load[i]))
            self.shares[i] = share_value(getattr(v, f"{res}_shares"), res, pool=False, vcpus=v.vcpus, mem_mb=v.mem_mb)
        self.res = res
        self.scalable = snapshot.scalable_shares
        self._pool_figures(None)

    def _pool_figures(self, name: str | None) -> None:
        """Demand, reservation and shares of pool ``name`` (children first)."""
        kids = self.children[name]
        for k in kids:
            if isinstance(k, str):
                self._pool_figures(k)
        if name is None:
            return
        p = self.pools[name]
        unit = _unit(self.res)
        limit = getattr(p, f"{self.res}_limit_{unit}")
        own = getattr(p, f"{self.res}_reservation_{unit}")
        below = sum(self.reserve[k] for k in kids)
        reserve = max(own, below) if getattr(p, f"{self.res}_expandable") else own
        demand = sum(self.demand[k] for k in kids)
        self.demand[name] = demand if limit is None else min(demand, limit)
        self.reserve[name] = min(reserve, self.demand[name])  # a reservation it does not use goes to its siblings
        setting = getattr(p, f"{self.res}_shares")
        if self.scalable and setting.level != "custom":
            self.shares[name] = LEVEL_RATIO[setting.level] * sum(self.shares[k] for k in kids)
        else:
            self.shares[name] = share_value(setting, self.res, pool=True)

    def give(self, name: str | None, amount: float, out: np.ndarray) -> None:
        """Divide ``amount`` among pool ``name``'s children, then down each child pool."""
        kids = self.children[name]
        if not kids:
            return
        got = water_fill(amount, np.array([self.demand[k] for k in kids]), np.array([self.reserve[k] for k in kids]),
                         np.array([self.shares[k] for k in kids]))
        for k, g in zip(kids, got):
            if isinstance(k, str):
                self.give(k, float(g), out)
            else:
                out[k] = g


def water_fill(amount: float, demand: np.ndarray, reserve: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Share ``amount`` among siblings: reservations first (scaled down together if they do not fit),
    the rest in proportion to ``shares``, nobody above its ``demand``; what a capped sibling leaves
    goes to the others."""
    reserve = np.minimum(reserve, demand)
    total = reserve.sum()
    if total >= amount - EPS:
        return reserve * (amount / total) if total > EPS else np.zeros(len(demand))
    got = reserve.copy()
    left = amount - total
    active = (got < demand - EPS) & (shares > 0)
    while left > EPS and active.any():
        share = np.where(active, shares, 0.0)
        offer = left * share / share.sum()
        room = demand - got
        capped = active & (offer >= room - EPS)
        if not capped.any():
            got += offer
            break
        got[capped] = demand[capped]
        left -= room[capped].sum()
        active &= ~capped
    return got


def _unit(res: str) -> str:
    return "mhz" if res == "cpu" else "mb"



def admission_refusal(snapshot: Snapshot, pool: str | None, cpu_mhz: float, mem_mb: float,
                      exclude: str | None = None) -> str | None:
    """Why a VM reserving ``cpu_mhz`` and ``mem_mb`` may not power on in ``pool`` (None: the root pool),
    as vCenter's admission control judges reservations, or None. A pool whose reservation is not
    expandable gives only what its own reservation leaves unreserved; an expandable one borrows the
    rest from its parent, up to the root, which has the capacity of the hosts that are on.
    ``exclude``: a VM not to count (the one being placed, when the cluster has it)."""
    pools = {p.name: p for p in snapshot.resource_pools}
    for res, unit, need in (("cpu", "MHz", cpu_mhz), ("mem", "MB", mem_mb)):
        field = f"{res}_reservation_{_unit(res)}"
        reserved = _reserved(snapshot, field, res, exclude)
        full = need
        name = pool
        while name is not None:  # a limit caps what is reserved below it too
            p = pools[name]
            limit = getattr(p, f"{res}_limit_{_unit(res)}")
            if limit is not None and reserved[name] + full > limit + 1e-6:
                return (f"resource pool {name}: its {'CPU' if res == 'cpu' else 'memory'} limit of {limit:,.0f} {unit} "
                        f"leaves {max(limit - reserved[name], 0.0):,.0f} {unit} to reserve, less than the VM's "
                        f"{full:,.0f} {unit}")
            name = p.parent
        name = pool
        while need > EPS:
            if name is None:
                cap = sum(getattr(h, "cpu_capacity_mhz" if res == "cpu" else "mem_capacity_mb")
                          for h in snapshot.hosts if h.state is HostState.ON)
                free = cap - reserved[None]
                if need > free + 1e-6:
                    word = "CPU" if res == "cpu" else "memory"
                    what = (f"resource pool {pool} must borrow {need:,.0f} {unit} of {word} reservation from the cluster"
                            if pool is not None else f"its {need:,.0f} {unit} {word} reservation does not fit the cluster")
                    return (f"{what}, which has {max(free, 0.0):,.0f} {unit} unreserved of {cap:,.0f} {unit} "
                            "on its hosts that are on")
                break
            p = pools[name]
            own = getattr(p, field)
            free = max(own - reserved[name], 0.0)
            if need <= free + 1e-6:
                break
            if not getattr(p, f"{res}_expandable"):
                return (f"resource pool {name}: its reservation is not expandable and has {free:,.0f} {unit} "
                        f"{'CPU' if res == 'cpu' else 'memory'} unreserved, less than the VM's {need:,.0f} {unit}")
            need -= free
            name = p.parent
    return None


def _reserved(snapshot: Snapshot, field: str, res: str, exclude: str | None) -> dict[str | None, float]:
    """What each pool's children reserve (None: the root's): powered-on VMs' reservations, and each
    child pool's own reservation or, expandable, what its children reserve when more."""
    pools = {p.name: p for p in snapshot.resource_pools}
    below: dict[str | None, float] = {None: 0.0, **{p: 0.0 for p in pools}}
    for v in snapshot.vms:
        if v.powered_on and v.name != exclude:
            below[v.resource_pool] += getattr(v, field)
    depth = {}
    for name in pools:
        d, q = 0, pools[name]
        while q.parent is not None:
            d, q = d + 1, pools[q.parent]
        depth[name] = d
    for name in sorted(pools, key=lambda n: -depth[n]):  # deepest first
        p = pools[name]
        own = getattr(p, field)
        below[p.parent] += max(own, below[name]) if getattr(p, f"{res}_expandable") else own
    return below



def pool_loads(snapshot: Snapshot, demand: np.ndarray, entitled: np.ndarray) -> list[PoolLoad] | None:
    """Per resource pool, what its VMs (those below it too) demand and are entitled to, with its
    settings: the plan's ``pools`` (None when the cluster has no pools)."""
    if not snapshot.resource_pools:
        return None
    pools = {p.name: p for p in snapshot.resource_pools}
    sums = {name: np.zeros(5) for name in pools}  # vms, cpu demand, cpu entitlement, mem demand, mem entitlement
    for i, v in enumerate(snapshot.vms):
        name = v.resource_pool
        while name is not None and v.powered_on:
            sums[name] += (1, demand[i, 0], entitled[i, 0], demand[i, 1], entitled[i, 1])
            name = pools[name].parent
    return [PoolLoad(name=p.name, parent=p.parent, vms=int(sums[p.name][0]),
                     cpu_demand_mhz=round(float(sums[p.name][1]), 1), cpu_entitlement_mhz=round(float(sums[p.name][2]), 1),
                     cpu_reservation_mhz=p.cpu_reservation_mhz, cpu_limit_mhz=p.cpu_limit_mhz,
                     mem_demand_mb=round(float(sums[p.name][3]), 1), mem_entitlement_mb=round(float(sums[p.name][4]), 1),
                     mem_reservation_mb=p.mem_reservation_mb, mem_limit_mb=p.mem_limit_mb)
            for p in snapshot.resource_pools]


__all__ = ["admission_refusal", "divide", "entitle", "pool_loads", "water_fill"]
