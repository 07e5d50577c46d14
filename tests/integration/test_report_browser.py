"""The HTML report in real headless Chromium: opens offline without console errors, charts drawn, tables filled.

Skipped when chromium is missing, except under CI=true, where that fails (tests/run.sh installs it).
"""

from __future__ import annotations

import io
import os

import pytest

from balancer.report import render
from balancer.report.charts import AFTER_COLOUR, BAND_COLOUR
from balancer.report.hosts import host_loads
from chromium import Browser, find_chromium
from report_data import rules_plan, rules_snapshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser_binary() -> str:
    binary = find_chromium()
    problem = None
    if binary is None:
        problem = "chromium is not installed (tests/run.sh installs it with apt-get)"
    else:
        try:
            import websocket  # noqa: F401
        except ImportError:
            problem = "websocket-client is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return binary


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    snapshot = rules_snapshot()
    plan = rules_plan(snapshot)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render(plan, snapshot, "html"), encoding="utf-8")
    return path, plan, host_loads(plan, snapshot)


def load_offline(b: Browser, path) -> None:
    """Open the report file in ``b`` with the network switched off, and wait until it has loaded."""
    for domain in ("Runtime", "Log", "Network", "Page"):
        b.send(f"{domain}.enable")
    b.send("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
           uploadThroughput=-1)
    b.send("Page.navigate", url=path.as_uri())
    b.wait_event("Page.loadEventFired")


@pytest.fixture(scope="module")
def page(browser_binary, report):
    """The report loaded in Chromium with the network switched off; yields (browser, screenshot PNG)."""
    path, _, _ = report
    with Browser(browser_binary) as b:
        load_offline(b, path)
        shot = b.screenshot()
        yield b, shot


def test_no_console_errors_and_no_network(page, report):
    b, _ = page
    path, _, _ = report
    assert b.problems() == []
    assert b.requests() == [path.as_uri()]


def test_charts_are_drawn(page, report):
    b, _ = page
    hosts = report[2]
    svg = b.evaluate("(() => { const r = document.querySelector('#hosts-chart svg').getBoundingClientRect();"
                     " return [r.width, r.height]; })()")
    assert svg[0] > 300 and svg[1] > 150
    # each bar's drawn height, by id; bars of one chart share a scale, so heights follow utilisation
    heights = b.evaluate("""(() => {
        const out = {};
        for (const g of document.querySelectorAll('#hosts-chart g[id]')) {
            const r = g.getBoundingClientRect();
            out[g.id] = [r.width, r.height];
        }
        return out; })()""")
    for res in ("cpu", "mem"):
        band = heights[f"{res}-dpm-band"]
        assert band[0] > 300 and band[1] > 10
        for phase in ("before", "after"):
            values = [getattr(h, f"{res}_{phase}") for h in hosts]
            drawn = [heights[f"{res}-{phase}-{i}"] for i in range(len(hosts))]
            assert all(w > 2 for w, _ in drawn)
            biggest = max(range(len(hosts)), key=values.__getitem__)
            for i, (v, (_, h)) in enumerate(zip(values, drawn)):
                assert h == pytest.approx(drawn[biggest][1] * v / values[biggest], abs=1.5), (res, phase, i)


def test_tables_are_filled(page, report):
    b, _ = page
    _, plan, hosts = report
    rows = b.evaluate("document.querySelectorAll('#actions tbody tr').length")
    assert rows == len(plan.moves) + len(plan.power)
    text = b.evaluate("document.body.innerText")
    assert "dpm: esx04 to standby, saves ~180 W" in text
    for m in plan.moves:
        assert m.vm in text
    assert b.evaluate("document.querySelectorAll('#hosts tbody tr').length") == len(hosts)


