"""The pure engine: snapshot in, plan out."""

from .options import PlanOptions
from .planner import PLANNERS, make_plan

__all__ = ["PLANNERS", "PlanOptions", "make_plan"]
