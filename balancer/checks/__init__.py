"""Carrying out plans: outcomes of actions and the checks made just before each one."""

from .premise import check_plan_against, move_premise
from .replay import check_plan_age, check_plan_steps
from .result import ActionResult

__all__ = ["ActionResult", "check_plan_age", "check_plan_against", "check_plan_steps", "move_premise"]
