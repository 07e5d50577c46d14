"""Cluster sources: where snapshots come from and where plans are carried out."""

from __future__ import annotations

from ..config import Config
from .base import ClusterTask, Source


def open_source(config: Config) -> Source:
    """The source the config names: the embedded simulated cluster or a vCenter cluster."""
    if config.source == "vcenter":
        from .vcenter import VCenterSource  # pyvmomi is only imported when needed

        assert config.vcenter is not None
        return VCenterSource(config.vcenter, config.drs, config.sdrs)
    from .sim import SimulatedCluster

    return SimulatedCluster(config.sim, config.drs.idle_memory_percent / 100.0)


__all__ = ["ClusterTask", "Source", "open_source"]
