"""Several clusters in one config: each `clusters:` entry becomes a single-cluster Config.

A config without `clusters:` balances one cluster (its `source`, `sim` / `vcenter`); with
`clusters:`, each entry names its own source and may override keys of the top-level `drs` and
`dpm` sections. The metrics endpoint, the journal and the service settings are shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from .config import Config


def _override(section, overrides: dict, where: str):
    """``section`` with ``overrides`` applied and validated; ValueError naming the bad key."""
    if not overrides:
        return section
    try:
        return type(section).model_validate({**section.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        msg = msg.removeprefix("Value error, ")
        raise ValueError(f"{where}{'.' + loc if loc else ''}: {msg}") from None


def resolve_clusters(cfg: "Config") -> list[tuple[str, "Config"]]:
    """(name, single-cluster Config) pairs, names unique. ValueError on a bad entry."""
    from .config import Config, SimConfig

    if cfg.clusters is None:
        name = cfg.vcenter.cluster if cfg.source == "vcenter" and cfg.vcenter else cfg.sim.cluster
        return [(name, cfg)]
    given = {"source", "sim", "vcenter"} & cfg.model_fields_set
    if given:
        raise ValueError(f"clusters: use either clusters or the top-level {', '.join(sorted(given))}, not both")
    if not cfg.clusters:
        raise ValueError("clusters: the list is empty")
    out: list[tuple[str, Config]] = []
    seen: set[str] = set()
    for i, entry in enumerate(cfg.clusters):
        where = f"clusters[{i}]" + (f" ({entry.name})" if entry.name else "")
        if entry.source == "vcenter":
            if entry.vcenter is None:
                raise ValueError(f"{where}: source is vcenter but there is no vcenter section")
            sim = SimConfig()
            name = entry.name or entry.vcenter.cluster
        else:
            sim = entry.sim or SimConfig()
            if entry.name and "cluster" not in sim.model_fields_set:
                sim = sim.model_copy(update={"cluster": entry.name})
            name = entry.name or sim.cluster
        if name in seen:
            raise ValueError(f"{where}: a second cluster named {name!r} (give each a distinct name)")
        seen.add(name)
        single = Config.model_construct(
            source=entry.source, sim=sim, vcenter=entry.vcenter,
            drs=_override(cfg.drs, entry.drs, f"{where}.drs"),
            dpm=_override(cfg.dpm, entry.dpm, f"{where}.dpm"),
            metrics=cfg.metrics, journal=cfg.journal, service=cfg.service, clusters=None,
        )
        out.append((name, single))
    return out


def select_cluster(cfg: "Config", name: str | None, option: str = "--cluster") -> tuple[str, "Config"]:
    """The (name, single-cluster Config) a one-off command acts on.

    ``name`` None: the config's only cluster; with several, InputError listing their names.
    An unknown name is an InputError naming it (and the names there are).
    """
    from .errors import InputError

    clusters = cfg.cluster_configs()
    names = [n for n, _ in clusters]
    if name is None:
        if len(clusters) == 1:
            return clusters[0]
        raise InputError(f"the config has {len(clusters)} clusters ({', '.join(names)}): choose one with {option} NAME")
    for n, c in clusters:
        if n == name:
            return n, c
    raise InputError(f"{option} {name}: no such cluster in the config (clusters: {', '.join(names)})")
