"""The "largest disk off the fullest datastore" heuristic: the bound the space stage is held to.

Repeatedly, the largest unit wholly on the fullest datastore in service (of a VM Storage DRS may
move on its own) that fits on another datastore goes to the datastore least utilised after the
move that it may go to: the same mounts, pools, storage rules and space threshold as the
planner's own moves, a target at least ``min_space_difference`` less utilised than the source
(``min_difference``) and, with ``io_balancing``, none above the latency threshold. A unit that
fits nowhere when it is tried is not tried again.

The space stage (select.py) never leaves the fullest datastore fuller than this heuristic would
with as many moves; benchmarks/storage.py compares the planner against it.
"""

from __future__ import annotations

import numpy as np

from ..words import pct
from .layout import EPS, Layout, units_on


def fullest(lay: Layout) -> float:
    """The space utilisation of the fullest datastore in service."""
    p = lay.pool
    ok = lay.in_service()
    util = np.where(ok, lay.used / p.cap, -np.inf)
    return float(util.max()) if ok.any() else 0.0


def largest_first(lay: Layout, n_moves: int, min_difference: bool = True) -> list[float]:
    """Up to ``n_moves`` of the heuristic's moves on ``lay`` (its steps, reason space). Returns the
    fullest datastore's utilisation before the first move and after each one (shorter than
    ``n_moves + 1`` when no unit moves any more)."""
    p = lay.pool
    units = lay.rules.units
    st = lay.settings
    hot = st.io & (p.latency > st.latency)
    stuck: set[int] = set()
    out = [fullest(lay)]
    while len(out) <= n_moves:
        moved = False
        ok = lay.in_service()
        for d in sorted((d for d in range(p.n_datastores) if ok[d]), key=lambda d: (-lay.util(d), d)):
            mask = ~hot
            if min_difference:
                mask = mask & (lay.used / p.cap <= lay.util(d) - st.min_difference[d] + EPS)
            start = lay.util(d)
            for u in sorted((u for u in units_on(lay, d) if u not in stuck),
                            key=lambda u: (-float(p.disk_space[units[u].disks].sum()), u)):
                target, _ = lay.place(u, extra=mask)
                if target is None:
                    stuck.add(u)
                    continue
                if start > st.threshold[d] + EPS:
                    detail = f"{p.ds_names[d]} at {pct(start)} is above the {st.threshold_words(d)} space threshold"
                else:
                    detail = f"{p.ds_names[d]} at {pct(start)} is the fullest datastore"
                lay.move(u, target, "space", detail)
                moved = True
                break
            if moved:
                break
        if not moved:
            break
        out.append(fullest(lay))
    return out
