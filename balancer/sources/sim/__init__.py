"""The embedded simulated cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cluster import SimulatedCluster


def __getattr__(name: str):
    # imported when first asked for, so `check-config` (which reads only kind.check) needs no numpy
    if name == "SimulatedCluster":
        from .cluster import SimulatedCluster

        return SimulatedCluster
    raise AttributeError(name)


__all__ = ["SimulatedCluster"]
