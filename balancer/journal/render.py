"""`balancer history`: the journal's last cycles, with their plans and actions, as text or JSON."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from .store import Journal
from ..words import counted


def _count(n: int, word: str) -> str:
    """``1 move``, ``3 moves``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def _when(iso: str | None) -> str:
    """An ISO 8601 time of ``history_data`` for the table: ``2025-05-14 09:30:01``."""
    return iso[:19].replace("T", " ") if iso else "-"


def _iso(ts: float | None) -> str | None:
    """A time of the journal as ISO 8601 in UTC, to the millisecond (``2025-05-14T09:30:01.716Z``); None stays None."""
    if ts is None:
        return None
    ms = int(round(ts * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def history_data(journal: Journal, last: int, cluster: str | None = None) -> list[dict[str, Any]]:
    out = []
    cycles = journal.cycles(last, cluster)
    decided: dict[int, list[dict[str, Any]]] = {}  # cycle -> its recommendations a user approved or dismissed
    for name in sorted({c.cluster for c in cycles}):
        for r in journal.recommendations(name, ("approved", "dismissed"), tuple(c.id for c in cycles)):
            decided.setdefault(r.cycle_id, []).append(
                {"id": r.id, "kind": r.kind, "subject": r.subject, "source": r.source, "target": r.target,
                 "decision": r.state, "user": r.decided_by, "at": _iso(r.decided_at), "approve_cycle": r.approve_cycle_id})
    for c in cycles:
        actions = journal.actions(c.id)
        out.append({
            "cycle": c.id, "kind": c.kind, "cluster": c.cluster, "status": c.status, "phase": c.phase, "error": c.error,
            "started_at": _iso(c.started_at), "finished_at": _iso(c.finished_at), "cluster_time": _iso(c.cluster_time),
            "automation": c.automation, "dpm_automation": c.dpm_automation,
            "imbalance_before": None if c.imbalance_cpu is None else {"cpu": c.imbalance_cpu, "mem": c.imbalance_mem},
            "imbalance_after": None if c.imbalance_after_cpu is None else {"cpu": c.imbalance_after_cpu,
                                                                            "mem": c.imbalance_after_mem},
            "planned_moves": c.planned_moves, "planned_power": c.planned_power,
            "planned_storage": c.planned_storage, "note": c.note,
            "actions": [{"step": a.step, "kind": a.kind, "cluster": a.cluster, "subject": a.subject, "source": a.source,
                         "target": a.target,
                         "reason": a.reason, "state": a.state, "message": a.message, "recovered": a.recovered,
                         "task": a.task, "approved_by": a.approved_by}
                        for a in actions],
            "suppressed": journal.suppressed(c.id),
            "decisions": decided.get(c.id, []),
        })
    return out


def render_history(journal: Journal, last: int, console: Console, cluster: str | None = None) -> None:
    cycles = history_data(journal, last, cluster)
    if not cycles:
        console.print("the journal has no cycles yet")
        return
    table = Table(title=f"last {counted(len(cycles), 'cycle')} — {journal.where}", show_lines=False)
    for col in ("cycle", "cluster", "started (UTC)", "cluster time", "status", "imbalance cpu/mem", "planned",
                "carried out", "held back"):
        table.add_column(col)
    for c in cycles:
        before, after = c["imbalance_before"], c["imbalance_after"]
        im = "-" if before is None else f"{before['cpu']:.3f}/{before['mem']:.3f}"
        if after is not None and before is not None and after != before:
            im += f" → {after['cpu']:.3f}/{after['mem']:.3f}"
        outcomes = Counter(a["state"] for a in c["actions"])
        done = ", ".join(f"{n} {s}" for s, n in sorted(outcomes.items())) or "-"
        planned = "-" if c["planned_moves"] is None else _count(c["planned_moves"], "move") + (
            f", {_count(c['planned_power'], 'host action')}" if c["planned_power"] else "") + (  # power, maintenance
            f", {_count(c['planned_storage'], 'storage move')}" if c["planned_storage"] else "")
        held = Counter(s["reason"] for s in c["suppressed"])
        status = c["status"] + (f" ({c['phase']}: {c['error']})" if c["error"] else "")
        if c["kind"] != "cycle":  # a one-off command's actions: `balancer apply` / `evacuate --execute`
            status = f"{c['kind']}: {status}"
        table.add_row(str(c["cycle"]), c["cluster"], _when(c["started_at"]), _when(c["cluster_time"]), status, im,
                      planned, done, ", ".join(f"{n} {r}" for r, n in sorted(held.items())) or "-")
    console.print(table)
    total, moved, last_moved = journal.acted(cluster)
    summary = f"the whole journal: {counted(total, 'cycle')}, {counted(moved, 'action')} carried out successfully"
    if last_moved is not None:
        summary += f", the last in cycle {last_moved}"
        if last_moved < cycles[0]["cycle"]:
            summary += f" (before these; `--last {total}` shows every cycle)"
    console.print(summary)
    acts = [(c, a) for c in cycles for a in c["actions"]]
    if acts:
        t = Table(title="actions")
        for col in ("cycle", "step", "action", "reason", "outcome", "approved by", "message"):
            t.add_column(col)
        for c, a in acts:
            what = (f"move {a['subject']} {a['source']} → {a['target']}" if a["kind"] == "move"
                    else f"Storage vMotion {a['subject']} {a['source']} → {a['target']}" if a["kind"] == "storage"
                    else f"{a['target']} datastore {a['subject']}" if a["kind"] == "datastore"
                    else f"move {a['subject']} {a['cluster']}/{a['source']} → {a['target']}" if a["kind"] == "cross"
                    else f"{a['target']} {a['subject']}")
            outcome = a["state"] + (" (after restart)" if a["recovered"] else "")
            t.add_row(str(c["cycle"]), str(a["step"]), what, a["reason"] or "", outcome, a["approved_by"] or "",
                      a["message"] or "")
        console.print(t)
    decisions = [(c, d) for c in cycles for d in c["decisions"]]
    if decisions:
        t = Table(title="recommendations decided (console, HTTP API)")
        for col in ("cycle", "recommendation", "action", "decision", "by", "at (UTC)", "carried out in"):
            t.add_column(col)
        for c, d in decisions:
            what = (f"{d['kind']} {d['subject']} {d['source']} → {d['target']}" if d["kind"] in ("move", "storage")
                    else f"{d['target']} {d['subject']}")
            t.add_row(str(c["cycle"]), d["id"], what, d["decision"], d["user"] or "", _when(d["at"]),
                      f"cycle {d['approve_cycle']}" if d["approve_cycle"] else "-")
        console.print(t)
    unfinished = journal.unfinished(cluster)
    if unfinished:
        console.print(f"[bold yellow]{counted(len(unfinished), 'action')} unfinished[/] (the service stopped while they ran; "
                      "`balancer run` checks them against the cluster at its next cycle, and leaves those "
                      "vCenter is still carrying out for the cycle after):")
        for a in unfinished:
            console.print(f"  cycle {a.cycle_id} step {a.step}: {a.words.replace(' -> ', ' → ')} ({a.state})")
