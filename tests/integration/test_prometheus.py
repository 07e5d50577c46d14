"""The monitoring setup against a real Prometheus scraping a real `balancer run`.

- promtool accepts config/prometheus.yml and config/alerts.yml, and the alerts pass their unit tests;
- Prometheus scrapes the service running on the embedded simulated cluster (automation full, DPM
  automatic, a cycle a second); then every query of every dashboard panel, with the template
  variables set to real label values, returns data, every template variable has values, and every
  alerting rule loads and evaluates.

Needs the `prometheus` and `promtool` binaries (Debian package `prometheus`; tests/run.sh installs
it). Without them the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prometheus_harness import (  # noqa: E402
    ALERT_TESTS,
    ALERTS,
    JOB,
    PROMETHEUS_CONFIG,
    PanelQuery,
    Prometheus,
    PromQLError,
    Service,
    annotation_queries,
    binaries,
    dashboards,
    label_values_query,
    panel_queries,
    query_variables,
    substitute,
)

pytestmark = pytest.mark.integration

WAIT = 45.0  # seconds to wait for data that a running service produces within a few cycles


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    found = binaries()
    if found is None:
        msg = "prometheus and promtool are not installed (Debian package prometheus; tests/run.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def promtool(tools: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tools["promtool"], *args], capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_example_prometheus_config(tools):
    proc = promtool(tools, "check", "config", str(PROMETHEUS_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout + proc.stderr  # it checked config/alerts.yml too


def test_promtool_accepts_the_alert_rules(tools):
    proc = promtool(tools, "check", "rules", str(ALERTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alerts_fire_when_and_only_when_they_should(tools):
    """promtool's rule unit tests (tests/prometheus/alerts-test.yml) over synthetic series."""
    proc = promtool(tools, "test", "rules", str(ALERT_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_unit_test():
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if "alert" in r}
    tested = {t["alertname"] for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
              for t in case.get("alert_rule_test", [])}
    assert alerts and alerts <= tested, f"alerts without a unit test: {sorted(alerts - tested)}"


# --- a real Prometheus scraping a real service ---------------------------------------------------

def service_config(workdir: Path) -> dict:
    """The embedded simulated cluster, acting on everything, a cycle a second; with a second, small
    one in a balancing domain with it (moves between them recommended only), for the domain panels."""
    return {
        "clusters": [
            {"name": "sim-cluster", "sim": {"hosts": 6, "vms": 60, "trace": "20110303", "start": 96,
                                            "steps_per_cycle": 3}},
            {"name": "spare", "sim": {"hosts": 2, "vms": 10, "vm_prefix": "spare-", "steps_per_cycle": 3}},
        ],
        "domains": [{"name": "pair", "clusters": ["sim-cluster", "spare"], "cross_cluster": "manual",
                     "interval": "1s"}],
        "drs": {"automation": "full", "migration_threshold": 4, "interval": "1s", "time_limit": "1s",
                "cooldown": "3s"},
        "dpm": {"automation": "automatic", "power_on_window": "2s", "power_off_window": "4s", "hold_time": "4s"},
        "journal": {"path": str(workdir / "journal.sqlite")},
    }


@dataclass
class Stack:
    prometheus: Prometheus
    service: Service
    data_deadline: float  # until when a query may take to return data


@pytest.fixture(scope="module")
def stack(tools, tmp_path_factory) -> Stack:
    """Prometheus scraping `balancer run` every second, once it has scraped at least three cycles."""
    workdir = tmp_path_factory.mktemp("monitoring")
    service = Service(workdir / "balancer", service_config(workdir))
    prom = None
    try:
        prom = Prometheus(tools["prometheus"], workdir / "prometheus", [service.listen], [ALERTS])
        deadline = time.monotonic() + WAIT
        while not prom.query("changes(balancer_last_cycle_timestamp_seconds[1m]) >= 2"):
            if service.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus saw fewer than three balancer cycles; service log:\n{service.log_tail()}")
            time.sleep(0.5)
        # Counters need two scrapes after their first increment before increase() shows them: give
        # queries until WAIT after this point (a few seconds at least) to return data.
        yield Stack(prom, service, time.monotonic() + WAIT)
    finally:
        if prom is not None:
            prom.stop()
        service.stop()


def wait_for(stack: Stack, expr: str) -> list[dict]:
    """The query's result once it is non-empty, or the last empty one when the wait is over."""
    deadline = max(stack.data_deadline, time.monotonic() + 3)
    while True:
        result = stack.prometheus.query(expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.fixture(scope="module")
def variables(stack) -> dict[str, dict[str, str]]:
    """Per dashboard: each template variable set to the first value its own query yields."""
    out: dict[str, dict[str, str]] = {}
    for name, dashboard in dashboards().items():
        values: dict[str, str] = {"datasource": "prometheus"}
        for var in query_variables(dashboard):
            match, label = label_values_query(var["query"])
            found = stack.prometheus.label_values(label, substitute(match, values) if match else None)
            assert found, f"{name}: template variable ${var['name']} ({var['query']}) has no values"
            values[var["name"]] = sorted(found)[0]
        out[name] = values
    return out


def test_the_service_is_scraped(stack):
    assert [s["value"][1] for s in stack.prometheus.query(f'up{{job="{JOB}"}}')] == ["1"]


def test_every_template_variable_has_values(variables):
    for name, dashboard in dashboards().items():
        assert set(variables[name]) >= {v["name"] for v in dashboard["templating"]["list"]}


# panels whose data the embedded simulated cluster does not make: their query must evaluate, not return data
NO_DATA_ON_THE_SIMULATED_CLUSTER = {
    "balancer-overview: Network utilisation per host [A]": "it has no network traffic model (vCenter reports it)",
}


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: q.id)
def test_panel_query_returns_data(stack, variables, query: PanelQuery):
    expr = substitute(query.expr, variables[query.dashboard])
    if query.id in NO_DATA_ON_THE_SIMULATED_CLUSTER:
        stack.prometheus.query(expr)  # raises PromQLError when it does not evaluate
        return
    result = wait_for(stack, expr)
    assert result, f"{query.id}: no data for\n{expr}\nservice log:\n{stack.service.log_tail()}"


@pytest.mark.parametrize("annotation", annotation_queries(), ids=lambda a: f"{a[0]}: {a[1]}")
def test_annotation_query_evaluates(stack, variables, annotation):
    dashboard, _, expr = annotation
    stack.prometheus.query(substitute(expr, variables[dashboard]))  # raises PromQLError when it does not


def test_every_alert_rule_loads_and_evaluates(stack):
    prometheus = stack.prometheus
    expected = {r.get("alert") or r.get("record") for g in yaml.safe_load(ALERTS.read_text())["groups"]
                for r in g["rules"]}
    deadline = time.monotonic() + WAIT
    while True:
        rules = {r["name"]: r for g in prometheus.rule_groups() for r in g["rules"]}
        evaluated = all(r.get("lastEvaluation", "").startswith("20") for r in rules.values())
        if (set(rules) >= expected and evaluated) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(rules) >= expected
    bad = {name: r.get("lastError") for name, r in rules.items() if r["health"] != "ok"}
    assert not bad, bad
    for name in expected:
        try:
            prometheus.query(rules[name]["query"])
        except PromQLError as exc:
            pytest.fail(f"{name}: {exc}")


def test_down_failing_and_stalled_alerts_stay_quiet_while_the_service_cycles(stack):
    """The down / failing / stalled alerts stay silent while the service cycles."""
    for alert in ("BalancerDown", "BalancerCyclesFailing", "BalancerCyclesStalled"):
        expr = next(r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
                    if r.get("alert") == alert)
        assert stack.prometheus.query(expr) == [], f"{alert} would fire against a healthy service"


@pytest.mark.parametrize("expr", [
    'sum(balancer_cycles_total{status="ok"}) >= 3',
    'sum(balancer_migrations_total{result="success"}) > 0',  # the skewed start and the broken rule
    'sum(balancer_power_actions_total{action="standby",result="success"}) > 0',  # DPM at low load
])
def test_the_service_acts_and_prometheus_sees_it(stack, expr):
    assert wait_for(stack, expr), f"{expr}: not seen\nservice log:\n{stack.service.log_tail()}"
