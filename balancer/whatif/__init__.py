"""What-if replay (`balancer simulate`): a trace day through the embedded simulated cluster."""

from .measure import HostLoads, Measure, host_loads
from .replay import POLICIES, ReplayResult, ReplaySpec, replay, replay_spec

__all__ = ["POLICIES", "HostLoads", "Measure", "ReplayResult", "ReplaySpec", "host_loads", "replay", "replay_spec"]
