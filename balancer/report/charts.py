"""Per-host utilisation charts for the HTML report: matplotlib drawn to inline SVG.

SVG needs no JavaScript and no network, stays sharp when zoomed or printed, and keeps a report
of a 96-host cluster small. Each bar carries an id (cpu-before-0, mem-after-3, ...; the number is
the host's position in the snapshot) so the chart can be inspected; the DPM band is cpu-dpm-band
and mem-dpm-band. Output is deterministic: the same plan gives the same bytes.
"""

from __future__ import annotations

import io
import re

from .hosts import HostLoad

BEFORE_COLOUR = "#b8bec6"
AFTER_COLOUR = "#2f6db5"
BAND_COLOUR = "#3a9d5d"
HEADROOM_COLOUR = "#c8473d"

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)


def utilisation_svg(hosts: list[HostLoad], dpm_band: tuple[float, float] | None,
                    headroom: tuple[float, float] | None = None) -> str:
    """CPU and memory utilisation per host, before and after the plan, with the DPM band shaded (None: DPM is
    not part of the plan, no band) and capacity minus headroom as a dashed line (cpu-headroom, mem-headroom)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    n = len(hosts)
    width = min(max(11.0, 0.45 * n + 2.0), 40.0)
    with matplotlib.rc_context({"svg.hashsalt": "balancer-report", "svg.fonttype": "none",
                                "font.family": "DejaVu Sans", "font.size": 10}):
        fig = Figure(figsize=(width, 6.4), layout="constrained")
        axes = fig.subplots(2, 1, sharex=True)
        x = list(range(n))
        w = 0.38
        for k, (ax, res, label) in enumerate(((axes[0], "cpu", "CPU"), (axes[1], "mem", "memory"))):
            before = [getattr(h, f"{res}_before") for h in hosts]
            after = [getattr(h, f"{res}_after") for h in hosts]
            if dpm_band is not None:
                lo, hi = dpm_band
                band = ax.axhspan(lo, hi, color=BAND_COLOUR, alpha=0.13, lw=0,
                                  label=f"DPM band {100 * lo:.0f}–{100 * hi:.0f} %")
                band.set_gid(f"{res}-dpm-band")
            if headroom is not None:
                limit = 1.0 - headroom[k]
                line = ax.axhline(limit, color=HEADROOM_COLOUR, lw=1.0, ls="--",
                                  label=f"capacity minus headroom ({100 * limit:.0f} %)")
                line.set_gid(f"{res}-headroom")
            bars_b = ax.bar([i - w / 2 for i in x], before, w, color=BEFORE_COLOUR, label="before")
            bars_a = ax.bar([i + w / 2 for i in x], after, w, color=AFTER_COLOUR, label="after")
            for i, (bb, ba) in enumerate(zip(bars_b, bars_a)):
                bb.set_gid(f"{res}-before-{i}")
                ba.set_gid(f"{res}-after-{i}")
            for i, h in enumerate(hosts):
                if h.state_after != "on":
                    ax.annotate(h.state_after, (i + w / 2, after[i]), xytext=(0, 3), textcoords="offset points",
                                ha="center", va="bottom", fontsize=8, rotation=90 if n > 12 else 0, color="#555")
            top = max([1.0, *before, *after])
            ax.set_ylim(0, top * 1.08)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_ylabel(f"{label} demand / capacity")
            ax.grid(axis="y", color="#dddddd", lw=0.6)
            ax.set_axisbelow(True)
            ax.spines[["top", "right"]].set_visible(False)
            ax.set_title(label, loc="left", fontsize=11, fontweight="bold")
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=4, fontsize=8,
                      frameon=False)
            # host names under both charts (a shared x axis would name them under the last one only)
            ax.set_xticks(x, [h.name for h in hosts], rotation=45 if n > 10 else 0,
                          ha="right" if n > 10 else "center")
            ax.tick_params(axis="x", labelbottom=True)
        buf = io.StringIO()
        # no metadata: no date (deterministic output) and no links to outside vocabularies
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _PROLOGUE.sub("", buf.getvalue(), count=1)


LATER_COLOUR = "#9dbce0"


def dpm_steps_svg(steps: list, dpm_band: tuple[float, float]) -> str:
    """DPM's way to its end state: hosts on at each step (now, this plan's steps, later steps), and the
    cluster's demand / capacity of the hosts on with the DPM band shaded.

    ``steps``: report rows (index, hosts_on, cpu, mem, host, when). Bars are dpm-hosts-0, dpm-hosts-1, ...;
    the utilisation lines dpm-cpu and dpm-mem; the band dpm-steps-band.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    n = len(steps)
    lo, hi = dpm_band
    width = min(max(9.0, 0.45 * n + 2.0), 40.0)
    colour = {"now": BEFORE_COLOUR, "this plan": AFTER_COLOUR, "later": LATER_COLOUR}
    with matplotlib.rc_context({"svg.hashsalt": "balancer-report", "svg.fonttype": "none",
                                "font.family": "DejaVu Sans", "font.size": 10}):
        fig = Figure(figsize=(width, 5.6), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1])
        x = list(range(n))
        bars = top.bar(x, [s.hosts_on for s in steps], 0.6, color=[colour[s.when] for s in steps])
        for i, b in enumerate(bars):
            b.set_gid(f"dpm-hosts-{i}")
        for i, s in enumerate(steps):
            top.annotate(str(s.hosts_on), (i, s.hosts_on), xytext=(0, 2), textcoords="offset points",
                         ha="center", va="bottom", fontsize=8)
        top.set_ylim(0, max(s.hosts_on for s in steps) * 1.15 + 0.5)
        top.yaxis.set_major_locator(MaxNLocator(integer=True))
        top.set_ylabel("hosts on")
        top.set_title("hosts on", loc="left", fontsize=11, fontweight="bold")
        whens = [w for w in ("now", "this plan", "later") if any(s.when == w for s in steps)]
        top.legend(handles=[Patch(color=colour[w], label=w) for w in whens], loc="lower right",
                   bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=3, fontsize=8, frameon=False)
        band = bottom.axhspan(lo, hi, color=BAND_COLOUR, alpha=0.13, lw=0,
                              label=f"DPM band {100 * lo:.0f}–{100 * hi:.0f} %")
        band.set_gid("dpm-steps-band")
        cpu, = bottom.plot(x, [s.cpu for s in steps], marker="o", color=AFTER_COLOUR, label="CPU")
        mem, = bottom.plot(x, [s.mem for s in steps], marker="s", ls="--", color="#c77c1e", label="memory")
        cpu.set_gid("dpm-cpu")
        mem.set_gid("dpm-mem")
        bottom.set_ylim(0, max([1.0, *(s.cpu for s in steps), *(s.mem for s in steps)]) * 1.05)
        bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        bottom.set_ylabel("demand / capacity of the hosts on")
        bottom.set_title("cluster demand", loc="left", fontsize=11, fontweight="bold")
        bottom.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=3, fontsize=8,
                      frameon=False)
        for ax in (top, bottom):
            ax.grid(axis="y", color="#dddddd", lw=0.6)
            ax.set_axisbelow(True)
            ax.spines[["top", "right"]].set_visible(False)
        labels = ["now" if s.index == 0 else (f"−{s.host}" if s.host else "power-on") for s in steps]
        bottom.set_xticks(x, labels, rotation=45 if n > 8 else 0, ha="right" if n > 8 else "center")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _PROLOGUE.sub("", buf.getvalue(), count=1)
