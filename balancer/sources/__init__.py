"""Cluster sources: where snapshots come from and where plans are carried out.

``registry`` lists the kinds (one line each), ``abilities`` what a source declares it can do,
``plan_runner`` the order and limits every source carries out a plan in; ``sim/`` and ``vcenter/``
are the kinds. Nothing is imported here eagerly: the config imports the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import ClusterTask, Source
    from .registry import open_source


def __getattr__(name: str) -> Any:
    if name in ("ClusterTask", "Source"):
        from . import base

        return getattr(base, name)
    if name == "open_source":
        from .registry import open_source

        return open_source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClusterTask", "Source", "open_source"]
