"""The pure engine: snapshot in, plan out."""

from .history import NO_HISTORY, History
from .options import PlanOptions, StorageOptions
from .planner import PLANNERS, make_plan

__all__ = ["NO_HISTORY", "PLANNERS", "History", "PlanOptions", "StorageOptions", "make_plan"]
