"""Dry-run reports (table, JSON, Markdown, HTML) on a rules-heavy snapshot, with power actions and suppressed moves."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import jsonschema
import pytest

from balancer.engine import PlanOptions, make_plan
from balancer.errors import InputError
from balancer.plan import Plan, PowerAction, parse_plan, plan_schema
from balancer.report import FORMATS, dpm_band, render
from balancer.report.hosts import host_loads
from balancer.report.words import duration, move_words, power_words, size_mb, totals_words
from balancer.snapshot import load_snapshot, parse_snapshot
from helpers import DATA, run_cli
from report_data import RULES, rules_plan, rules_snapshot


@pytest.fixture(scope="module")
def snapshot():
    return rules_snapshot()


@pytest.fixture(scope="module")
def plan(snapshot) -> Plan:
    return rules_plan(snapshot)


def test_the_plan_is_rules_heavy(plan):
    """The fixture exercises what the reports must show: every kind of reason, repaired and still-broken rules."""
    assert {m.reason for m in plan.moves} >= {"evacuate", "rule", "capacity"}
    before = {v.name for v in plan.violations_before}
    after = {v.name for v in plan.violations_after}
    assert {"web-spread", "app-together", "cache-apart", "gpu-on-gpu-hosts", "esx01", "esx04"} <= before - after
    assert "idle-on-spare" in after  # a should-rule for a host in standby cannot hold


def _must_show(plan: Plan) -> list[str]:
    """What every human-readable format must contain."""
    words = [m.vm for m in plan.moves] + [move_words(m) for m in plan.moves]
    words += ["dpm: esx04 to standby, saves ~180 W", "capacity: esx05 powered on; room for esx01's load"]
    words += ["batch-01", "unorderable: no order of moves keeps every step within capacity and rules",
              "cooldown: moved 20 min ago"]
    words += [v.name for v in plan.violations_before] + ["repaired", "still broken"]
    words += ["legacy-off-rack-a", "holds", "old-spread", "disabled"]  # rules that were never broken
    im = plan.imbalance
    words += [f"{im.before.cpu:.3f}", f"{im.after.cpu:.3f}", f"{im.before.mem:.3f}", f"{im.after.mem:.3f}"]
    # what the migrations cost: their predicted time and the data they copy
    words += [duration(plan.totals.vmotion_seconds), size_mb(plan.totals.data_mb)]
    return words


def test_reason_words():
    from balancer.plan import Move

    m = Move(step=1, vm="big-005", source="esx03", target="esx08", reason="balance",
             detail="CPU imbalance 0.101 → 0.071, memory imbalance 0.084 → 0.068")
    assert move_words(m) == "balance: CPU imbalance 0.101 → 0.071, memory imbalance 0.084 → 0.068"
    m = Move(step=1, vm="web-01", source="esx03", target="esx08", reason="rule", rule="web-spread",
             detail="rule web-spread: web-01 and web-02 share esx03")
    assert move_words(m) == "rule web-spread: web-01 and web-02 share esx03"
    assert power_words(PowerAction(step=2, host="esx07", action="standby", saves_w=180)) == \
        "dpm: esx07 to standby, saves ~180 W"
    assert power_words(PowerAction(step=2, host="esx07", action="standby", saves_w=180,
                                   detail="demand 30 % is below the 45–81 % band")) == \
        "dpm: esx07 to standby, saves ~180 W; demand 30 % is below the 45–81 % band"
    assert power_words(PowerAction(step=2, host="esx07", action="power-on", detail="dpm: demand above 81 %")) == \
        "dpm: demand above 81 %"
    assert power_words(PowerAction(step=2, host="esx02", action="enter-maintenance", reason="maintenance")) == \
        "maintenance: esx02 into maintenance"


def test_totals_words():
    from balancer.plan import Totals

    assert duration(42) == "42 s" and duration(125) == "2 min 05 s" and duration(7384) == "2 h 03 min"
    assert size_mb(512) == "512 MB" and size_mb(18425.2) == "18.0 GB" and size_mb(2.5e6) == "2.38 TB"
    assert totals_words(Totals()) == ""
    assert totals_words(Totals(moves=2, vmotion_seconds=125, data_mb=18425.2, mem_mb=16384)) == (
        "2 vMotions, 2 min 05 s predicted one after another, 18.0 GB copied (16.0 GB of configured memory)")


def test_balance_moves_name_each_resource():
    p = make_plan(load_snapshot(DATA / "example-snapshot.json"), PlanOptions(threshold=5, time_limit_s=2))
    balance = [m for m in p.moves if m.reason == "balance"]
    for m in balance:
        assert re.fullmatch(r"CPU imbalance \d\.\d{3} → \d\.\d{3}, memory imbalance \d\.\d{3} → \d\.\d{3}", m.detail)


def test_table(plan, snapshot):
    text = render(plan, snapshot, "table", width=220)
    for word in _must_show(plan):
        assert word in text, word
    for h in snapshot.hosts:
        assert h.name in text
    assert "Hosts (DPM band 45 %–81 %)" in text


def test_markdown(plan, snapshot):
    text = render(plan, snapshot, "markdown")
    for word in _must_show(plan):
        assert word in text, word
    # every table row has as many cells as its header
    for block in re.split(r"\n\n", text):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        if rows:
            widths = {len(re.findall(r"(?<!\\)\|", r)) for r in rows}
            assert len(widths) == 1, block
    assert "| esx05 | standby → on |" in text and "| esx04 | maintenance → standby |" in text


def test_markdown_escapes_table_breakers(plan, snapshot):
    text = render(plan.model_copy(update={"notes": ["a | b *c*"]}), snapshot, "markdown")
    assert r"a \| b \*c\*" in text


def test_json_is_the_plan(plan, snapshot):
    text = render(plan, snapshot, "json")
    data = json.loads(text)
    jsonschema.validate(data, plan_schema())
    assert parse_plan(data) == plan
    assert [p["host"] for p in data["power"]] == ["esx04", "esx05"]


class _Text(HTMLParser):
    """Visible text and tag names of an HTML document."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _parse(html: str) -> _Text:
    p = _Text()
    p.feed(html)
    return p


