"""Moves between the clusters of a balancing domain (cross-cluster and cross-vCenter vMotion)."""

from .compat import check_cpu, check_duties, check_headroom, check_network, check_size, disks_reachable
from .planner import plan_domain, replay_problem

__all__ = ["check_cpu", "check_duties", "check_headroom", "check_network", "check_size", "disks_reachable", "plan_domain",
           "replay_problem"]
