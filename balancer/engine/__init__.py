"""The pure engine: snapshot in, plan out."""

from .history import NO_HISTORY, History
from .options import PlanOptions
from .planner import PLANNERS, make_plan

__all__ = ["NO_HISTORY", "PLANNERS", "History", "PlanOptions", "make_plan"]
