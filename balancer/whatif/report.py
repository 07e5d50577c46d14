"""A replay's numbers for people: a terminal table (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .replay import ReplayResult

# (key, label, format, what it is) in the order shown
_ROWS = [
    ("overload_minutes", "overload", "{:,.0f} host-min", "CPU demand above capacity"),
    ("hot_minutes", "hot", "{:,.0f} host-min", "CPU demand above 90 % of capacity"),
    ("migrations", "migrations", "{:,}", "successful vMotions"),
    ("migrated_gb", "migrated", "{:,.0f} GiB", "configured memory of the VMs moved"),
    ("vmotion_data_gb", "vMotion data", "{:,.0f} GiB", "sent, by the pre-copy model"),
    ("imbalance_mean", "imbalance, mean", "{:.4f}", "sqrt(cpu_sd² + mem_sd²) per step, over hosts on"),
    ("imbalance_p95", "imbalance, p95", "{:.4f}", "95th percentile over steps"),
    ("host_hours", "host-hours", "{:,.1f}", "powered-on hosts × hours"),
    ("hosts_on_mean", "hosts on, mean", "{:.1f}", "powered-on hosts"),
    ("energy_kwh", "energy", "{:,.1f} kWh", "idle + (peak − idle) × CPU utilisation, per host"),
]


def _fmt(value, fmt: str = "{}") -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return fmt.format(value)


def render_table(result: ReplayResult, console: Console) -> None:
    s = result.scenario
    title = (f"{s['trace']}: {s['hosts']} hosts, {s['vms']} VMs, {s['steps']} steps from sample {s['start']}, "
             f"a cycle every {s['interval_minutes']:g} min — policy {s['policy']}, DPM {s['dpm']}"
             + (f", predictive (history: {', '.join(s['history']) or 'none'}; {s.get('history_vms', 0)} VMs with a past)"
                if s.get("predictive") == "on" else ""))
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it is", style="dim")
    m = result.metrics
    for key, label, fmt, what in _ROWS:
        table.add_row(label, _fmt(m.get(key), fmt), what)
    table.add_row("moves by reason", _fmt(m.get("moves_by_reason", {})), "")
    table.add_row("host power actions", _fmt(m.get("power_actions", {})), "")
    if m.get("failed_actions") or m.get("skipped_actions"):
        table.add_row("failed / skipped actions", f"{m['failed_actions']} / {m['skipped_actions']}", "")
    table.add_row("cycles", f"{result.cycles:,}", f"{len(result.cycle_errors)} failed")
    table.add_row("wall time", f"{result.wall_seconds:.1f} s", f"planning {result.plan_seconds:.1f} s")
    console.print(table)
    if s.get("rows_reused"):
        console.print(f"note: {s['vms']} VMs replay {s['trace_rows']} trace rows: some rows drive several VMs")
    for line in result.cycle_errors[:5]:
        console.print(f"failed cycle: {line}")
