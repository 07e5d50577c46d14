"""Plans as Markdown (GitHub-flavoured tables), e.g. for a change ticket or a pull request."""

from __future__ import annotations

import re

from .view import ReportView, gain_legend
from ..engine.words import pct
from .datastores import datastore_thin_words
from .words import totals_words

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md(text: object) -> str:
    """Text safe inside a Markdown table cell: punctuation escaped, no line breaks."""
    return _SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    out = ["| " + " | ".join(header) + " |",
           "| " + " | ".join("---:" if i in right else "---" for i in range(len(header))) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def render_markdown(view: ReportView) -> str:
    plan = view.plan
    im = plan.imbalance
    lines = [f"# {md(view.title)}", ""]
    meta = [f"status **{plan.status}**", f"threshold {plan.threshold}", f"planner {md(plan.planner)}",
            f"snapshot {md(plan.snapshot_digest)}"]
    if plan.collected_at:
        meta.append(f"collected {md(plan.collected_at)}")
    lines += [" · ".join(meta), ""]
    if plan.conflicts:
        lines += ["## Conflicts", ""] + [f"- {md(c)}" for c in plan.conflicts] + [""]

    lines += ["## Imbalance", ""]
    rows = [["CPU", f"{im.before.cpu:.3f}", f"{im.after.cpu:.3f}"],
            ["memory", f"{im.before.mem:.3f}", f"{im.after.mem:.3f}"]]
    if im.target is not None:
        rows.append(["target", f"{im.target:.3f}", f"{im.target:.3f}"])
    lines += _table(["resource", "before", "after"], rows, right={1, 2})
    if cost := totals_words(plan.totals):
        lines += [f"Migration cost: {md(cost)}", ""]

    lines += ["## Actions, in order", ""]
    if view.actions:
        rows = []
        for a in view.actions:
            gain = f"{a.gain:+.3f}" if a.gain is not None else ""
            vmotion = f"{a.vmotion_s:.0f} s" if a.vmotion_s is not None else ""
            downtime = f"{a.downtime_ms:.0f} ms" if a.downtime_ms is not None else ""
            if vmotion and a.kind == "storage":
                vmotion += " copy"
            change = a.change + (f": {a.disks}" if a.disks else "")
            rows.append([str(a.step), md(a.subject), md(change), md(a.words), gain, vmotion, downtime])
        lines += _table(["step", "VM / host", "from → to", "reason", "gain", "vMotion", "downtime"], rows,
                        right={0, 4, 5, 6})
        if legend := gain_legend(view):
            lines += [md(legend), ""]
    else:
        lines += ["No actions.", ""]

    if view.dpm_end is not None:
        lines += ["## DPM end state at this demand", ""] + [f"- {md(x)}" for x in view.dpm_end.lines] + [""]
        if len(view.dpm_end.steps) > 1:
            rows = [[str(s.index), md(s.host or ("now" if s.index == 0 else "power-on")), md(s.when), str(s.hosts_on),
                     pct(s.cpu), pct(s.mem)] for s in view.dpm_end.steps]
            lines += _table(["step", "to standby", "when", "hosts on", "CPU", "memory"], rows, right={0, 3, 4, 5})

    if view.hosts:
        lo, hi = view.dpm_band
        band = f"; DPM's band is {pct(lo)}–{pct(hi)}" if view.dpm_on else ""
        lines += ["## Hosts", "", f"Utilisation is demand / capacity{band}.", ""]
        rows = []
        for h in view.hosts:
            state = h.state_before if h.state_before == h.state_after else f"{h.state_before} → {h.state_after}"
            rows.append([md(h.name), md(state), f"{h.vms_before} → {h.vms_after}",
                         f"{pct(h.cpu_before)} → {pct(h.cpu_after)}", f"{pct(h.mem_before)} → {pct(h.mem_after)}"])
        lines += _table(["host", "state", "VMs", "CPU", "memory"], rows, right={2, 3, 4})

    if view.scores is not None:
        sc = view.scores
        lines += ["## VMs served worst", "", f"VM score (0–100, docs/vsphere7.md): the cluster's "
                  f"{sc.cluster_before:.0f} → {sc.cluster_after:.0f}.", ""]
        rows = [[md(n), md(where), f"{a:.0f} → {b:.0f}"] for n, where, a, b in sc.worst]
        lines += _table(["VM", "host", "score"], rows, right={2})

    if view.datastores:
        lines += ["## Datastores", "", "Space is used / capacity; latency is the mean I/O latency measured.", ""]
        rows = []
        judged = any(d.judged_by for d in view.datastores)
        thin = any(d.overcommit is not None for d in view.datastores)
        for d in view.datastores:
            disks = "" if d.disks_before is None else f"{d.disks_before} → {d.disks_after}"
            row = [md(d.name), md(d.state), disks, f"{d.capacity_gb:,.0f} GB",
                   f"{pct(d.space_before)} → {pct(d.space_after)}",
                   f"{d.latency_ms:.1f} ms" if d.latency_ms is not None else ""]
            if thin:
                row.append(datastore_thin_words(d))
            if judged:
                row.append(md(d.judged_by))
            rows.append(row)
        head = ["datastore", "state", "disks", "capacity", "space", "latency"]
        lines += _table(head + (["provisioned"] if thin else []) + (["Storage DRS"] if judged else []), rows,
                        right={2, 3, 4, 5, 6} if thin else {2, 3, 4, 5})

    if view.pools:
        lines += ["## Resource pools", "", "Demand of each pool's VMs (those below it too), what they are entitled to, "
                  "and the pool's reservation and limit.", ""]
        rows = [[md(p.name), str(p.vms), p.cpu_demand, p.cpu_entitled + (" (short)" if p.short else ""), md(p.cpu_settings),
                 p.mem_demand, p.mem_entitled, md(p.mem_settings)] for p in view.pools]
        lines += _table(["pool", "VMs", "CPU demand", "entitled", "CPU settings", "memory demand", "entitled",
                         "memory settings"], rows, right={1, 2, 3, 5, 6})

    if view.status:
        lines += ["## Rules and capacity", ""]
        rows = [[md(r.kind + ("" if r.mandatory else " (should)")), md(r.name), md(r.asks), md(r.found), md(r.after)]
                for r in view.status]
        lines += _table(["kind", "name", "asks", "found", "after the plan"], rows)

    if view.suppressed:
        lines += ["## Suppressed moves", ""]
        lines += _table(["VM", "to", "why not"], [[md(s.vm), md(s.target), md(s.words)] for s in view.suppressed])

    if plan.notes:
        lines += ["## Notes", ""] + [f"- {md(n)}" for n in plan.notes] + [""]
    if view.apply_hint:
        lines += [f"**Dry run: nothing has been changed.** {md(view.apply_hint)}", ""]
    return "\n".join(lines)