def test_screenshot_shows_the_charts(page, tmp_path):
    from PIL import Image

    _, shot = page
    (tmp_path / "report.png").write_bytes(shot)
    img = Image.open(io.BytesIO(shot)).convert("RGB")
    assert img.width >= 1000 and img.height > 1000
    colours = img.getcolors(maxcolors=1 << 24)
    count = {c: n for n, c in colours}

    def near(hex_colour: str, tol: int = 6) -> int:
        r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return sum(n for (cr, cg, cb), n in count.items()
                   if abs(cr - r) <= tol and abs(cg - g) <= tol and abs(cb - b) <= tol)

    assert near(AFTER_COLOUR) > 2000  # the blue "after" bars
    # the DPM band is a pale wash of its colour over white
    r, g, b = (int(BAND_COLOUR[i:i + 2], 16) for i in (1, 3, 5))
    a = 0.13
    wash = "#%02x%02x%02x" % tuple(round(255 * (1 - a) + c * a) for c in (r, g, b))
    assert near(wash, tol=4) > 20000


# --- DPM's end state: hosts on over the steps, with the band ---------------------------------------

@pytest.fixture(scope="module")
def dpm_page(browser_binary, tmp_path_factory):
    """A 16-host cluster at 18 % demand, planned with DPM at the service's pace, in Chromium (offline)."""
    from balancer.engine import PlanOptions, make_plan
    from balancer.engine.options import DpmOptions
    from test_dpm_end_state import cluster

    snapshot = cluster()
    plan = make_plan(snapshot, PlanOptions(dpm=DpmOptions(), time_limit_s=2.0))
    path = tmp_path_factory.mktemp("dpm-report") / "report.html"
    path.write_text(render(plan, snapshot, "html"), encoding="utf-8")
    with Browser(browser_binary) as b:
        load_offline(b, path)
        yield b, plan, path


def test_dpm_end_state_chart_shows_hosts_on_over_the_steps(dpm_page):
    b, plan, path = dpm_page
    assert b.problems() == [] and b.requests() == [path.as_uri()]
    end = plan.dpm_end_state
    drawn = b.evaluate("""(() => {
        const out = {};
        for (const g of document.querySelectorAll('#dpm-end-state g[id]')) {
            const r = g.getBoundingClientRect();
            out[g.id] = [r.width, r.height];
        }
        return out; })()""")
    bars = [drawn[f"dpm-hosts-{i}"] for i in range(len(end.steps))]
    assert f"dpm-hosts-{len(end.steps)}" not in drawn
    # bar heights follow the hosts on: 16 now, one fewer each step, down to the end state
    for st, (w, h) in zip(end.steps, bars):
        assert w > 5 and h == pytest.approx(bars[0][1] * st.hosts_on / end.steps[0].hosts_on, abs=1.5)
    assert drawn["dpm-steps-band"][0] > 300 and drawn["dpm-steps-band"][1] > 10
    assert drawn["dpm-cpu"][0] > 300 and drawn["dpm-mem"][0] > 300
    text = b.evaluate("document.querySelector('#dpm-end-state').innerText")
    assert f"{end.hosts_on} of 16 hosts on at the end state" in text
    assert ", ".join(end.standby_later) in text


def test_datastores_and_storage_moves_are_shown(browser_binary, tmp_path):
    from report_data import storage_plan, storage_snapshot

    snapshot = storage_snapshot()
    plan = storage_plan(snapshot)
    path = tmp_path / "storage.html"
    path.write_text(render(plan, snapshot, "html"), encoding="utf-8")
    with Browser(browser_binary) as b:
        load_offline(b, path)
        assert b.problems() == []
        assert b.evaluate("document.querySelectorAll('#datastores tbody tr').length") == len(snapshot.datastores)
        assert b.evaluate("document.querySelectorAll('#actions tr.action-storage').length") == len(plan.storage_moves)
        cells = b.evaluate("Array.from(document.querySelectorAll('#datastores tbody tr')).map("
                           "r => Array.from(r.cells).map(c => c.innerText))")
        assert [c[0] for c in cells] == [d.name for d in snapshot.datastores]
        full = plan.storage_moves[0].disks[0].source
        row = next(c for c in cells if c[0] == full)
        assert int(row[4].rstrip(" %")) > int(row[5].rstrip(" %"))  # space before > after
        drawn = b.evaluate("document.querySelector('#datastores table').getBoundingClientRect().height")
        assert drawn > 20 * len(snapshot.datastores)
