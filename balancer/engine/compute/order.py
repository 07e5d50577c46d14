"""Order moves so that every intermediate state is valid.

After each step, every host carries at most its bound (capacity minus headroom, or what
it carried at the start if that was more), no VM sits on a host a mandatory rule forbids,
and no two VMs of a mandatory anti-affinity rule share a host. Affinity can only hold
at the end: a group moves one VM at a time.

A cycle of moves that block each other (a swap on full hosts) is broken with a temporary
hop to a host that has room, when the move budget allows; otherwise the move is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..budget import MoveBudget
from .cluster import Cluster
from .rules import move_allowed


@dataclass
class Step:
    vm: int
    source: int
    target: int
    final: int  # the VM's destination; differs from target for a temporary hop

    @property
    def hop(self) -> bool:
        return self.target != self.final


@dataclass
class Ordering:
    steps: list[Step]
    dropped: list[int]  # VMs whose move could not be ordered
    place: np.ndarray  # placement after all steps


def order_moves(cluster: Cluster, place0: np.ndarray, final: np.ndarray, priority: np.ndarray,
                budget: MoveBudget = MoveBudget(), stretched: Cluster | None = None,
                repair: np.ndarray | None = None) -> Ordering:
    """``priority``: lower goes first (mandatory moves before balancing ones). ``stretched``: the cluster
    with the bounds a hard repair may fill hosts to (up to physical capacity), for the moves of the VMs in
    ``repair`` (the mandatory ones); every other move keeps ``cluster``'s bounds."""

    def judged(v: int) -> Cluster:
        return stretched if stretched is not None and repair is not None and repair[v] else cluster

    cur = place0.copy()
    loads = cluster.host_loads(cur)
    pending = [int(v) for v in np.flatnonzero(place0 != final)]
    pending.sort(key=lambda v: (priority[v], v))
    steps: list[Step] = []
    dropped: list[int] = []
    hopped: set[int] = set()
    most = budget.limit(len(pending) * 2 + 1)  # steps: a move with a hop takes two

    def apply(v: int, target: int) -> None:
        loads[cur[v]] -= cluster.load[v]
        loads[target] += cluster.load[v]
        steps.append(Step(v, int(cur[v]), int(target), int(final[v])))
        cur[v] = target

    while pending:
        progressed = False
        rest = []
        for v in pending:
            if len(steps) < most and move_allowed(judged(v), v, int(final[v]), cur, loads):
                apply(v, int(final[v]))
                progressed = True
            else:
                rest.append(v)
        pending = rest
        if progressed or not pending:
            continue
        # Deadlock: every pending move waits for another. Hop the first one through a host with room.
        v = pending[0]
        # one hop a VM, never back to where it started (that would only undo the hop)
        hop = None if v in hopped else _hop_host(judged(v), v, cur, loads, int(final[v]), int(place0[v]))
        if hop is not None and len(steps) + 2 <= most:
            hopped.add(v)
            apply(v, hop)
        else:
            dropped.append(v)
            pending = pending[1:]
    return Ordering(steps, dropped, cur)


def _hop_host(cluster: Cluster, v: int, cur: np.ndarray, loads: np.ndarray, final: int, start: int) -> int | None:
    """The host with the most room (after ``v``) that ``v`` may go to now, other than where it is, where it
    started and its destination."""
    ok = cluster.on & cluster.allowed[v]
    ok &= np.all(loads + cluster.load[v] <= cluster.bound + 1e-6, axis=1)
    for g in cluster.apart_of.get(v, ()):
        ok[cur[g.vms[g.vms != v]]] = False
    ok[[final, int(cur[v]), start]] = False
    if not ok.any():
        return None
    room = ((cluster.bound - loads - cluster.load[v]) / cluster.cap).min(axis=1)
    return int(np.argmax(np.where(ok, room, -np.inf)))
