"""The plan: model and JSON format."""

from .io import load_plan, parse_plan, plan_json, plan_schema
from .model import (
    PLAN_VERSION, CopyEstimate, DatastoreChange, DiskMove, DpmEndState, DpmStep, Imbalance, Move, Plan, PowerAction, ResourcePair, StorageMove, Suppressed,
    Violation, VMotionEstimate,
)

__all__ = [
    "PLAN_VERSION", "CopyEstimate", "DatastoreChange", "DiskMove", "DpmEndState", "DpmStep", "Imbalance", "StorageMove", "Move", "Plan", "PowerAction", "ResourcePair", "Suppressed", "Violation",
    "VMotionEstimate", "load_plan", "parse_plan", "plan_json", "plan_schema",
]
