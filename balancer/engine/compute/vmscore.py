"""The VM score: how well each powered-on VM is served where it runs, 0 (starved) to 100 (fully served).

vSphere 7 computes a "VM DRS score" but does not publish its formula; this one is ours (docs/vsphere7.md,
*VM scores*). For a VM on host h, with u_c and u_m the host's CPU and memory utilisation (the entitlements
of the powered-on VMs on it over its physical capacity), D its demand and E its entitlement
(engine/compute/entitlement.py: what the cluster gives it under contention):

    served_r = min(1, E_r / D_r, 1 / u_r)                    (1 when D_r = 0)
    ready    = clamp(READY_SLOPE x max(0, u_c - READY_KNEE) + ready residual, 0, 100)          [%]
    reclaim  = clamp(RECLAIM_SLOPE x max(0, u_m - RECLAIM_KNEE) + reclaim residual, 0, 1)      [share of its memory]
    cpu      = served_c x max(0, 1 - ready / READY_ZERO)
    mem      = served_m x max(0, 1 - reclaim / RECLAIM_ZERO)
    score    = 100 x cpu x mem

The measured inputs (snapshot version 6: ``cpu_ready_pct``; ``mem_ballooned_mb`` + ``mem_compressed_mb`` +
SWAP_WEIGHT x ``mem_swapped_mb`` over the VM's configured memory) enter through the residuals: what was measured
minus what the model says for the host the VM was measured on. An unknown input (None: not measured, or vCenter
returned no sample) is not taken as 0: CPU ready unknown gives a residual of 0 (the model's figure for its host
stands); the memory inputs count when at least one of the three is known, the unknown ones then as 0 (the
counters come in one query: one missing beside others is reclaiming nothing); all three unknown, the model's. So the part of its ready
time or reclaimed memory its host's load explains follows the host (a move changes it), and the rest
follows the VM. The cluster score is the mean of the powered-on VMs' scores.

Pure: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...snapshot import Snapshot
from .entitlement import entitle

READY_KNEE = 0.75  # CPU utilisation of its host above which a VM starts to wait for a CPU
READY_SLOPE = 25.0  # modelled CPU ready, percentage points per unit of utilisation above the knee
READY_ZERO = 20.0  # CPU ready (%) at which the CPU part of the score is 0
RECLAIM_KNEE = 0.95  # memory utilisation above which the host balloons and swaps
RECLAIM_SLOPE = 2.0  # modelled share of a VM's memory reclaimed per unit of utilisation above the knee
RECLAIM_ZERO = 0.5  # share of its memory reclaimed (ballooned + weighted swapped) at which the memory part is 0
SWAP_WEIGHT = 3.0  # a swapped MB hurts as three ballooned (or compressed) ones
BUCKETS = ("0-20", "20-40", "40-60", "60-80", "80-100")


def modelled_ready_pct(u_cpu: np.ndarray | float) -> np.ndarray:
    """CPU ready (%) a VM is modelled to see on a host at CPU utilisation ``u_cpu`` (the simulated cluster
    reports this, sources/sim)."""
    return READY_SLOPE * np.maximum(0.0, np.asarray(u_cpu, dtype=float) - READY_KNEE)


def modelled_reclaim(u_mem: np.ndarray | float) -> np.ndarray:
    """Share of a VM's memory a host at memory utilisation ``u_mem`` is modelled to reclaim from it."""
    return RECLAIM_SLOPE * np.maximum(0.0, np.asarray(u_mem, dtype=float) - RECLAIM_KNEE)


