"""A VM's placement shown to people (`balancer place`): the ranked hosts and those it may not go to, or as JSON."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from ..plan.placement import Placement


def render_placement(p: Placement, console: Console) -> None:
    where = f" (registered on {p.registered_on}, powered off)" if p.registered_on else ""
    # two short lines, so neither wraps mid-phrase in an 80-column terminal
    console.print(f"[bold]Placement of {p.vm}[/bold]{where} in {p.cluster}")
    console.print(f"expected demand {p.load.cpu:.0f} MHz, {p.load.mem:.0f} MB; "
                  f"imbalance now CPU {p.imbalance_before.cpu:.3f}, memory {p.imbalance_before.mem:.3f}")
    if p.hosts:
        notes = []
        for c in p.hosts:
            note = []
            if c.power_on:
                note.append("power on from standby: no host that is on fits")
            if c.should_rules_broken:
                note.append("breaks should-rule " + ", ".join(c.should_rules_broken))
            notes.append("; ".join(note))
        t = Table(title="Hosts, best first", show_header=True, header_style="bold")
        columns = [("rank", "right"), ("host", "left"), ("CPU", "right"), ("memory", "right"),
                   ("imbalance after (CPU / memory)", "right")]
        if any(notes):  # the note column only when a host has one
            columns.append(("note", "left"))
        for col, just in columns:
            t.add_column(col, justify=just)
        for c, note in zip(p.hosts, notes):
            row = [str(c.rank), c.host, f"{100 * c.cpu_before:.0f} % → {100 * c.cpu_after:.0f} %",
                   f"{100 * c.mem_before:.0f} % → {100 * c.mem_after:.0f} %",
                   f"{c.imbalance_after.cpu:.3f} / {c.imbalance_after.mem:.3f}"]
            t.add_row(*(row + [note] if any(notes) else row))
        console.print(t)
    else:
        console.print(f"[bold red]impossible:[/bold red] {p.why_not}")
    if p.disks and p.hosts:
        t = Table(title="Disks", show_header=True, header_style="bold")
        for col, just in (("disk", "left"), ("GB", "right"), ("datastore", "left"), ("note", "left")):
            t.add_column(col, justify=just)
        for d in p.disks:
            note = (f"moved from {d.moved_from}" if d.moved_from else "") + (" thin" if d.thin else "")
            t.add_row(d.disk, f"{d.space_gb:.0f}", d.datastore + (f" ({d.datastore_cluster})" if d.datastore_cluster else ""),
                      note.strip())
        console.print(t)
        t = Table(title="Datastores after", show_header=True, header_style="bold")
        t.add_column("datastore")
        t.add_column("space and latency")
        for s in p.datastores:
            t.add_row(s.datastore, ("[yellow]" + s.reason + "[/yellow]") if s.over_threshold else s.reason)
        console.print(t)
        if p.rejected_datastores:
            t = Table(title="Datastores not chosen", show_header=True, header_style="bold")
            t.add_column("datastore")
            t.add_column("why not")
            for r in p.rejected_datastores:
                t.add_row(r.datastore, r.why)
            console.print(t)
    if p.rejected:
        t = Table(title="Hosts it may not go to", show_header=True, header_style="bold")
        t.add_column("host")
        t.add_column("why not")
        for r in p.rejected:
            t.add_row(r.host, r.why)
        console.print(t)


def placement_json(p: Placement) -> str:
    return json.dumps(p.to_json_dict(), indent=2) + "\n"


__all__ = ["placement_json", "render_placement"]
