"""The compute planner: VMs between hosts (DRS), hosts into and out of standby (DPM) and maintenance.

cluster.py turns a snapshot into arrays; balance.py measures; rules.py and feasibility.py judge
the rules; optimizer.py (CP-SAT) and greedy.py choose where VMs go; order.py turns a target
placement into executable steps; dpm.py and power.py decide host power; holds.py keeps the
anti-oscillation holds; vmotion.py prices a move; planner.py puts it together into a Plan.
"""

from .planner import PLANNERS, plan_compute

__all__ = ["PLANNERS", "plan_compute"]
