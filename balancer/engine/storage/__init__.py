"""The storage planner: disks between datastores (Storage DRS), after the compute planner.

pool.py turns a snapshot into arrays over datastores and disks; rules.py compiles the Storage DRS
rules into units (disks that move together) and checks; layout.py keeps the running layout the
moves are chosen on; select.py chooses the moves (evacuation, rules, space, latency) step by step;
baseline.py is the "largest disk off the fullest datastore" heuristic the space stage is held to;
copy.py prices a Storage vMotion; planner.py adds the moves and the datastores to the plan.
"""

from .planner import plan_storage

__all__ = ["plan_storage"]
