"""Pre-copy live-migration cost model (Clark et al. NSDI 2005; Akoush et al. MASCOTS 2010).

V = memory to copy, R = vMotion transfer rate, D = page dirty rate, lambda = D / R.
Round i sends V * lambda^i; pre-copy stops when what is left to send is under the
switch-over threshold or after ``MAX_ROUNDS``; the last round is sent with the VM stunned.
"""

from __future__ import annotations

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
    return estimates(np.array([mem_mb], dtype=float), np.array([dirty_rate_mbps], dtype=float),
                     np.array([bandwidth_mbps], dtype=float))[0]


def estimates(mem_mb: np.ndarray, dirty_rate_mbps: np.ndarray, bandwidth_mbps: np.ndarray) -> list[Estimate]:
    """``estimate`` for many VMs at once (arrays of the same shape), in one pass of the model."""
    secs, downtime_ms, data_mb, rounds, converges = _precopy(mem_mb, dirty_rate_mbps, bandwidth_mbps)
    return [Estimate(float(a), float(b), float(c), int(d), bool(e))
            for a, b, c, d, e in zip(secs.tolist(), downtime_ms.tolist(), data_mb.tolist(), rounds.tolist(), converges.tolist())]


def seconds(mem_mb: np.ndarray, dirty_rate_mbps: np.ndarray, bandwidth_mbps: np.ndarray) -> np.ndarray:
    """``estimate(...).seconds`` for many VMs at once (arrays of the same shape)."""
    return _precopy(mem_mb, dirty_rate_mbps, bandwidth_mbps)[0]


def _precopy(mem_mb: np.ndarray, dirty_rate_mbps: np.ndarray, bandwidth_mbps: np.ndarray) -> tuple[np.ndarray, ...]:
    """The model for many VMs at once: seconds, downtime in ms, data sent in MB, rounds, converges."""
    mem = np.asarray(mem_mb, dtype=float)
    v = mem * 8.0  # megabits
    r = np.maximum(np.asarray(bandwidth_mbps, dtype=float), 1e-6)
    lam = np.maximum(np.asarray(dirty_rate_mbps, dtype=float), 0.0) / r
    threshold = SWITCHOVER_MB * 8.0
    small = v <= threshold
    converges = lam < 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        needed = np.ceil(np.log(threshold / np.where(small, threshold, v)) / np.log(np.where((lam > 0) & converges, lam, 0.5)))
        rounds = np.where(lam <= 0, np.where(small, 0, 1),
                          np.where(converges, np.where(small, 0, np.minimum(needed, MAX_ROUNDS)), MAX_ROUNDS))
        geometric = v * (1 - lam ** (rounds + 1)) / np.where(converges, 1 - lam, 1.0)
        tail = v * lam ** rounds
    # Without throttling pre-copy never shrinks: every round resends the whole dirty set. vMotion stuns the
    # guest to force convergence; price it as the full rounds plus a full final copy.
    sent = np.where(~converges, v * (rounds + 1), np.where(lam > 0, geometric, v))
    last = np.where(~converges, v, np.where(lam > 0, tail, np.where(rounds == 0, v, 0.0)))
    none = mem <= 0  # nothing to copy: the setup and the resume
    secs = np.where(none, SETUP_S, SETUP_S + sent / r)
    downtime_ms = np.where(none, RESUME_S * 1000, (last / r + RESUME_S) * 1000.0)
    data_mb = np.where(none, 0.0, sent / 8.0)
    return secs, downtime_ms, data_mb, np.where(none, 0, rounds).astype(int), np.where(none, True, converges)
