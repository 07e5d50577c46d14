"""Plans as rich terminal tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..execute import ActionResult
from ..plan import Move, Plan


def _pct(x: float) -> str:
    return f"{x:.3f}"


def render_plan(plan: Plan, console: Console) -> None:
    im = plan.imbalance
    title = f"Plan for cluster {plan.cluster} (threshold {plan.threshold}, planner {plan.planner})"
    console.print(f"[bold]{title}[/bold]")
    if plan.status != "ok":
        console.print(f"[bold red]status: {plan.status}[/bold red]")
        for c in plan.conflicts:
            console.print(f"  [red]conflict:[/red] {c}")
    summary = Table(show_header=True, header_style="bold")
    summary.add_column("imbalance")
    summary.add_column("before", justify="right")
    summary.add_column("after", justify="right")
    summary.add_row("CPU", _pct(im.before.cpu), _pct(im.after.cpu))
    summary.add_row("memory", _pct(im.before.mem), _pct(im.after.mem))
    if im.target is not None:
        summary.add_row("target", _pct(im.target), _pct(im.target))
    console.print(summary)

    if plan.actions:
        t = Table(title="Actions, in order", show_header=True, header_style="bold")
        for col, just in [("step", "right"), ("VM / host", "left"), ("from → to", "left"), ("reason", "left"),
                          ("gain", "right"), ("vMotion", "right"), ("why", "left")]:
            t.add_column(col, justify=just)
        for a in plan.actions:
            if isinstance(a, Move):
                vm_time = f"{a.vmotion.seconds:.0f} s" if a.vmotion else ""
                t.add_row(str(a.step), a.vm, f"{a.source} → {a.target}", a.reason, f"{a.gain:+.3f}", vm_time, a.detail)
            else:
                saves = f", saves ~{a.saves_w:.0f} W" if a.saves_w else ""
                t.add_row(str(a.step), a.host, a.action, a.reason, "", "", a.detail + saves)
        console.print(t)
    else:
        console.print("No actions.")
    if plan.violations_before or plan.violations_after:
        t = Table(title="Rules and capacity", show_header=True, header_style="bold")
        t.add_column("kind")
        t.add_column("name")
        t.add_column("found")
        t.add_column("after the plan")
        after = {(v.kind, v.name) for v in plan.violations_after}
        for v in plan.violations_before:
            kind = v.kind + ("" if v.mandatory else " (should)")
            t.add_row(kind, v.name, v.detail, "still broken" if (v.kind, v.name) in after else "repaired")
        before = {(v.kind, v.name) for v in plan.violations_before}
        for v in plan.violations_after:
            if (v.kind, v.name) not in before:
                t.add_row(v.kind, v.name, "", v.detail)
        console.print(t)
    if plan.suppressed:
        t = Table(title="Suppressed moves", show_header=True, header_style="bold")
        t.add_column("VM")
        t.add_column("to")
        t.add_column("reason")
        t.add_column("detail")
        for s in plan.suppressed:
            t.add_row(s.vm, s.target or "", s.reason, s.detail)
        console.print(t)
    for n in plan.notes:
        console.print(f"note: {n}")


def render_results(results: list[ActionResult], console: Console) -> None:
    t = Table(title="Executed", show_header=True, header_style="bold")
    for col in ("step", "subject", "action", "outcome", "message"):
        t.add_column(col)
    colour = {"success": "green", "failed": "red", "skipped": "yellow"}
    for r in results:
        t.add_row(str(r.step), r.subject, r.action, f"[{colour[r.outcome]}]{r.outcome}[/]", r.message)
    console.print(t)
