"""Plans as one self-contained HTML file: inline CSS and SVG charts, no scripts, no network.

A Content-Security-Policy in the page forbids loading anything, so a report opened from a
ticket or a mail attachment cannot reach out; every name from the cluster is HTML-escaped.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .. import __version__
from .charts import dpm_steps_svg, utilisation_svg
from .datastores import datastore_thin_words
from .view import ReportView, gain_legend
from ..engine.words import pct
from .words import duration, size_mb

_env = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_html(view: ReportView) -> str:
    lo, hi = view.dpm_band
    chart = Markup(utilisation_svg(view.hosts, view.dpm_band if view.dpm_on else None, view.headroom)) if view.hosts else None
    end = view.dpm_end
    dpm_chart = Markup(dpm_steps_svg(end.steps, view.dpm_band)) if end is not None and len(end.steps) > 1 else None
    return _env.get_template("report.html.j2").render(
        view=view, plan=view.plan, chart=chart, dpm_chart=dpm_chart, chart_min_px=40 * len(view.hosts), band_lo=f"{100 * lo:.0f}", band_hi=f"{100 * hi:.0f}", pct=pct, thin_words=datastore_thin_words,
        duration=duration, size_mb=size_mb, version=__version__, gain_legend=gain_legend(view),
    )
