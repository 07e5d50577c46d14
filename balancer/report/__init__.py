"""Showing plans to people: terminal tables, JSON, Markdown and self-contained HTML reports.

`render(plan, snapshot, fmt)` is the one entry point; FORMATS lists the formats.
"""

from .render import FORMATS, dpm_band, render

__all__ = ["FORMATS", "dpm_band", "render"]
