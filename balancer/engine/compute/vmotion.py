"""Pre-copy live-migration cost model (Clark et al. NSDI 2005; Akoush et al. MASCOTS 2010).

V = memory to copy, R = vMotion transfer rate, D = page dirty rate, lambda = D / R.
Round i sends V * lambda^i; pre-copy stops when what is left to send is under the
switch-over threshold or after ``MAX_ROUNDS``; the last round is sent with the VM stunned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SETUP_S = 1.0  # compatibility checks, handshake, destination VM creation
RESUME_S = 0.05  # resume on the destination after switch-over
SWITCHOVER_MB = 64.0  # pre-copy stops when at most this much dirty memory is left
MAX_ROUNDS = 29  # Xen's stop rule; vMotion forces convergence by slowing the guest
ACTIVE_DIRTY_FRACTION = 0.02  # modelled dirty rate: 2 % of active memory per second


@dataclass(frozen=True)
class Estimate:
    seconds: float
    downtime_ms: float
    data_mb: float
    rounds: int
    converges: bool


def modelled_dirty_rate_mbps(mem_demand_mb: float) -> float:
    """Dirty rate in megabits/s when the snapshot gives none: a share of active memory per second."""
    return mem_demand_mb * 8.0 * ACTIVE_DIRTY_FRACTION


def estimate(mem_mb: float, dirty_rate_mbps: float, bandwidth_mbps: float) -> Estimate:
    """Predicted duration, downtime and data sent for moving a VM with ``mem_mb`` of memory."""
    if mem_mb <= 0:
        return Estimate(SETUP_S, RESUME_S * 1000, 0.0, 0, True)
    v = mem_mb * 8.0  # megabits
    r = max(bandwidth_mbps, 1e-6)
    lam = max(dirty_rate_mbps, 0.0) / r
    threshold = SWITCHOVER_MB * 8.0
    converges = lam < 1.0
    if lam <= 0.0:
        rounds = 0 if v <= threshold else 1
    elif converges:
        rounds = 0 if v <= threshold else min(math.ceil(math.log(threshold / v) / math.log(lam)), MAX_ROUNDS)
    else:
        rounds = MAX_ROUNDS
    if converges:
        sent = v * (1 - lam ** (rounds + 1)) / (1 - lam) if lam > 0 else v
        last = v * lam**rounds if lam > 0 else (v if rounds == 0 else 0.0)
    else:
        # Without throttling pre-copy never shrinks: every round resends the whole dirty set.
        # vMotion stuns the guest to force convergence; price it as the full rounds plus a full final copy.
        sent = v * (rounds + 1)
        last = v
    seconds = SETUP_S + sent / r
    downtime_ms = (last / r + RESUME_S) * 1000.0
    return Estimate(seconds, downtime_ms, sent / 8.0, rounds, converges)


def seconds(mem_mb: np.ndarray, dirty_rate_mbps: np.ndarray, bandwidth_mbps: np.ndarray) -> np.ndarray:
    """``estimate(...).seconds`` for many VMs at once (arrays of the same shape)."""
    mem = np.asarray(mem_mb, dtype=float)
    v = mem * 8.0
    r = np.maximum(np.asarray(bandwidth_mbps, dtype=float), 1e-6)
    lam = np.maximum(np.asarray(dirty_rate_mbps, dtype=float), 0.0) / r
    threshold = SWITCHOVER_MB * 8.0
    small = v <= threshold
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        needed = np.ceil(np.log(threshold / np.where(small, threshold, v)) / np.log(np.where((lam > 0) & (lam < 1), lam, 0.5)))
        rounds = np.where(lam <= 0, np.where(small, 0, 1),
                          np.where(lam < 1, np.where(small, 0, np.minimum(needed, MAX_ROUNDS)), MAX_ROUNDS))
        geometric = v * (1 - lam ** (rounds + 1)) / np.where(lam < 1, 1 - lam, 1.0)
    sent = np.where(lam >= 1, v * (rounds + 1), np.where(lam > 0, geometric, v))
    return np.where(mem <= 0, SETUP_S, SETUP_S + sent / r)
