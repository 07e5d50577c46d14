"""Structured logs for the service: one line per event, as text or JSON, with the cluster and cycle id.

Events are logged with ``event(logger, "name", key=value, ...)``; the cluster and cycle id come
from context variables set for the duration of a cycle (``cycle_context``), so code deep in a
cycle (the executors, the sources) gets them on its lines without passing them around.

Text:  ``2025-05-14T09:30:01.716Z INFO  plan cluster=sim-cluster cycle=12 moves=3 imbalance=0.084``
JSON:  ``{"ts": "...", "level": "info", "event": "plan", "cluster": "sim-cluster", "cycle": 12, "moves": 3, ...}``
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from typing import Any, Iterator

_cluster: contextvars.ContextVar[str | None] = contextvars.ContextVar("balancer_cluster", default=None)
_cycle: contextvars.ContextVar[int | None] = contextvars.ContextVar("balancer_cycle", default=None)


@contextlib.contextmanager
def cycle_context(cluster: str | None, cycle: int | None = None) -> Iterator[None]:
    """Tag every log line made inside the block (in this thread) with the cluster and cycle id."""
    t1 = _cluster.set(cluster)
    t2 = _cycle.set(cycle)
    try:
        yield
    finally:
        _cycle.reset(t2)
        _cluster.reset(t1)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with named fields (None values are left out)."""
    logger.log(level, name, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def _ts(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cluster, cycle = _cluster.get(), _cycle.get()
    if cluster is not None:
        out["cluster"] = cluster
    if cycle is not None:
        out["cycle"] = cycle
    out.update(getattr(record, "fields", {}) or {})
    return out


def _text_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    # quoted (and so escaped) when it has a space, a quote, "=" or any control character (a line break, a
    # terminal escape sequence): a value never splits the line nor rewrites what a terminal shows
    return json.dumps(s) if (not s or not s.isprintable() or any(c in s for c in ' "=')) else s


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_ts(record), f"{record.levelname:<5}", " ".join(record.getMessage().split())]
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items()]
        if record.exc_info and record.levelno >= logging.ERROR:
            parts.append(f"error={_text_value(repr(record.exc_info[1]))}")
        return " ".join(parts)


class ShortFormatter(logging.Formatter):
    """``warning: event k=v ...``: one line for a one-off command's terminal (no timestamp)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{record.levelname.lower()}:", " ".join(record.getMessage().split())]
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items()]
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _ts(record), "level": record.levelname.lower(), "logger": record.name,
                               "event": " ".join(record.getMessage().split())}
        for k, v in _fields(record).items():
            out.setdefault(k, v)
        if record.exc_info and record.levelno >= logging.ERROR:
            out["error"] = repr(record.exc_info[1])
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(fmt: str = "text", level: int = logging.INFO, stream: Any = None) -> None:
    """Send the balancer's (and APScheduler's warnings) to ``stream`` (stderr), one line per event."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # overlaps are logged by the service itself