@dataclass(frozen=True)
class ScoreInputs:
    """What the score reads, as arrays: per VM (V) and per host (H)."""

    demand: np.ndarray  # (V, 2) CPU MHz, memory MB the VM demands (0 powered off)
    entitled: np.ndarray  # (V, 2) what it is entitled to
    mem_mb: np.ndarray  # (V,) configured memory
    powered: np.ndarray  # (V,) bool
    cap: np.ndarray  # (H, 2) physical capacity
    ready_resid: np.ndarray  # (V,) measured CPU ready minus the model's on the host it was measured on
    reclaim_resid: np.ndarray  # (V,) the same for the reclaimed share of memory

    def host_utilisation(self, place: np.ndarray) -> np.ndarray:
        """(H, 2) entitlements on each host over its capacity."""
        loads = np.zeros(self.cap.shape)
        np.add.at(loads, place, self.entitled)
        return loads / np.maximum(self.cap, 1e-9)

    def scores(self, place: np.ndarray) -> np.ndarray:
        """(V,) each VM's score in ``place`` (NaN for a powered-off VM)."""
        return self.scores_at(np.arange(len(place)), self.host_utilisation(place)[place])

    def scores_at(self, vms: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Scores of ``vms`` on hosts at utilisation ``u`` ((len(vms), 2), or broadcastable)."""
        u = np.asarray(u, dtype=float)
        d, e = self.demand[vms], self.entitled[vms]
        served = np.minimum(1.0, np.where(d > 0, e / np.where(d > 0, d, 1.0), 1.0))
        served = np.minimum(served, 1.0 / np.maximum(u, 1.0))
        ready = np.clip(modelled_ready_pct(u[..., 0]) + self.ready_resid[vms], 0.0, 100.0)
        reclaim = np.clip(modelled_reclaim(u[..., 1]) + self.reclaim_resid[vms], 0.0, 1.0)
        cpu = served[..., 0] * np.maximum(0.0, 1.0 - ready / READY_ZERO)
        mem = served[..., 1] * np.maximum(0.0, 1.0 - reclaim / RECLAIM_ZERO)
        return np.where(self.powered[vms], 100.0 * cpu * mem, np.nan)


def measured_reclaim(v) -> float | None:
    """A VM's measured reclaimed share of memory ((ballooned + compressed + SWAP_WEIGHT x swapped) over its
    memory), or None when none of the three is known."""
    if v.mem_ballooned_mb is None and v.mem_swapped_mb is None and v.mem_compressed_mb is None:
        return None
    return ((v.mem_ballooned_mb or 0.0) + (v.mem_compressed_mb or 0.0) + SWAP_WEIGHT * (v.mem_swapped_mb or 0.0)) \
        / v.mem_mb


def score_inputs(snapshot: Snapshot, demand: np.ndarray | None = None, entitled: np.ndarray | None = None
                 ) -> ScoreInputs:
    """The score's inputs from ``snapshot`` (``demand`` and ``entitled``: (V, 2) when the caller has them, e.g.
    the planner's recent demand; else the snapshot's loads and their entitlements)."""
    vms, hosts = snapshot.vms, snapshot.hosts
    V = len(vms)
    if demand is None:
        demand = np.array([[v.cpu_load_mhz, v.mem_load_mb] for v in vms], dtype=float).reshape(V, 2)
    if entitled is None:
        entitled = entitle(snapshot, demand)
    cap = np.array([[h.cpu_capacity_mhz, h.mem_capacity_mb] for h in hosts], dtype=float).reshape(len(hosts), 2)
    index = {h.name: i for i, h in enumerate(hosts)}
    place = np.array([index[v.host] for v in vms], dtype=np.int64)
    inp = ScoreInputs(demand=demand[:, :2], entitled=entitled[:, :2],
                      mem_mb=np.array([v.mem_mb for v in vms], dtype=float),
                      powered=np.array([v.powered_on for v in vms], dtype=bool), cap=cap,
                      ready_resid=np.zeros(V), reclaim_resid=np.zeros(V))
    return with_residuals(inp, vms, place)


def with_residuals(inp: ScoreInputs, vms, place: np.ndarray) -> ScoreInputs:
    """``inp`` with each VM's measured CPU ready and reclaimed memory, less what its host's load at ``place``
    (where they were measured) explains: the part that follows the VM when it moves."""
    if not len(vms):
        return inp
    u = inp.host_utilisation(place)[place]
    for i, v in enumerate(vms):
        if v.cpu_ready_pct is not None:
            inp.ready_resid[i] = v.cpu_ready_pct - float(modelled_ready_pct(u[i, 0]))
        reclaim = measured_reclaim(v)
        if reclaim is not None:
            inp.reclaim_resid[i] = reclaim - float(modelled_reclaim(u[i, 1]))
    return inp


def snapshot_scores(snapshot: Snapshot, moves: dict[str, str] | None = None) -> dict[str, float]:
    """Each powered-on VM's score where the snapshot has it, or after ``moves`` (VM name -> host name)."""
    inp = score_inputs(snapshot)
    index = {h.name: i for i, h in enumerate(snapshot.hosts)}
    moves = moves or {}
    place = np.array([index[moves.get(v.name, v.host)] for v in snapshot.vms], dtype=np.int64)
    s = inp.scores(place) if len(place) else np.zeros(0)
    return {v.name: float(x) for v, x in zip(snapshot.vms, s) if v.powered_on}


def cluster_score(scores) -> float | None:
    """The cluster score: the mean of the powered-on VMs' scores (None without any)."""
    values = [float(x) for x in (scores.values() if isinstance(scores, dict) else scores) if x == x]
    return sum(values) / len(values) if values else None


def bucket_counts(scores) -> dict[str, int]:
    """How many VMs score in each bucket 0-20 ... 80-100 (a bucket holds its lower bound; 100 is in 80-100)."""
    out = dict.fromkeys(BUCKETS, 0)
    for x in (scores.values() if isinstance(scores, dict) else scores):
        if x == x:
            out[BUCKETS[min(int(x // 20), 4)]] += 1
    return out


__all__ = ["BUCKETS", "ScoreInputs", "bucket_counts", "cluster_score", "measured_reclaim", "modelled_ready_pct",
           "modelled_reclaim", "score_inputs", "snapshot_scores"]
