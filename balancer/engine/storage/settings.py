"""Storage DRS settings per datastore: each datastore cluster's own (snapshot ``datastore_clusters``,
read from vCenter's storage pods or set in the simulated cluster's config), the planner's
``StorageOptions`` (the config's ``sdrs:``) for whatever a pod leaves out and for every datastore in
no datastore cluster.

- ``threshold``: the space threshold (used / capacity). A pod in vCenter's free-space mode
  (``free_space_gb``) is over when less than that is free: its threshold is 1 - free_space_gb /
  capacity, per datastore (never below 0).
- ``min_difference``, ``latency``, ``io``: the minimum space utilisation difference, the latency
  threshold and whether latency is judged at all.
- ``together``: VMDK affinity by default for a VM whose disks sit there (``defaultIntraVmAffinity``).
- ``balanced``: Storage DRS may move disks there on its own for rules, space and latency: the pod's
  Storage DRS is on, and its automation is ``automated`` or the plan is a recommendation
  (``StorageOptions.manual_pods``). Evacuation moves a disk off a datastore whatever the pod says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...snapshot import Snapshot
from ..options import StorageOptions


@dataclass
class Settings:
    threshold: np.ndarray  # (D,) space threshold, used / capacity
    min_difference: np.ndarray  # (D,)
    latency: np.ndarray  # (D,) latency threshold, ms
    io: np.ndarray  # (D,) bool: latency judged
    together: np.ndarray  # (D,) bool: a VM's disks kept together by default
    balanced: np.ndarray  # (D,) bool: Storage DRS moves disks there on its own
    manual: np.ndarray  # (D,) bool: its pod's automation is manual (moves are recommendations)
    enabled: np.ndarray  # (D,) bool: Storage DRS on for its pod
    free_space_gb: np.ndarray  # (D,) the pod's free-space threshold, GB; NaN: a utilisation threshold

    def threshold_words(self, d: int) -> str:
        """The space threshold of datastore ``d`` in words: "80 %", or "20 GB free"."""
        if not np.isnan(self.free_space_gb[d]):
            return f"{self.free_space_gb[d]:g} GB free space"
        return f"{100 * self.threshold[d]:.0f} %"

    def all_words(self, ds) -> str:
        """The space threshold of the datastores ``ds`` in words: "the 80 % space threshold" when they
        share it, else "their space thresholds"."""
        words = {self.threshold_words(int(d)) for d in ds}
        return f"the {words.pop()} space threshold" if len(words) == 1 else "their space thresholds"


def settings(snapshot: Snapshot, options: StorageOptions) -> Settings:
    stores = snapshot.datastores
    pods = {c.name: c for c in snapshot.datastore_clusters}
    D = len(stores)
    out = Settings(
        threshold=np.full(D, options.space_threshold), min_difference=np.full(D, options.min_space_difference),
        latency=np.full(D, options.latency_threshold_ms), io=np.full(D, options.io_balancing, dtype=bool),
        together=np.full(D, options.keep_disks_together, dtype=bool), balanced=np.ones(D, dtype=bool),
        manual=np.zeros(D, dtype=bool), enabled=np.ones(D, dtype=bool), free_space_gb=np.full(D, np.nan))
    for i, d in enumerate(stores):
        c = pods.get(d.datastore_cluster or "")
        if c is None:
            continue
        if c.space_threshold is not None:
            out.threshold[i] = c.space_threshold
        elif c.free_space_gb is not None:
            out.threshold[i] = max(1.0 - c.free_space_gb / d.capacity_gb, 0.0)
            out.free_space_gb[i] = c.free_space_gb
        if c.min_space_difference is not None:
            out.min_difference[i] = c.min_space_difference
        if c.latency_threshold_ms is not None:
            out.latency[i] = c.latency_threshold_ms
        if c.io_balancing is not None:
            out.io[i] = c.io_balancing
        if c.keep_disks_together is not None:
            out.together[i] = c.keep_disks_together
        out.manual[i] = c.automation == "manual"
        out.enabled[i] = c.enabled is not False
        out.balanced[i] = c.enabled is not False and (c.automation != "manual" or options.manual_pods)
    return out
