"""The long-lived service: scheduled cycles per cluster (collect -> plan -> act), journal, metrics."""

from .cycle import ClusterCycle, CycleResult
from .runner import Service

__all__ = ["ClusterCycle", "CycleResult", "Service"]