def test_html(plan, snapshot):
    html = render(plan, snapshot, "html")
    doc = _parse(html)
    text = re.sub(r"\s+", " ", "".join(doc.text))
    for word in _must_show(plan):
        assert word in text, word
    tags = [t for t, _ in doc.tags]
    assert "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    for _, attrs in doc.tags:
        for name in ("src", "href", "xlink:href"):
            assert not attrs.get(name, "#").split("#")[0], (name, attrs)
    csp = [a["content"] for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]
    # the chart: a before and an after bar per host for CPU and memory, and the DPM band on both
    ids = {a["id"] for _, a in doc.tags if "id" in a}
    for i in range(len(snapshot.hosts)):
        assert {f"cpu-before-{i}", f"cpu-after-{i}", f"mem-before-{i}", f"mem-after-{i}"} <= ids
    assert {"cpu-dpm-band", "mem-dpm-band"} <= ids
    assert "DPM band 45–81 %" in text


def test_html_is_deterministic(plan, snapshot):
    assert render(plan, snapshot, "html") == render(plan, snapshot, "html")


def test_html_escapes_cluster_text(plan, snapshot):
    html = render(plan.model_copy(update={"notes": ["<script>alert(1)</script>"]}), snapshot, "html")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_dpm_band_from_config(plan, snapshot):
    assert dpm_band(0.63, 0.18) == pytest.approx((0.45, 0.81))
    html = render(plan, snapshot, "html", dpm_band=dpm_band(0.6, 0.1))
    assert "DPM band 50–70 %" in html


def test_host_loads_follow_moves_and_power(plan, snapshot):
    rows = {h.name: h for h in host_loads(plan, snapshot)}
    assert rows["esx04"].vms_before == 1 and rows["esx04"].vms_after == 0
    assert rows["esx04"].state_after == "standby" and rows["esx05"].state_after == "on"
    assert rows["esx01"].cpu_before > 1.0 > rows["esx01"].cpu_after
    # no load is lost or made up by the moves
    cap = {h.name: h for h in snapshot.hosts}
    total_before = sum(r.cpu_before * cap[n].cpu_capacity_mhz for n, r in rows.items())
    total_after = sum(r.cpu_after * cap[n].cpu_capacity_mhz for n, r in rows.items())
    assert total_before == pytest.approx(total_after)
    assert rows["esx01"].vms_before - rows["esx01"].vms_after == sum(1 for m in plan.moves if m.source == "esx01") \
        - sum(1 for m in plan.moves if m.target == "esx01")


def test_report_refuses_another_snapshot(plan):
    other = json.loads(RULES.read_text())
    other["vms"][0]["cpu_demand_mhz"] += 1
    with pytest.raises(InputError, match="snapshot the plan was made from"):
        render(plan, parse_snapshot(other), "table")


