"""Checks made on a plan against the cluster as it is now: before applying a saved plan (its cluster,
its age, a replay of its steps: replay.py) and just before each action (premise.py; cross.py for a
move between clusters)."""

from .premise import check_plan_against, move_premise
from .replay import check_plan_age, check_plan_steps

__all__ = ["check_plan_age", "check_plan_against", "check_plan_steps", "move_premise"]
