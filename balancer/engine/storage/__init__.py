"""The storage planner: disks between datastores (Storage DRS), after the compute planner.

pool.py turns a snapshot into arrays over datastores and disks; rules.py compiles the Storage DRS
rules into units (disks that move together) and checks; select.py chooses the moves (evacuation,
rules, space, latency) step by step; copy.py prices a Storage vMotion; planner.py adds the
moves and the datastores to the plan.
"""

from .planner import plan_storage

__all__ = ["plan_storage"]
