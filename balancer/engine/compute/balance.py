"""DRS's balance measure and the migration threshold's targets."""

from __future__ import annotations

import math

import numpy as np

from .cluster import BALANCED, Cluster

# Largest allowed utilisation gap between two hosts at migration thresholds 2..5 (vSphere 6.5+).
PAIRWISE_GAP = {1: math.inf, 2: 0.30, 3: 0.20, 4: 0.10, 5: 0.05}
# Minimum gain of one move (reduction of cpu variance + mem variance, summed over hosts).
MIN_GAIN = {1: math.inf, 2: 0.02, 3: 0.005, 4: 0.001, 5: 0.0002}


def utilisation(cluster: Cluster, loads: np.ndarray) -> np.ndarray:
    """(H, 2) demand / capacity per host (CPU, memory: tallies are not balanced)."""
    return loads[:, BALANCED] / cluster.cap[:, BALANCED]


def imbalance(cluster: Cluster, loads: np.ndarray) -> tuple[float, float]:
    """Population std-dev of per-host demand/capacity over hosts that are on, for CPU and memory."""
    if not cluster.on.any():
        return 0.0, 0.0
    u = utilisation(cluster, loads)[cluster.on]
    std = u.std(axis=0)
    return float(std[0]), float(std[1])


def combined(cpu: float, mem: float) -> float:
    return math.hypot(cpu, mem)


def target_imbalance(threshold: int, hosts_on: int) -> float:
    """Imbalance a threshold tolerates (KB 1007485): 0.1 x (5 - L) / sqrt(N); level 1 tolerates any."""
    if threshold <= 1:
        return math.inf
    return 0.1 * (5 - threshold) / math.sqrt(max(hosts_on, 1))


def max_gap(cluster: Cluster, loads: np.ndarray) -> float:
    if cluster.on.sum() < 2:
        return 0.0
    u = utilisation(cluster, loads)[cluster.on]
    return float((u.max(axis=0) - u.min(axis=0)).max())


def balancing_trigger(cluster: Cluster, loads: np.ndarray, threshold: int) -> str | None:
    """Why DRS balances: "imbalance" (above the threshold's target), "gap" (within it, but two hosts
    are further apart than the threshold allows), or None (it does not)."""
    if threshold <= 1:
        return None
    cpu, mem = imbalance(cluster, loads)
    if max(cpu, mem) > target_imbalance(threshold, int(cluster.on.sum())):
        return "imbalance"
    if max_gap(cluster, loads) > PAIRWISE_GAP[threshold]:
        return "gap"
    return None


def needs_balancing(cluster: Cluster, loads: np.ndarray, threshold: int) -> bool:
    """DRS balances when imbalance is above the threshold's target or two hosts are too far apart."""
    return balancing_trigger(cluster, loads, threshold) is not None


def move_delta(cluster: Cluster, on: np.ndarray, loads: np.ndarray, place: np.ndarray, vms: np.ndarray,
               hosts: np.ndarray | None = None) -> np.ndarray:
    """(C, D) change of Σ over hosts that are on of (cpu dev² + mem dev²) when each VM moves alone to each host.

    ``on``: the hosts that count; ``loads`` (H, 2) and ``place``: the placement now; ``hosts``:
    the targets (None: every host). With f = load × w (w = 1 / capacity of the target), the change
    is, per resource, f²(1 − 1/N) + f (2 u_d − 2 S1/N + 2 f_s/N) + terms of the source alone — a
    product of a (C, 6) and a (6, D) matrix, so scoring every pair costs one matrix product.
    Negative: the move lowers the imbalance. Feasibility is not judged here (``fits``).
    """
    n_on = max(int(on.sum()), 1)
    cap = cluster.cap[:, BALANCED]
    u = loads[:, BALANCED] / cap
    S1 = u[on].sum(axis=0)
    src = place[vms]
    ld = cluster.load[vms][:, BALANCED]
    fs = ld / cap[src] * on[src].astype(float)[:, None]  # (C, 2) share leaving a host that counts
    const = (fs * (fs - 2 * u[src])).sum(axis=1) + ((2 * S1 * fs - fs * fs) / n_on).sum(axis=1)
    w = 1.0 / (cap if hosts is None else cap[hosts])  # (D, 2)
    ud = u if hosts is None else u[hosts]
    left = np.concatenate([ld * ld * (1 - 1 / n_on), ld, 2 * ld * fs / n_on], axis=1)  # (C, 6)
    right = np.concatenate([w * w, w * (2 * ud - 2 * S1 / n_on), w], axis=1).T  # (6, D)
    return left @ right + const[:, None]


def fits(cluster: Cluster, loads: np.ndarray, vms: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """(C, D) does each VM fit on each host under ``ceiling`` ((D, R): e.g. capacity minus headroom, and the
    tallies' ceilings) given ``loads``?"""
    room = ceiling + 1e-6 - loads
    ld = cluster.load[vms]
    ok = (ld[:, None, 0] <= room[None, :, 0]) & (ld[:, None, 1] <= room[None, :, 1])
    for r in range(2, ld.shape[1]):
        ok &= ld[:, None, r] <= room[None, :, r]
    return ok
