"""The plan: model and JSON format."""

from .io import load_plan, parse_plan, plan_json, plan_schema
from .model import PLAN_VERSION, Imbalance, Move, Plan, PowerAction, ResourcePair, Suppressed, Violation, VMotionEstimate

__all__ = [
    "PLAN_VERSION", "Imbalance", "Move", "Plan", "PowerAction", "ResourcePair", "Suppressed", "Violation",
    "VMotionEstimate", "load_plan", "parse_plan", "plan_json", "plan_schema",
]