def test_html_needs_the_snapshot(plan):
    with pytest.raises(InputError, match="needs the snapshot"):
        render(plan, None, "html")
    assert "Actions, in order" in render(plan, None, "table")


def test_infeasible_plan_reports_conflicts(snapshot):
    data = json.loads(RULES.read_text())
    data["rules"].append({"name": "all-apart", "type": "vm-anti-affinity",
                          "vms": ["batch-01", "batch-02", "idle-01", "legacy-01", "db-01", "db-02", "web-01"]})
    snap = parse_snapshot(data)
    p = make_plan(snap, PlanOptions(time_limit_s=1))
    assert p.status == "infeasible"
    for fmt in ("table", "markdown", "html"):
        text = render(p, snap, fmt)
        assert "infeasible" in text and "all-apart" in text, fmt


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_cli_formats(fmt, tmp_path):
    out = tmp_path / f"report.{fmt}"
    r = run_cli("recommend", "--snapshot", str(RULES), "--format", fmt, "--time-limit", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert "web-spread" in text and "legacy-01" in text
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    if fmt == "json":
        jsonschema.validate(json.loads(text), plan_schema())


def test_cli_markdown_to_stdout():
    r = run_cli("recommend", "--snapshot", str(RULES), "--format", "markdown", "--time-limit", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Plan for cluster prod-rules") and "## Rules and capacity" in r.stdout


def test_cli_unknown_format_is_one_line():
    r = run_cli("recommend", "--snapshot", str(RULES), "--format", "pdf")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "pdf" in r.stderr


# --- Storage DRS: storage moves and datastores ------------------------------------------------

@pytest.fixture(scope="module")
def storage():
    from report_data import storage_plan, storage_snapshot

    snapshot = storage_snapshot()
    return snapshot, storage_plan(snapshot)


def _disk_words(move) -> str:
    return f"{', '.join(d.disk for d in move.disks)} ({sum(d.size_gb for d in move.disks):.0f} GB)"


def test_storage_moves_and_datastores_in_the_table(storage):
    snapshot, plan = storage
    text = render(plan, snapshot, "table", width=220)
    for m in plan.storage_moves:
        assert m.vm in text and f"{m.disks[0].source} → {m.disks[0].target}" in text and _disk_words(m) in text
        assert f"{m.storage_vmotion.seconds:.0f} s copy" in text and m.detail in text
    host_move = plan.moves[0]
    assert f"{host_move.source} → {host_move.target}, disks {host_move.disks[0].source} → ds-03" in text
    assert "Datastores (space used / capacity)" in text
    # the full datastore loses the disks moved off it, the targets gain them
    from balancer.report.datastores import datastore_changes

    changes = {c.name: c for c in datastore_changes(plan, snapshot)}
    full = plan.storage_moves[0].disks[0].source
    gone = sum(d.size_gb for m in plan.storage_moves for d in m.disks)
    assert changes[full].used_after_gb == pytest.approx(changes[full].used_before_gb - gone, abs=0.01)
    c = changes[full]
    assert f"{100 * c.utilisation_before:.0f} % → {100 * c.utilisation_after:.0f} %" in text
    assert changes["ds-03"].used_after_gb > changes["ds-03"].used_before_gb
    assert sum(c.used_after_gb for c in changes.values()) == pytest.approx(sum(c.used_before_gb for c in changes.values()))


def test_storage_moves_and_datastores_in_markdown(storage):
    snapshot, plan = storage
    md = render(plan, snapshot, "markdown")
    assert "## Datastores" in md
    for d in snapshot.datastores:
        assert re.search(rf"^\| {d.name} \| normal \| \d+ → \d+ \| [\d,]+ GB \| \d+ % → \d+ % \| [\d.]+ ms \|$", md, re.M), d.name
    for m in plan.storage_moves:
        assert f"| {m.step} | {m.vm} | {m.disks[0].source} → {m.disks[0].target}: " in md


def test_storage_moves_and_datastores_in_html(storage):
    snapshot, plan = storage
    html = render(plan, snapshot, "html")
    doc = _parse(html)
    text = re.sub(r"\s+", " ", "".join(doc.text))
    assert "Storage vMotions" in text and "Datastores" in text
    rows = [a for t, a in doc.tags if t == "tr" and a.get("class") == "datastore"]
    assert len(rows) == len(snapshot.datastores)
    assert len([a for t, a in doc.tags if t == "tr" and a.get("class") == "action action-storage"]) == 2
    for m in plan.storage_moves:
        assert _disk_words(m) in text


def test_storage_moves_in_json_follow_the_schema(storage):
    snapshot, plan = storage
    data = json.loads(render(plan, snapshot, "json"))
    jsonschema.validate(data, plan_schema())
    assert [m["vm"] for m in data["storage_moves"]] == [m.vm for m in plan.storage_moves]
    assert data["moves"][0]["disks"][0]["target"] == "ds-03"


def test_the_plan_s_own_datastore_figures_win_over_the_snapshot(storage):
    from balancer.plan import DatastoreChange

    snapshot, plan = storage
    own = [DatastoreChange(name=d.name, capacity_gb=d.capacity_gb, used_before_gb=1.0, used_after_gb=2.0, latency_ms=9.5)
           for d in snapshot.datastores]
    md = render(plan.model_copy(update={"datastores": own}), snapshot, "markdown")
    assert f"| {snapshot.datastores[0].name} | normal |" in md and "9.5 ms" in md
    assert render(plan.model_copy(update={"datastores": own}), None, "markdown").count("9.5 ms") == len(own)


def test_storage_rules_read_in_words():
    from balancer.report.words import rule_words
    from balancer.snapshot import VmDatastoreRule, VmdkRule

    assert rule_words(VmdkRule(name="r", type="vmdk-affinity", vm="db-01")) == "VM db-01: every disk on one datastore"
    assert rule_words(VmdkRule(name="r", type="vmdk-anti-affinity", vm="db-01", disks=["a", "b"])) == \
        "VM db-01: a, b on different datastores"
    assert rule_words(VmDatastoreRule(name="r", type="vm-datastore-anti-affinity", vms=["a", "b"])) == \
        "a, b: disks on different datastores"


def test_counts_in_words():
    from balancer.words import counted

    assert [counted(1, "VM"), counted(2, "VM"), counted(1, "datastore"), counted(0, "datastore")] == \
        ["1 VM", "2 VMs", "1 datastore", "0 datastores"]


def test_html_band_only_with_dpm_headroom_line_and_host_names_under_both_charts(plan, snapshot):
    no_dpm = plan.model_copy(update={"power": [], "dpm_end_state": None,
                                     "moves": [m for m in plan.moves if m.reason != "dpm"]})
    html = render(no_dpm, snapshot, "html", headroom=(0.1, 0.2))
    ids = {a["id"] for _, a in _parse(html).tags if "id" in a}
    assert not {"cpu-dpm-band", "mem-dpm-band"} & ids and "DPM band" not in html
    assert {"cpu-headroom", "mem-headroom"} <= ids
    assert "capacity minus headroom (90 %)" in html and "capacity minus headroom (80 %)" in html
    chart = html[html.index("<svg"):html.index("</svg>")]
    for h in snapshot.hosts:  # tick labels under the CPU chart and under the memory chart
        assert chart.count(f">{h.name}<") == 2, h.name
    ids = {a["id"] for _, a in _parse(render(plan, snapshot, "html")).tags if "id" in a}
    assert {"cpu-dpm-band", "mem-dpm-band"} <= ids  # a DPM plan: the band


def test_reports_say_a_dry_run_and_when(plan, snapshot):
    hint = "To carry it out: balancer apply plan.json."
    html = render(plan, snapshot, "html", generated_at="2025-05-14 09:30:01 UTC", apply_hint=hint)
    text = re.sub(r"\s+", " ", "".join(_parse(html).text))
    assert "Dry run: nothing has been changed." in text and hint in text
    assert "report generated 2025-05-14 09:30:01 UTC" in text
    for fmt in ("table", "markdown"):
        assert "nothing has been changed" in render(plan, snapshot, fmt, apply_hint=hint, width=200)
        assert "nothing has been changed" not in render(plan, snapshot, fmt, width=200)


def test_negative_gains_and_still_broken_rules_are_explained(plan, snapshot):
    moves = list(plan.moves)
    moves[0] = moves[0].model_copy(update={"gain": -0.004})
    text = render(plan.model_copy(update={"moves": moves}), snapshot, "table", width=240)
    assert "a negative gain is the price in balance of a move made for a mandatory reason" in text
    # the should-rule a host in standby cannot hold is listed with why it stays broken
    row = next(line for line in text.splitlines() if "idle-on-spare" in line)
    assert "still broken:" in row
