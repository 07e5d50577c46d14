"""One entry point for every report format: render(plan, snapshot, fmt).

`recommend` and `evacuate` (and anything else that shows a plan) call `render`; the formats are
the keys of FORMATS. JSON is the plan's public format (docs/plan-format.md) and needs no
snapshot; the other formats add per-host before/after utilisation when given the snapshot the
plan was made from (the HTML report requires it, for its charts).
"""

from __future__ import annotations

import io
from typing import Callable

from rich.console import Console

from ..errors import InputError
from ..plan import Plan, plan_json
from ..snapshot import Snapshot
from .view import DEFAULT_DPM_BAND, ReportView, build_view


def _json(plan: Plan, view: Callable[[], ReportView], color: bool, width: int | None) -> str:
    return plan_json(plan)


def _table(plan: Plan, view: Callable[[], ReportView], color: bool, width: int | None) -> str:
    from .table import render_view

    buf = io.StringIO()
    console = Console(file=buf, width=width or 160, force_terminal=color, color_system="auto" if color else None,
                      highlight=False)
    render_view(view(), console)
    return buf.getvalue()


def _markdown(plan: Plan, view: Callable[[], ReportView], color: bool, width: int | None) -> str:
    from .markdown import render_markdown

    return render_markdown(view())


def _html(plan: Plan, view: Callable[[], ReportView], color: bool, width: int | None) -> str:
    from .html import render_html

    v = view()
    if not v.hosts:
        raise InputError("--format html: the report needs the snapshot the plan was made from")
    return render_html(v)


FORMATS: dict[str, Callable[..., str]] = {"table": _table, "json": _json, "markdown": _markdown, "html": _html}


def render(plan: Plan, snapshot: Snapshot | None, fmt: str, *, dpm_band: tuple[float, float] = DEFAULT_DPM_BAND,
           color: bool = False, width: int | None = None, headroom: tuple[float, float] | None = None,
           generated_at: str | None = None, apply_hint: str | None = None) -> str:
    """The plan as text in format `fmt` (table, json, markdown, html).

    `snapshot` must be the one the plan was made from (checked by digest), or None. `dpm_band` is
    (dpm.target - dpm.tolerance, dpm.target + dpm.tolerance). `color` and `width` apply to the
    table only (terminal colours; columns, 160 by default). `headroom` (cpu, mem) draws capacity minus
    headroom on the HTML charts; `generated_at` (text) dates the report, `apply_hint` says it is a dry run
    and how to carry it out (both left out when None: the same plan then gives the same bytes).
    """
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: unknown report format (one of {', '.join(FORMATS)})")
    return FORMATS[fmt](plan, lambda: build_view(plan, snapshot, dpm_band, headroom, generated_at, apply_hint), color, width)


def dpm_band(target: float, tolerance: float) -> tuple[float, float]:
    """DPM's demand/capacity band from the config's dpm.target and dpm.tolerance."""
    return max(0.0, target - tolerance), min(1.0, target + tolerance)
