"""Prometheus metrics over the real HTTP endpoint: values after cycles, /healthz, TLS and basic auth."""

from __future__ import annotations

import json

import ssl
import urllib.error

import pytest

from balancer.metrics import Metrics
from balancer.plan.result import ActionResult
from balancer.service import CycleResult
from helpers import self_signed_certificate
from service_helpers import Running, config_of, samples, scrape, sim_config, total, value

PASSWORD_ENV = "BALANCER_TEST_METRICS_PASSWORD"


def test_cycles_on_the_embedded_cluster_change_the_metrics(tmp_path):
    cfg = config_of(sim_config(tmp_path, drs={"interval": "0.3s"}))
    svc = Running(cfg)
    try:
        svc.wait_cycles("sim-cluster", 1)
        _, first = scrape(svc.url)
        svc.wait_cycles("sim-cluster", 4)
        status, later = scrape(svc.url)
        health, body = scrape(svc.url, "/healthz")
    finally:
        assert svc.stop() == 0
    assert status == 200 and health == 200 and '"ok"' in body
    c = {"cluster": "sim-cluster"}
    # per-host gauges for every host of the simulator
    for i in range(1, 9):
        host = f"esx{i:02d}"
        for resource in ("cpu", "mem"):
            assert 0.0 < value(later, "balancer_host_utilization_ratio", **c, host=host, resource=resource) < 1.5
        assert value(later, "balancer_host_power_state", **c, host=host, state="on") == 1.0
        assert value(later, "balancer_host_power_state", **c, host=host, state="standby") == 0.0
    # counters grow cycle after cycle
    n1 = value(first, "balancer_cycle_duration_seconds_count", **c, phase="collect")
    n2 = value(later, "balancer_cycle_duration_seconds_count", **c, phase="collect")
    assert n1 >= 1 and n2 >= n1 + 3
    assert total(later, "balancer_migrations_total", **c, result="success") > 0
    assert total(later, "balancer_migrations_total", **c) >= total(first, "balancer_migrations_total", **c)
    assert value(later, "balancer_cycle_errors_total", **c, phase="collect") == 0.0
    assert value(later, "balancer_last_cycle_timestamp_seconds", **c) > \
        value(first, "balancer_last_cycle_timestamp_seconds", **c)
    for resource in ("cpu", "mem"):
        assert value(later, "balancer_cluster_imbalance", **c, resource=resource) >= 0.0
    assert ("balancer_planned_moves", (("cluster", "sim-cluster"),)) in samples(later)
    # the simulator's trace moves on and the balancer acts: the imbalance is not frozen
    assert value(first, "balancer_cluster_imbalance", **c, resource="cpu") != \
        value(later, "balancer_cluster_imbalance", **c, resource="cpu")
    # the cooldown holds moves back, and says so
    assert total(later, "balancer_moves_suppressed_total", **c, reason="cooldown") > 0


def test_healthz_is_degraded_while_the_source_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("BALANCER_TEST_VC_PASSWORD", "secret-password-123")
    data = sim_config(tmp_path, drs={"interval": "0.3s"})
    data["source"] = "vcenter"
    data["vcenter"] = {"host": "127.0.0.1", "port": 9, "protocol": "http", "user": "u",
                       "password_env": "BALANCER_TEST_VC_PASSWORD", "cluster": "C", "timeout": "2s"}
    svc = Running(config_of(data))
    try:
        svc.wait_cycles("C", 2)
        status, body = scrape(svc.url, "/healthz")
        strict, _ = scrape(svc.url, "/healthz?strict")
        _, text = scrape(svc.url)
    finally:
        svc.stop()
    # vCenter down is no reason to restart the balancer (200), but it is degraded, and 503 under ?strict
    assert status == 200 and strict == 503 and "secret-password-123" not in body
    health = json.loads(body)
    assert health["status"] == "degraded" and health["clusters"]["C"].startswith("degraded: source unreachable")
    assert value(text, "balancer_cycle_errors_total", cluster="C", phase="collect") >= 2


def test_health_needs_a_recent_successful_cycle():
    now = [1000.0]
    m = Metrics(clock=lambda: now[0])
    m.add_cluster("a", 10.0)
    assert m.health()[0] == "unhealthy"  # no cycle yet
    m.observe(CycleResult("a", 1, 10.0, status="ok", finished_at=1000.0))
    assert m.health() == ("ok", {"a": "ok"})
    now[0] = 1019.0
    assert m.health()[0] == "ok"
    now[0] = 1021.0  # more than two intervals without a cycle
    state, detail = m.health()
    assert state == "unhealthy" and "no cycle for 21 s" in detail["a"]
    m.observe(CycleResult("a", 2, 10.0, status="error", phase="plan", error="boom", finished_at=1021.0))
    assert m.health() == ("unhealthy", {"a": "unhealthy: last cycle failed: boom"})


