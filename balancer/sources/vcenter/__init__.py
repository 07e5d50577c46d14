"""The vCenter backend: read one cluster into a Snapshot, carry out plans with vMotion and host power calls.

Modules: ``source`` (``VCenterSource``, the source class), ``connection`` (session, TLS, credentials,
re-login), ``inventory`` (bulk PropertyCollector reads), ``collector`` (vCenter objects -> Snapshot), ``executor`` (plan actions -> vCenter tasks),
``tasks`` (the tasks vCenter is still running, for the actions a restart finds unfinished).
See docs/vcenter.md.

The package imports nothing itself, so that ``kind`` (what `check-config` reads) comes without pyVmomi,
the engine or the models; ``VCenterSource`` is imported from ``source`` when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .source import VCenterSource


def __getattr__(name: str):
    if name == "VCenterSource":
        from .source import VCenterSource

        return VCenterSource
    raise AttributeError(name)


__all__ = ["VCenterSource"]
