"""Prometheus metrics of the service and the HTTP endpoint that serves them (/metrics, /healthz)."""

from .exporter import Metrics
from .http import MetricsServer, make_app

__all__ = ["Metrics", "MetricsServer", "make_app"]