def test_health_of_a_long_cycle_follows_its_progress():
    now = [1000.0]
    m = Metrics(clock=lambda: now[0])
    m.add_cluster("a", 10.0)
    m.observe(CycleResult("a", 1, 10.0, status="ok", finished_at=1000.0))
    m.progress("a", True, "cycle started")
    for t in range(1005, 1100, 5):  # a cycle of 100 s whose vMotions make progress: healthy throughout
        now[0] = float(t)
        m.progress("a", True, "step 1: task running")
        assert m.health() == ("ok", {"a": "ok (cycle in progress)"})
    now[0] = 1125.0  # no progress mark for 25 s (two intervals): stuck
    assert m.health()[0] == "unhealthy"
    m.progress("a", False, "step 1: connection refused")  # vCenter went away mid-cycle
    state, detail = m.health()
    assert state == "degraded" and "source unreachable" in detail["a"]
    m.progress("a", True, "step 1: past its deadline, cancel requested")
    assert m.health()[0] == "degraded"
    # the interrupted cycle ends "ok" with failed actions: degraded, not ok
    m.observe(CycleResult("a", 2, 10.0, status="ok", finished_at=1130.0,
                          results=[ActionResult(1, "move", "vm", "h1 -> h2", "failed")] * 3))
    now[0] = 1131.0
    assert m.health() == ("degraded", {"a": "degraded: last cycle: 3 actions failed"})
    m.observe(CycleResult("a", 3, 10.0, status="error", phase="collect", error="vcenter down", finished_at=1140.0,
                          unreachable=True))
    assert m.health() == ("degraded", {"a": "degraded: source unreachable: vcenter down"})
    m.observe(CycleResult("a", 4, 10.0, status="ok", finished_at=1150.0))
    now[0] = 1151.0
    assert m.health() == ("ok", {"a": "ok"})


def test_tls_and_basic_auth_on_the_endpoint(tmp_path, monkeypatch, caplog):
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-scrape")
    data = sim_config(tmp_path, drs={"interval": "0.3s"})
    data["metrics"] = {"listen": "127.0.0.1:0", "tls_cert": str(cert), "tls_key": str(key),
                       "basic_auth": {"user": "prom", "password_env": PASSWORD_ENV}}
    svc = Running(config_of(data))
    try:
        svc.wait_cycles("sim-cluster", 1)
        assert svc.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert))
        assert scrape(svc.url, context=ctx)[0] == 401
        assert scrape(svc.url, auth=("prom", "wrong"), context=ctx)[0] == 401
        status, text = scrape(svc.url, auth=("prom", "s3cret-scrape"), context=ctx)
        assert status == 200 and "balancer_cluster_imbalance" in text
        assert scrape(svc.url, "/healthz", auth=("prom", "s3cret-scrape"), context=ctx)[0] == 200
        with pytest.raises(urllib.error.URLError):  # the certificate is checked by clients
            scrape(svc.url, auth=("prom", "s3cret-scrape"))
    finally:
        svc.stop()
    assert "s3cret-scrape" not in caplog.text


def test_a_missing_scrape_password_is_one_clear_error(tmp_path):
    from helpers import run_cli
    from service_helpers import write_config

    data = sim_config(tmp_path)
    data["metrics"] = {"listen": "127.0.0.1:0", "basic_auth": {"user": "prom", "password_env": "NOT_SET_ANYWHERE_X"}}
    r = run_cli("run", "--once", "--config", str(write_config(tmp_path, data)), cwd=tmp_path)
    assert r.returncode == 2 and "NOT_SET_ANYWHERE_X" in r.stderr and "Traceback" not in r.stderr


