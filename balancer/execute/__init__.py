"""Carrying out plans: outcomes of actions and the checks made just before each one."""

from .premise import check_plan_against, move_premise
from .result import ActionResult

__all__ = ["ActionResult", "check_plan_against", "move_premise"]
