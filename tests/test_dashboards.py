"""The Grafana dashboards, provisioning files and Prometheus examples, checked without a server.

Their queries are run against a real Prometheus in tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from balancer.config import DpmConfig

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"

_spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

# The service's metrics (the service issue fixes their names), plus the migration threshold's imbalance target.
METRICS = {
    "balancer_cluster_imbalance", "balancer_cluster_imbalance_target", "balancer_host_utilization_ratio",
    "balancer_host_power_state", "balancer_planned_moves", "balancer_migrations_total",
    "balancer_power_actions_total", "balancer_cycle_duration_seconds", "balancer_cycle_errors_total",
    "balancer_last_cycle_timestamp_seconds", "balancer_moves_suppressed_total",
}
# More of the service's metrics that the dashboards use.
METRICS |= {"balancer_last_success_timestamp_seconds", "balancer_cycles_total", "balancer_planned_power_actions"}
# Storage DRS: the datastores' space, latency, maintenance and the storage moves.
METRICS |= {"balancer_datastore_space_used_ratio", "balancer_datastore_latency_seconds",
            "balancer_datastore_maintenance", "balancer_datastore_capacity_bytes",
            "balancer_datastore_planned_moves", "balancer_datastore_moves_total"}
# #33: over-commitment (provisioned / capacity).
METRICS |= {"balancer_datastore_overcommit_ratio"}
# Balancing domains: each cluster's share in its domain and the moves between clusters.
METRICS |= {"balancer_domain_cluster_utilization_ratio", "balancer_domain_moves_total"}
# Resource pools: demand, entitlement, reservation and limit per pool, and its VMs.
METRICS |= {"balancer_pool_cpu_hertz", "balancer_pool_memory_bytes", "balancer_pool_vms"}
# vSphere 7 (#34): hosts' health (Proactive HA) and network utilisation.
METRICS |= {"balancer_host_health", "balancer_host_network_utilization_ratio"}
# ... and the VM scores: VMs per score bucket, the cluster score.
METRICS |= {"balancer_vm_score", "balancer_cluster_score"}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__field", "__url_time_range"}


def load(name: str) -> dict:
    return json.loads((GRAFANA / "dashboards" / name).read_text())


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    names = set(re.findall(r"\b(balancer_[a-z_]+)", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith("balancer_cycle_duration") else n for n in names}


DASHBOARD_FILES = sorted(generate.DASHBOARDS)


def test_committed_dashboards_are_the_generators_output():
    assert sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json")) == DASHBOARD_FILES
    assert generate.stale() == [], "run: python grafana/generate.py"


def test_generator_check_mode_reports_a_stale_dashboard(tmp_path):
    runner = CliRunner()
    assert runner.invoke(generate.main, ["--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(generate.main, ["--check", "--out", str(tmp_path)]).exit_code == 0
    (tmp_path / "balancer-host.json").write_text("{}")
    result = runner.invoke(generate.main, ["--check", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "balancer-host.json" in result.output


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboard_is_well_formed(name):
    d = load(name)
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "cluster", "host"} <= variables
    occupied: set[tuple[int, int]] = set()
    for p in panels(d):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"{p['title']} overlaps another panel"
        occupied |= cells
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["description"], p["title"]
        assert p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]) and all(t["refId"] for t in p["targets"])
        assert p["fieldConfig"]["defaults"].get("unit") or p["type"] == "state-timeline", f"{p['title']}: no unit"
        for t in p["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", t["expr"]))
            assert used <= variables | BUILTIN_VARIABLES, f"{p['title']}: undefined {used - variables}"
            # (moves between clusters belong to their source cluster; the ones coming in are filtered by target)
            assert 'cluster="$cluster"' in t["expr"] or 'target="$cluster"' in t["expr"], \
                f"{p['title']}: not filtered by cluster"
            assert metric_names(t["expr"]) <= METRICS, f"{p['title']}: unknown metric"


def test_the_dashboards_show_every_metric_of_the_service():
    used = set().union(*(metric_names(e) for name in DASHBOARD_FILES for e in exprs(load(name))))
    assert used == METRICS


def test_host_utilisation_panels_draw_the_dpm_band_and_the_alert_line():
    dpm = DpmConfig()
    band = {round(dpm.target - dpm.tolerance, 2), round(dpm.target + dpm.tolerance, 2)}
    assert band == {0.45, 0.81}
    for name in DASHBOARD_FILES:
        # panels plotting a host's utilisation of one resource
        util = [p for p in panels(load(name)) if p.get("targets")
                and re.match(r'balancer_host_utilization_ratio\{[^}]*resource="', p["targets"][0]["expr"])]
        assert len(util) >= 2, name
        for p in util:
            steps = {s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]}
            assert band | {generate.HOST_HOT} <= steps, f"{name}: {p['title']}"


def test_hot_host_line_is_the_alerts_threshold():
    rules = {r["alert"]: r for g in yaml.safe_load((ROOT / "config" / "alerts.yml").read_text())["groups"]
             for r in g["rules"]}
    assert rules["BalancerHostHot"]["expr"].endswith(f"> {generate.HOST_HOT}")
    assert rules["BalancerHostHot"]["for"] == "15m"
    assert rules["BalancerImbalanceAboveTarget"]["for"] == "30m"


def test_overview_links_each_host_to_its_drill_down():
    d = load("balancer-overview.json")
    links = [link["url"] for p in panels(d) for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", [])]
    assert links and all(f"/d/{generate.HOST_UID}/" in u and "var-host=${__field.labels.host}" in u for u in links)
    assert load("balancer-host.json")["uid"] == generate.HOST_UID


def test_provisioning_matches_the_prometheus_example():
    prometheus = yaml.safe_load((ROOT / "config" / "prometheus.yml").read_text())
    (ds,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "balancer-prometheus.yml").read_text())["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "balancer.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert prometheus["rule_files"] == ["alerts.yml"]
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == "balancer"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9108"]  # metrics.listen's default


def test_datastore_row_draws_the_sdrs_space_threshold():
    from balancer.config import SdrsConfig

    board = load("balancer-overview.json")
    rows = [p["title"] for p in board["panels"] if p.get("type") == "row"]
    assert "Datastores" in rows
    space = next(p for p in panels(board) if p.get("title") == "Datastore space used")
    steps = space["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps][1:] == [SdrsConfig().space_threshold]
    assert "balancer_datastore_space_used_ratio" in space["targets"][0]["expr"]
