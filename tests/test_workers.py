"""Planning in worker processes (service.workers): the same plans as in the service's own process."""

from __future__ import annotations

import os
from collections import Counter

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.journal import Journal
from balancer.service.workers import PlanPool
from balancer.sources.sim import SimulatedCluster
from helpers import run_cli
from service_helpers import config_of, sim_config, write_config


def test_a_plan_made_in_a_worker_process_is_the_one_made_here():
    pool = PlanPool(2)
    try:
        for seed in (1, 2):
            snap = SimulatedCluster(SimConfig(hosts=6, vms=80, seed=seed)).snapshot()
            options = PlanOptions(planner="greedy", max_moves=6, threshold=4)
            assert pool.plan(snap, options) == make_plan(snap, options)
    finally:
        pool.close()


def test_workers_default_to_the_cores_and_validate(tmp_path):
    cfg = config_of(sim_config(tmp_path))
    assert cfg.service.workers == len(os.sched_getaffinity(0))
    data = sim_config(tmp_path)
    data["service"]["workers"] = 0
    r = run_cli("check-config", str(write_config(tmp_path, data)))
    assert r.returncode == 2 and "service.workers" in r.stderr and r.stderr.count("\n") == 1


def test_clusters_planned_in_worker_processes(tmp_path):
    data = sim_config(tmp_path, drs={"interval": "0.5s"})
    del data["sim"]
    data["service"]["workers"] = 2
    data["clusters"] = [{"name": f"c{i}", "sim": {"hosts": 4, "vms": 40, "seed": i}} for i in range(3)]
    r = run_cli("run", "--config", str(write_config(tmp_path, data)), "--cycles", "2", "--log-format", "json",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '"workers": 2' in r.stderr
    j = Journal(tmp_path / "journal.sqlite")
    try:
        assert Counter(c.cluster for c in j.cycles(20) if c.status == "ok") == {"c0": 2, "c1": 2, "c2": 2}
        assert all(j.plan(c.id) is not None for c in j.cycles(20))
    finally:
        j.close()
