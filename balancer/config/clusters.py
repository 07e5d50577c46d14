"""Which cluster of a config a one-off command acts on.

A config without `clusters:` balances one cluster; with `clusters:`, each entry becomes a
single-cluster Config (`Config.cluster_configs()`, in config.py).
"""

from __future__ import annotations

from . import Config
from ..errors import InputError


def select_cluster(cfg: Config, name: str | None, option: str = "--cluster") -> tuple[str, Config]:
    """The (name, single-cluster Config) a one-off command acts on.

    ``name`` None: the config's only cluster; with several, InputError listing their names.
    An unknown name is an InputError naming it (and the names there are).
    """
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
