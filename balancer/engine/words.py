"""How the engine's notes and reasons write numbers (the reports write them the same way)."""

from __future__ import annotations


def pct(x: float) -> str:
    """A share as a percentage: 0.634 -> "63 %"."""
    return f"{100 * x:.0f} %"


__all__ = ["pct"]
