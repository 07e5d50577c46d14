"""The pure engine: snapshot in, plan out."""

from .history import NO_HISTORY, History
from .domain import plan_domain
from .options import DomainMember, DomainOptions, PlanOptions, StorageOptions
from .planner import PLANNERS, make_plan

__all__ = ["NO_HISTORY", "PLANNERS", "DomainMember", "DomainOptions", "History", "PlanOptions", "StorageOptions",
           "make_plan", "plan_domain"]
