"""Anti-oscillation: what the past (History) holds back before the planner runs.

- A VM moved within the cooldown (``History.cooling``) is not moved again, unless it has a
  mandatory reason to move: it is in a broken mandatory rule, its host is above capacity, or
  its host is not on (evacuation).
- A VM is not moved back to a host it left within the oscillation window (``History.left``),
  again unless it has a mandatory reason to move.

Both are applied by narrowing the cluster arrays (``movable``, ``allowed``) after feasibility
has been judged on the unrestricted cluster, so a hold never turns a repairable cluster into
an "infeasible" one. The moves held back that would otherwise have paid for themselves are
reported as plan ``suppressed`` entries with reason ``cooldown`` or ``oscillation``.
"""

from __future__ import annotations

import numpy as np

from ...plan import Suppressed
from .balance import fits, move_delta, needs_balancing
from .cluster import Cluster
from .repair import hard_violations
from ..history import History
from .optimizer import move_costs
from ..options import PlanOptions


def mandatory_reason(cluster: Cluster) -> np.ndarray:
    """(V,) bool: VMs that must or may move for a mandatory reason in the current placement: a hard
    violation (repair.hard_violations), or a host above its limit."""
    place = cluster.place
    if not cluster.n_vms:
        return np.zeros(0, dtype=bool)
    over = np.any(cluster.host_loads(place) > cluster.limit + 1e-6, axis=1) & cluster.on
    return hard_violations(cluster, place) | (over[place] & cluster.powered)


def apply_history(cluster: Cluster, history: History, options: PlanOptions) -> list[Suppressed]:
    """Narrow ``cluster`` by the cooldown and the back-and-forth holds; the moves held back.

    Mutates ``cluster.movable`` and ``cluster.allowed``. Returns, best first and at most
    ``options.max_moves`` of them, the held-back single moves that would have gained more than
    their price (the minimum gain plus the vMotion cost) on the current placement.
    """
    if not history.cooling and not history.left:
        return []
    V, H = cluster.n_vms, cluster.n_hosts
    if not V:
        return []
    exempt = mandatory_reason(cluster)
    candidates = cluster.movable & cluster.powered & cluster.on[cluster.place] & ~exempt
    cooling = np.zeros(V, dtype=bool)
    for name in history.cooling:
        v = cluster._vm_idx.get(name)
        if v is not None:
            cooling[v] = True
    cooling &= candidates
    blocked = np.zeros((V, H), dtype=bool)
    for name, hosts in history.left.items():
        v = cluster._vm_idx.get(name)
        if v is None or not candidates[v]:
            continue
        for h_name in hosts:
            h = cluster._host_idx.get(h_name)
            if h is not None and h != cluster.place[v]:
                blocked[v, h] = True

    suppressed = _held_back(cluster, options, cooling, blocked)
    cluster.movable[cooling] = False
    cluster.allowed[blocked] = False
    return suppressed


def _held_back(cluster: Cluster, options: PlanOptions, cooling: np.ndarray, blocked: np.ndarray) -> list[Suppressed]:
    """The best single move of each held VM, when it would have paid for itself."""
    loads = cluster.host_loads(cluster.place)
    if options.threshold <= 1 or not needs_balancing(cluster, loads, options.threshold):
        return []
    vms = np.flatnonzero(cooling | blocked.any(axis=1))
    if not len(vms):
        return []
    gain = _single_move_gains(cluster, vms, loads)  # (C, H) in the optimiser's units
    price = move_costs(cluster, options)[vms]
    found: list[tuple[float, Suppressed]] = []
    for row, v in enumerate(vms):
        v = int(v)
        if cooling[v]:
            h = int(np.argmax(gain[row]))
            reason = "cooldown"
            detail = "moved within the cooldown; moves again only for a mandatory reason"
        else:
            g = np.where(blocked[v], gain[row], -np.inf)
            h = int(np.argmax(g))
            if gain[row, h] <= np.max(np.where(blocked[v], -np.inf, gain[row])):
                continue  # a move elsewhere is as good: the hold changes nothing
            reason = "oscillation"
            detail = f"would go back to {cluster.host_names[h]}, which it left recently"
        if not np.isfinite(gain[row, h]) or gain[row, h] < price[row]:
            continue
        found.append((float(gain[row, h]), Suppressed(vm=cluster.vm_names[v], target=cluster.host_names[h],
                                                      reason=reason, detail=f"{detail} (gain {gain[row, h]:.4f})")))
    found.sort(key=lambda item: -item[0])
    limit = options.moves_budget.limit(len(found))
    return [s for _, s in found[:limit]]


def _single_move_gains(cluster: Cluster, vms: np.ndarray, loads: np.ndarray) -> np.ndarray:
    """(C, H): how much moving each VM alone to each host lowers Σ_hosts (cpu dev² + mem dev²).

    -inf where the move is not allowed: mandatory rules, capacity, hosts that are not on, the
    VM's own host, a host holding a member of its mandatory anti-affinity group.
    """
    place = cluster.place
    gain = -move_delta(cluster, cluster.on, loads, place, vms)
    ok = cluster.allowed[vms] & cluster.on[None, :] & fits(cluster, loads, vms, cluster.bound)
    ok[np.arange(len(vms)), place[vms]] = False
    for row, v in enumerate(vms):
        for g in cluster.apart_of.get(int(v), ()):
            others = [int(o) for o in g.vms if o != v]
            ok[row, place[others]] = False
    return np.where(ok, gain, -np.inf)