def test_an_idle_connection_does_not_block_a_tls_scrape(tmp_path):
    import socket

    from balancer.config import MetricsConfig
    from balancer.metrics import MetricsServer

    cert, key = self_signed_certificate(tmp_path)
    metrics = Metrics()
    metrics.add_cluster("a", 10.0)
    metrics.observe(CycleResult("a", 1, 10.0, status="ok", finished_at=1000.0))
    server = MetricsServer(metrics, MetricsConfig(listen="127.0.0.1:0", tls_cert=cert, tls_key=key))
    host, port = server.url.removeprefix("https://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(2)]  # connected, never says a word
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        status, text = scrape(server.url, context=ctx)
        health, _ = scrape(server.url, "/healthz", context=ctx)
    finally:
        for s in idle:
            s.close()
        server.close()
    assert status == 200 and value(text, "balancer_cycles_total", cluster="a", status="ok") == 1.0
    assert health in (200, 503)


def test_the_last_success_survives_a_restart(tmp_path):
    from prometheus_client import generate_latest

    from balancer.journal import Journal
    from balancer.service import Service

    j = Journal(tmp_path / "journal.sqlite")
    j.end_cycle(j.begin_cycle("sim-cluster"), "ok")
    last = j.last_success("sim-cluster")
    j.close()
    svc = Service(config_of(sim_config(tmp_path)), serve_metrics=False)
    svc.start()  # no cycle has run in this process yet
    try:
        text = generate_latest(svc.metrics.registry).decode()
        exported = value(text, "balancer_last_success_timestamp_seconds", cluster="sim-cluster")
    finally:
        svc.shutdown("test")
    assert exported == last


def test_datastore_metrics_over_the_endpoint(tmp_path):
    cfg = config_of(sim_config(tmp_path, drs={"interval": "0.3s"}, sim={"start": 230}))
    svc = Running(cfg)
    try:
        svc.wait_cycles("sim-cluster", 2)
        status, text = scrape(svc.url)
    finally:
        assert svc.stop() == 0
    assert status == 200
    from balancer.sources.sim import SimulatedCluster

    snap = SimulatedCluster(cfg.sim).snapshot()  # the cluster as it started: space only grows
    c = {"cluster": "sim-cluster"}
    for d in snap.datastores:
        ratio = value(text, "balancer_datastore_space_used_ratio", **c, datastore=d.name)
        assert d.used_gb / d.capacity_gb <= ratio < 1.0
        assert value(text, "balancer_datastore_capacity_bytes", **c, datastore=d.name) == d.capacity_gb * 1024 ** 3
        assert 0.0 < value(text, "balancer_datastore_latency_seconds", **c, datastore=d.name) < 0.015
        assert value(text, "balancer_datastore_maintenance", **c, datastore=d.name) == 0.0
    assert max(value(text, "balancer_datastore_space_used_ratio", **c, datastore=d.name) for d in snap.datastores) > 0.8
    # every reason and result of a storage move is a series from the start
    for reason in ("space", "latency", "rule", "evacuate", "follows-host"):
        for result in ("success", "failed", "skipped"):
            assert ("balancer_datastore_moves_total", tuple(sorted({**c, "reason": reason, "result": result}.items()))) \
                in samples(text)
    assert ("balancer_datastore_planned_moves", (("cluster", "sim-cluster"),)) in samples(text)


def test_storage_moves_count_by_reason_and_result_and_gone_datastores_leave():
    from prometheus_client import generate_latest

    from balancer.config import SimConfig
    from balancer.plan.result import ActionResult
    from balancer.sources.sim import SimulatedCluster

    m = Metrics()
    m.add_cluster("a", 10.0)
    snap = SimulatedCluster(SimConfig(hosts=3, vms=20)).snapshot()
    results = [ActionResult(1, "storage", "web-001", "ds-01 -> ds-02", "success", "space"),
               ActionResult(2, "storage", "web-002", "ds-01 -> ds-03", "skipped", "space", "stale"),
               ActionResult(3, "storage", "db-001", "ds-02 -> ds-04", "success", "evacuate"),
               ActionResult(4, "datastore", "ds-02", "enter-maintenance", "success", "evacuate")]
    m.observe(CycleResult("a", 1, 10.0, snapshot=snap, results=results, finished_at=1.0))
    text = generate_latest(m.registry).decode()
    assert value(text, "balancer_datastore_moves_total", cluster="a", reason="space", result="success") == 1.0
    assert value(text, "balancer_datastore_moves_total", cluster="a", reason="space", result="skipped") == 1.0
    assert value(text, "balancer_datastore_moves_total", cluster="a", reason="evacuate", result="success") == 1.0
    assert total(text, "balancer_migrations_total", cluster="a") == 0.0  # not vMotions
    fewer = snap.model_copy(update={"datastores": snap.datastores[:2]})
    m.observe(CycleResult("a", 2, 10.0, snapshot=fewer, finished_at=2.0))
    text = generate_latest(m.registry).decode()
    names = {dict(ls).get("datastore") for (n, ls) in samples(text) if n == "balancer_datastore_space_used_ratio"}
    assert names == {d.name for d in snap.datastores[:2]}
    over = {dict(ls).get("datastore") for (n, ls) in samples(text) if n == "balancer_datastore_overcommit_ratio"}
    assert over <= names  # (a gone datastore leaves its over-commitment too)


def test_overcommitment_is_provisioned_over_capacity_where_the_source_reports_it():
    from prometheus_client import generate_latest

    from balancer.snapshot import parse_snapshot

    snap = parse_snapshot({"version": 6, "cluster": "a", "hosts": [{"name": "h", "cpu_capacity_mhz": 1000,
                                                                      "mem_capacity_mb": 1000}],
                           "datastores": [{"name": "thin", "capacity_gb": 100, "free_gb": 50, "provisioned_gb": 180},
                                          {"name": "plain", "capacity_gb": 100, "free_gb": 50}], "vms": []})
    m = Metrics()
    m.add_cluster("a", 10.0)
    m.observe(CycleResult("a", 1, 10.0, snapshot=snap, finished_at=1.0))
    text = generate_latest(m.registry).decode()
    assert value(text, "balancer_datastore_overcommit_ratio", cluster="a", datastore="thin") == 1.8
    assert not any(n == "balancer_datastore_overcommit_ratio" and dict(ls).get("datastore") == "plain"
                   for n, ls in samples(text))


def test_pool_metrics_follow_the_plan_and_removed_pools_leave():
    from prometheus_client import generate_latest

    from balancer.config import SimConfig
    from balancer.engine import make_plan
    from balancer.sources.sim import SimulatedCluster

    m = Metrics()
    m.add_cluster("a", 10.0)
    snap = SimulatedCluster(SimConfig(hosts=3, vms=30)).snapshot()
    plan = make_plan(snap)
    m.observe(CycleResult("a", 1, 10.0, snapshot=snap, recommendation=plan, finished_at=1.0))
    text = generate_latest(m.registry).decode()
    test = next(p for p in plan.pools if p.name == "test")
    assert value(text, "balancer_pool_cpu_hertz", cluster="a", pool="test", kind="limit") == test.cpu_limit_mhz * 1e6
    assert value(text, "balancer_pool_cpu_hertz", cluster="a", pool="test", kind="demand") == \
        pytest.approx(test.cpu_demand_mhz * 1e6)
    assert value(text, "balancer_pool_memory_bytes", cluster="a", pool="prod", kind="entitlement") == \
        pytest.approx(next(p for p in plan.pools if p.name == "prod").mem_entitlement_mb * 1024 ** 2)
    assert value(text, "balancer_pool_vms", cluster="a", pool="test") == test.vms > 0
    assert ("balancer_pool_cpu_hertz", (("cluster", "a"), ("kind", "limit"), ("pool", "prod"))) not in samples(text)
    m.observe(CycleResult("a", 2, 10.0, snapshot=snap, recommendation=plan.model_copy(update={"pools": plan.pools[:1]}),
                          finished_at=2.0))
    text = generate_latest(m.registry).decode()
    assert {dict(ls)["pool"] for (n, ls) in samples(text) if n == "balancer_pool_vms"} == {plan.pools[0].name}


def test_vm_scores_are_a_gauge_per_bucket_and_a_cluster_score():
    from prometheus_client import generate_latest

    from balancer.snapshot import parse_snapshot

    def vm(name, host, cpu, **kw):
        return {"name": name, "host": host, "vcpus": 4, "mem_mb": 4096.0, "cpu_demand_mhz": cpu,
                "mem_demand_mb": 1000.0, **kw}

    # a at 90 % CPU: both VMs 81.25 (docs/vsphere7.md); b's VM measured 8 % ready on an idle host: 60
    snap = parse_snapshot({"version": 6, "cluster": "a", "hosts": [
        {"name": "a", "cpu_capacity_mhz": 10000.0, "mem_capacity_mb": 65536.0},
        {"name": "b", "cpu_capacity_mhz": 10000.0, "mem_capacity_mb": 65536.0}],
        "vms": [vm("v1", "a", 4500.0), vm("v2", "a", 4500.0), vm("w", "b", 1000.0, cpu_ready_pct=8.0)]})
    m = Metrics()
    m.add_cluster("a", 10.0)
    m.observe(CycleResult("a", 1, 10.0, snapshot=snap, finished_at=1.0))
    text = generate_latest(m.registry).decode()
    counts = {dict(ls)["bucket"]: v for (n, ls), v in samples(text).items() if n == "balancer_vm_score"}
    assert counts == {"0-20": 0.0, "20-40": 0.0, "40-60": 0.0, "60-80": 1.0, "80-100": 2.0}
    assert value(text, "balancer_cluster_score", cluster="a") == pytest.approx((81.25 * 2 + 60) / 3)
