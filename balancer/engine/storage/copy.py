"""A Storage vMotion's predicted cost: the data copied and the time it takes at the copy rate."""

from __future__ import annotations

MEGABITS_PER_GB = 8 * 1024


def copy_seconds(data_gb: float, copy_mbps: float) -> float:
    """Seconds to copy ``data_gb`` at ``copy_mbps`` megabits per second."""
    return data_gb * MEGABITS_PER_GB / copy_mbps
