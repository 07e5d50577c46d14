"""A domain plan as a table, Markdown or JSON (``balancer recommend --domain``)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from ..engine.words import pct as _pct
from ..errors import InputError
from ..plan.domain_plan import DomainPlan, domain_plan_json
from ..words import counted

DOMAIN_FORMATS = ["table", "json", "markdown"]


def _rows(plan: DomainPlan) -> tuple[list[list[str]], list[list[str]]]:
    clusters = [[c.cluster, f"{_pct(c.cpu_before)} → {_pct(c.cpu_after)}", f"{_pct(c.mem_before)} → {_pct(c.mem_after)}",
                 "over" if c.over else ""] for c in plan.clusters]
    # (capacity: the hosts that are on, in standby or in maintenance; docs/domains.md)
    moves = []
    for m in plan.moves:
        disks = (f"copied to {m.datastore} ({m.storage_copy.data_gb:g} GB, {m.storage_copy.seconds:.0f} s)"
                 if m.storage_copy else (f"stay (on {m.datastore})" if m.datastore else "stay"))
        moves.append([str(m.step), m.vm, f"{m.source_cluster}/{m.source}", f"{m.target_cluster}/{m.target}",
                      "yes" if m.cross_vcenter else "", f"{m.vmotion.seconds:.0f} s", disks, m.detail])
    return clusters, moves


CLUSTER_HEAD = ["cluster", "CPU before → after", "memory before → after", ""]
MOVE_HEAD = ["step", "VM", "from", "to", "other vCenter", "vMotion", "disks", "why"]


def _table(plan: DomainPlan, color: bool, width: int | None) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width or 160, force_terminal=color, color_system="auto" if color else None,
                      highlight=False)
    clusters, moves = _rows(plan)
    console.print(f"Domain {plan.domain}: a cluster above {_pct(plan.high)} of its capacity sends VMs to one "
                  f"that stays at or below {_pct(plan.room)}")
    t = Table(*CLUSTER_HEAD, title="clusters: demand / capacity")
    for r in clusters:
        t.add_row(*r)
    console.print(t)
    if moves:
        t = Table(*MOVE_HEAD, title=f"{counted(len(moves), 'move')} between clusters")
        for r in moves:
            t.add_row(*r)
        console.print(t)
    else:
        console.print("No move between clusters.")
    for r in plan.refused:
        console.print(f"  not {r.vm} → {r.target_cluster}: {r.why}")
    for n in plan.notes:
        console.print(f"note: {n}")
    return buf.getvalue()


def _markdown(plan: DomainPlan) -> str:
    clusters, moves = _rows(plan)

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        cells = lambda r: "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"  # noqa: E731
        return [cells(head), "| " + " | ".join("---" for _ in head) + " |", *(cells(r) for r in rows)]

    out = [f"# Domain {plan.domain}", "",
           f"A cluster above {_pct(plan.high)} of its capacity sends VMs to one that stays at or below {_pct(plan.room)}.",
           "", *table(CLUSTER_HEAD, clusters), ""]
    out += [*table(MOVE_HEAD, moves), ""] if moves else ["No move between clusters.", ""]
    out += [f"- not {r.vm} → {r.target_cluster}: {r.why}" for r in plan.refused]
    out += [f"- note: {n}" for n in plan.notes]
    return "\n".join(out).rstrip() + "\n"


def render_domain(plan: DomainPlan, fmt: str, *, color: bool = False, width: int | None = None) -> str:
    if fmt == "json":
        return domain_plan_json(plan)
    if fmt == "table":
        return _table(plan, color, width)
    if fmt == "markdown":
        return _markdown(plan)
    raise InputError(f"--format {fmt}: a domain plan is shown as {', '.join(DOMAIN_FORMATS)}")


__all__ = ["DOMAIN_FORMATS", "render_domain"]
