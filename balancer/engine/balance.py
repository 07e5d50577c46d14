"""DRS's balance measure and the migration threshold's targets."""

from __future__ import annotations

import math

import numpy as np

from .cluster import Cluster

# Largest allowed utilisation gap between two hosts at migration thresholds 2..5 (vSphere 6.5+).
PAIRWISE_GAP = {1: math.inf, 2: 0.30, 3: 0.20, 4: 0.10, 5: 0.05}
# Minimum gain of one move (reduction of cpu variance + mem variance, summed over hosts).
MIN_GAIN = {1: math.inf, 2: 0.02, 3: 0.005, 4: 0.001, 5: 0.0002}


def utilisation(cluster: Cluster, loads: np.ndarray) -> np.ndarray:
    """(H, 2) demand / capacity per host."""
    return loads / cluster.cap


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


def needs_balancing(cluster: Cluster, loads: np.ndarray, threshold: int) -> bool:
    """DRS balances when imbalance is above the threshold's target or two hosts are too far apart."""
    if threshold <= 1:
        return False
    cpu, mem = imbalance(cluster, loads)
    target = target_imbalance(threshold, int(cluster.on.sum()))
    return max(cpu, mem) > target or max_gap(cluster, loads) > PAIRWISE_GAP[threshold]
