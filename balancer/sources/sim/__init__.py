"""The embedded simulated cluster."""

from .cluster import SimulatedCluster

__all__ = ["SimulatedCluster"]
