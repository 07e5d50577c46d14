"""`balancer snapshot`: the configured cluster's current snapshot, as the service sees it."""

from __future__ import annotations

from ..snapshot import Snapshot
from .oneoff import cluster_of, collect


def take_snapshot(config_path: str | None, cluster_name: str | None) -> Snapshot:
    """The snapshot of the config's cluster (the embedded simulator as the service left it, unchanged)."""
    return collect(*cluster_of(config_path, cluster_name))


__all__ = ["take_snapshot"]
