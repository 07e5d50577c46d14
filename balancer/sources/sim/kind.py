"""The embedded simulated cluster as a source kind (registry line in sources/registry.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InputError

if TYPE_CHECKING:
    from ...config import Config
    from .cluster import SimulatedCluster

# The simulator (numpy, the engine) is imported when first used, not with this module: `check-config`
# reads only `check` (docs/benchmarks.md, "Start-up time").


def __getattr__(name: str):
    if name == "SOURCE":
        from .cluster import SimulatedCluster

        return SimulatedCluster
    raise AttributeError(name)


def open(config: "Config") -> SimulatedCluster:  # noqa: A001 - the kind's contract
    from .cluster import SimulatedCluster

    return SimulatedCluster(config.sim, config.drs.idle_memory_percent / 100.0)


def check(config: "Config", where: str) -> list[str]:
    """The trace must load (InputError naming sim.trace)."""
    from .traces import check_trace

    try:
        check_trace(config.sim.trace)
    except InputError as exc:
        raise InputError(f"{where}sim.trace: {exc}") from None
    return []


def attach_state(source: SimulatedCluster, path: Path) -> bool:
    """Restore the state from ``path`` (when it fits) and save every change back to it."""
    from .state import attach_state_file

    return attach_state_file(source, path)


def restore_state(source: SimulatedCluster, path: Path) -> bool:
    """Restore the state from ``path`` when the file exists and fits; nothing is written."""
    from .state import restore_state as _restore

    return path.is_file() and _restore(source, path)
