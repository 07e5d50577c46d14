"""The kinds of cluster source, one registry line each.

A kind is a package under balancer/sources/ with a module ``kind`` offering:

- ``SOURCE``: the source class (its ``abilities``, sources/abilities.py, say what it can do);
- ``open(config) -> Source``: the source for a single-cluster config;
- optionally ``check(config, where) -> list[str]`` (`check-config`: InputError for what `run` cannot
  start with, warnings otherwise), ``preflight(config)`` (`run`: fail fast on what no retry fixes),
  ``endpoint(config) -> str`` (which management endpoint its cluster is in; clusters of one endpoint
  can exchange VMs), and for a ``simulated`` kind ``attach_state(source, path) -> bool`` and
  ``restore_state(source, path) -> bool`` (its state kept in a file beside the journal).

The line names the kind's facts; its code is imported when first asked. This module imports nothing
else of the balancer, so that the config can validate ``source:`` against it (docs/sources.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from .base import Source


@dataclass(frozen=True)
class SourceKind:
    """A kind of source, as the config and the commands see it."""

    name: str  # the config's ``source:`` value
    module: str  # its ``kind`` module (see above), imported when first needed
    section: str  # the config section holding its settings (``cfg.<section>``, a field of Config and ClusterConfig)
    section_required: bool = True  # False: the section's defaults serve when it is not given
    # The cluster lives in the balancer's process (the embedded simulator): its state is kept in a file
    # beside the journal, one balancer at a time acts on it (the journal's lock), a `clusters:` entry's
    # name names it, and no VM moves between it and a real cluster.
    simulated: bool = False
    words: str = ""  # how the domain check says a cluster is of this kind: "is simulated", "is on vCenter"

    def code(self) -> ModuleType:
        """The kind's module (imported on first use)."""
        return importlib.import_module(self.module)

    def open(self, config: "Config") -> "Source":
        return self.code().open(config)

    @property
    def abilities(self) -> frozenset[type]:
        """What a source of this kind declares it can do."""
        return self.code().SOURCE.abilities

    def settings(self, config: Any) -> Any:
        """The config's section of this kind (None when not given)."""
        return getattr(config, self.section, None)

    def cluster_name(self, config: Any) -> str:
        """The name of the cluster a single-cluster config's section names."""
        return self.settings(config).cluster

    def endpoint(self, config: "Config") -> str:
        """Which endpoint the cluster is in (equal: the same; a kind without ``endpoint``: all in one)."""
        fn = getattr(self.code(), "endpoint", None)
        return fn(config) if fn is not None else self.name

    def check(self, config: "Config", where: str) -> list[str]:
        fn = getattr(self.code(), "check", None)
        return list(fn(config, where)) if fn is not None else []

    def preflight(self, config: "Config") -> None:
        fn = getattr(self.code(), "preflight", None)
        if fn is not None:
            fn(config)


SOURCES: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> SourceKind:
    """Add a kind (a second one of the same name replaces the first)."""
    SOURCES[kind.name] = kind
    return kind


# --- the registry: one line per kind ------------------------------------------------------------
register(SourceKind("sim", "balancer.sources.sim.kind", "sim", section_required=False, simulated=True,
                    words="is simulated"))
register(SourceKind("vcenter", "balancer.sources.vcenter.kind", "vcenter", words="is on vCenter"))


def source_kind(name: str) -> SourceKind:
    """The registered kind ``name`` (the config has validated it)."""
    return SOURCES[name]


def kind_of(config: Any) -> SourceKind:
    """The kind of a single-cluster config's source."""
    return SOURCES[config.source]


def able(ability: type) -> list[str]:
    """The names of the kinds whose sources declare ``ability``."""
    return [k.name for k in SOURCES.values() if ability in k.abilities]


def open_source(config: "Config") -> "Source":
    """The source a single-cluster config names."""
    return kind_of(config).open(config)


__all__ = ["SOURCES", "SourceKind", "able", "kind_of", "open_source", "register", "source_kind"]
