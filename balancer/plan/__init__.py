"""The plan: model and JSON format."""

from .io import load_plan, parse_plan, plan_json, plan_schema
from .model import (
    PLAN_VERSION, CopyEstimate, DatastoreChange, DiskMove, DpmEndState, DpmStep, Imbalance, Move, Plan, PoolLoad, PowerAction, ResourcePair, StorageMove, Suppressed,
    Totals, Violation, VMotionEstimate, plan_totals,
)

__all__ = [
    "PLAN_VERSION", "CopyEstimate", "DatastoreChange", "DiskMove", "DpmEndState", "DpmStep", "Imbalance", "StorageMove", "Move", "Plan", "PoolLoad", "PowerAction", "ResourcePair", "Suppressed", "Totals", "Violation",
    "VMotionEstimate", "plan_totals", "load_plan", "parse_plan", "plan_json", "plan_schema",
]
