"""Plans as rich terminal tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..plan.result import ActionResult
from .view import ReportView, gain_legend
from ..engine.words import pct
from .datastores import datastore_thin_words
from .words import totals_words


def _num(x: float) -> str:
    return f"{x:.3f}"


def render_view(view: ReportView, console: Console) -> None:
    """Print the plan: imbalance, actions with reasons in words, per-host load, rules, suppressed moves."""
    plan = view.plan
    im = plan.imbalance
    console.print(f"[bold]{view.title}[/bold] (threshold {plan.threshold}, planner {plan.planner})")
    if plan.status != "ok":
        console.print(f"[bold red]status: {plan.status}[/bold red]")
        for c in plan.conflicts:
            console.print(f"  [red]conflict:[/red] {c}")
    summary = Table(show_header=True, header_style="bold")
    summary.add_column("imbalance")
    summary.add_column("before", justify="right")
    summary.add_column("after", justify="right")
    summary.add_row("CPU", _num(im.before.cpu), _num(im.after.cpu))
    summary.add_row("memory", _num(im.before.mem), _num(im.after.mem))
    if im.target is not None:
        summary.add_row("target", _num(im.target), _num(im.target))
    console.print(summary)
    if cost := totals_words(plan.totals):
        console.print(f"Migration cost: {cost}")

    if view.actions:
        t = Table(title="Actions, in order", show_header=True, header_style="bold")
        for col, just in [("step", "right"), ("VM / host", "left"), ("from → to", "left"), ("reason", "left"),
                          ("gain", "right"), ("vMotion", "right")]:
            t.add_column(col, justify=just)
        for a in view.actions:
            gain = f"{a.gain:+.3f}" if a.gain is not None else ""
            vmotion = f"{a.vmotion_s:.0f} s" if a.vmotion_s is not None else ""
            if vmotion and not a.converges:
                vmotion += " (forced)"
            if vmotion and a.kind == "storage":
                vmotion += " copy"
            t.add_row(str(a.step), a.subject, a.change + (f"\n{a.disks}" if a.disks else ""), a.words, gain, vmotion)
        console.print(t)
        if legend := gain_legend(view):
            console.print(legend)
    else:
        console.print("No actions.")

    if view.dpm_end is not None:
        console.print("[bold]DPM end state at this demand[/bold]")
        for line in view.dpm_end.lines:
            console.print(f"  {line}")

    if view.hosts:
        lo, hi = view.dpm_band
        t = Table(title=f"Hosts (DPM band {pct(lo)}–{pct(hi)})" if view.dpm_on else "Hosts", show_header=True,
                  header_style="bold")
        for col, just in [("host", "left"), ("state", "left"), ("VMs", "right"), ("CPU", "right"),
                          ("memory", "right")]:
            t.add_column(col, justify=just)
        for h in view.hosts:
            state = h.state_before if h.state_before == h.state_after else f"{h.state_before} → {h.state_after}"
            t.add_row(h.name, state, f"{h.vms_before} → {h.vms_after}",
                      f"{pct(h.cpu_before)} → {pct(h.cpu_after)}", f"{pct(h.mem_before)} → {pct(h.mem_after)}")
        console.print(t)

    if view.scores is not None:
        sc = view.scores
        t = Table(title=f"VMs served worst (VM score; the cluster's {sc.cluster_before:.0f} → {sc.cluster_after:.0f})",
                  show_header=True, header_style="bold")
        for col, just in [("VM", "left"), ("host", "left"), ("score", "right")]:
            t.add_column(col, justify=just)
        for n, where, a, b in sc.worst:
            t.add_row(n, where, f"{a:.0f} → {b:.0f}")
        console.print(t)

    if view.datastores:
        t = Table(title="Datastores (space used / capacity)", show_header=True, header_style="bold")
        judged = any(d.judged_by for d in view.datastores)
        thin = any(d.overcommit is not None for d in view.datastores)
        for col, just in [("datastore", "left"), ("state", "left"), ("disks", "right"), ("capacity", "right"),
                          ("space", "right"), ("latency", "right")] + ([("provisioned", "right")] if thin else []) \
                + ([("Storage DRS", "left")] if judged else []):
            t.add_column(col, justify=just)
        for d in view.datastores:
            t.add_row(d.name, d.state, _disks(d), f"{d.capacity_gb:,.0f} GB", f"{pct(d.space_before)} → {pct(d.space_after)}",
                      f"{d.latency_ms:.1f} ms" if d.latency_ms is not None else "",
                      *([datastore_thin_words(d)] if thin else []), *([d.judged_by] if judged else []))
        console.print(t)

    if view.pools:
        t = Table(title="Resource pools (demand, what it is entitled to, settings)", show_header=True, header_style="bold")
        for col, just in [("pool", "left"), ("VMs", "right"), ("CPU demand", "right"), ("entitled", "right"),
                          ("CPU settings", "left"), ("memory demand", "right"), ("entitled", "right"),
                          ("memory settings", "left")]:
            t.add_column(col, justify=just)
        for p in view.pools:
            mark = "[yellow]" if p.short else ""
            t.add_row(p.name, str(p.vms), p.cpu_demand, f"{mark}{p.cpu_entitled}", p.cpu_settings, p.mem_demand,
                      f"{mark}{p.mem_entitled}", p.mem_settings)
        console.print(t)

    if view.status:
        t = Table(title="Rules and capacity", show_header=True, header_style="bold")
        for col in ("kind", "name", "found", "after the plan"):
            t.add_column(col)
        colour = {"repaired": "green", "still broken": "red", "holds": "", "disabled": "dim"}
        for r in view.status:
            kind = r.kind + ("" if r.mandatory else " (should)")
            c = colour.get(r.after, "red")
            t.add_row(kind, r.name, r.found, f"[{c}]{r.after}[/]" if c else r.after)
        console.print(t)

    if view.suppressed:
        t = Table(title="Suppressed moves", show_header=True, header_style="bold")
        t.add_column("VM")
        t.add_column("to")
        t.add_column("why not")
        for s in view.suppressed:
            t.add_row(s.vm, s.target, s.words)
        console.print(t)
    for n in plan.notes:
        console.print(f"note: {n}")
    if view.apply_hint:
        console.print(f"Dry run: nothing has been changed. {view.apply_hint}")


def _disks(d) -> str:
    return "" if d.disks_before is None else f"{d.disks_before} → {d.disks_after}"


def render_results(results: list[ActionResult], console: Console) -> None:
    t = Table(title="Executed", show_header=True, header_style="bold")
    for col in ("step", "subject", "action", "outcome", "message"):
        t.add_column(col)
    colour = {"success": "green", "failed": "red", "cancelled": "red", "skipped": "yellow"}
    for r in results:
        t.add_row(str(r.step), r.subject, r.action.replace(" -> ", " → "), f"[{colour[r.outcome]}]{r.outcome}[/]", r.message)
    console.print(t)
