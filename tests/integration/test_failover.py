"""Active/standby on a real PostgreSQL journal: `balancer run` processes, the leader killed with SIGKILL.

The instances share the embedded simulated cluster through its state file (one directory, as
two instances on one machine do); the simulator changes only by the actions carried out, so the
cluster's final placement must be the journal's successful moves played over the starting one.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from balancer.config import SimConfig
from balancer.journal import Journal
from balancer.sources.state import sim_state_path
from balancer.sources.sim import SimulatedCluster
from postgres_harness import PASSWORD, PASSWORD_ENV
from service_helpers import ServiceProcess, scrape, sim_config, value, write_config

pytestmark = pytest.mark.integration

KILLS = 20


def _config(tmp_path: Path, url: str) -> Path:
    data = sim_config(
        tmp_path,
        drs={"interval": "1s", "migration_threshold": 5, "cooldown": "0s", "oscillation_window": "0s",
             "max_moves_per_cycle": 6},
        sim={"action_seconds": 0.15, "steps_per_cycle": 6},
    )
    data["journal"] = {"url": url, "password_env": PASSWORD_ENV, "path": str(tmp_path / "journal.sqlite")}
    data["service"] = {"shutdown_wait": "30s", "failover_after": "1.5s"}
    return write_config(tmp_path, data)


def _is(name: str):
    return lambda e: e.get("event") == name


def _url(proc: ServiceProcess) -> str:
    start = proc.wait_for(_is("service start"), 60)
    return start["metrics"].removesuffix("/metrics")


def _leader_of(procs: list[ServiceProcess], timeout: float = 60.0) -> ServiceProcess:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.proc.poll() is None and any(e.get("event") == "leader: this instance acts now" for e in p.events):
                return p
        time.sleep(0.05)
    raise AssertionError("no instance took the leader lease")


def _journal(url: str) -> Journal:
    return Journal(url=url, password=PASSWORD)


def test_a_standby_never_acts_while_the_leader_lives(tmp_path, pg_url):
    cfg = _config(tmp_path, pg_url)
    a = ServiceProcess(cfg)
    b = None
    try:
        a.wait_for(_is("leader: this instance acts now"))
        b = ServiceProcess(cfg)
        b_url = _url(b)
        first = a.wait_for(_is("cycle end"))
        # the leader's cycles go on (with actions); the standby only watches
        a.wait_for(lambda e: e.get("event") == "cycle end" and e["cycle"] >= first["cycle"] + 4, 60)
        status, body = scrape(b_url, "/healthz")
        health = json.loads(body)
        assert status == 200 and health["role"] == "standby"
        _, text = scrape(b_url)
        assert value(text, "balancer_instance_role", role="standby") == 1.0
        assert value(text, "balancer_instance_role", role="leader") == 0.0
        _, text = scrape(_url(a))
        assert value(text, "balancer_instance_role", role="leader") == 1.0
        assert json.loads(scrape(_url(a), "/healthz")[1])["role"] == "leader"
        assert not [e for e in b.events if e.get("event") in ("cycle start", "action start", "collected")]
        epoch = next(e["epoch"] for e in a.events if e.get("event") == "leader: this instance acts now")
        j = _journal(pg_url)
        try:
            actions = [x for c in j.cycles(1000) for x in j.actions(c.id)]
            assert actions and {x.epoch for x in actions} == {epoch}
            assert {c.epoch for c in j.cycles(1000)} == {epoch}
        finally:
            j.close()
        # a clean stop gives the lease up: the standby takes over
        a.proc.send_signal(15)
        assert a.finish(60) == 0
        b.wait_for(_is("leader: this instance acts now"), 30)
        b.wait_for(_is("action start"), 60)
        assert json.loads(scrape(b_url, "/healthz")[1])["role"] == "leader"
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_failover_after_sigkill_mid_cycle_loses_no_action_and_does_none_twice(tmp_path, pg_url):
    cfg = _config(tmp_path, pg_url)
    procs = [ServiceProcess(cfg), ServiceProcess(cfg)]
    everyone = list(procs)
    kills_mid_action = 0
    try:
        for k in range(KILLS):
            leader = _leader_of(procs)
            # kill it mid-cycle: while its first, second or third action runs, or (no move to make)
            # once its cycle has collected
            try:
                leader.wait_for(lambda e: e.get("event") == "action start" and sum(
                    1 for x in leader.events if x.get("event") == "action start") > k % 3, 20)
                kills_mid_action += 1
            except AssertionError:
                leader.wait_for(_is("collected"), 20)
            leader.kill()  # SIGKILL
            procs.remove(leader)
            new = ServiceProcess(cfg)
            procs.append(new)
            everyone.append(new)
        last = _leader_of(procs)
        # the last leader settles what the killed ones left unfinished at its next collection
        last.wait_for(_is("cycle end"), 60)
        for p in procs:
            p.wait_for(_is("service start"), 60)  # its signal handlers are in place
            p.proc.send_signal(15)
        for p in procs:
            assert p.finish(90) == 0
    finally:
        for p in everyone:
            p.kill()

    assert kills_mid_action >= KILLS // 2, f"only {kills_mid_action} kills came during an action"
    j = _journal(pg_url)
    try:
        counts = j.counts()
        assert not {"pending", "started"} & set(counts), f"actions left unfinished: {counts}"  # none lost
        cycles = j.cycles(100_000)
        actions = sorted((a for c in cycles for a in j.actions(c.id)), key=lambda a: a.id)
        epochs = sorted({c.epoch for c in cycles if c.epoch is not None})
    finally:
        j.close()
    assert len(epochs) >= KILLS + 1 and epochs == sorted(set(epochs))
    # every action was started by one instance at most, and by the one whose lease it was planned under
    leader_epoch = {}
    started: Counter = Counter()
    for p in everyone:
        took = [e for e in p.events if e.get("event") == "leader: this instance acts now"]
        for e in p.events:
            if e.get("event") == "action start":
                started[(e["cycle"], e["step"])] += 1
                assert took, "an instance acted without the lease"
                leader_epoch[(e["cycle"], e["step"])] = took[-1]["epoch"]
    assert started and max(started.values()) == 1, "an action was started twice"
    by_key = {(a.cycle_id, a.step): a for a in actions}
    for key, epoch in leader_epoch.items():
        assert by_key[key].epoch == epoch
    # every action the journal says was carried out, and none other, is in the cluster
    sim = SimulatedCluster(SimConfig(action_seconds=0.15, steps_per_cycle=6))
    placement = {v.name: v.host for v in sim.snapshot().vms}
    for a in actions:
        if a.kind == "move" and a.state == "success":
            assert placement[a.subject] == a.source, f"{a.words}: the VM was not on its source"
            placement[a.subject] = a.target
    state = json.loads(sim_state_path(tmp_path / "journal.sqlite", "sim-cluster").read_text())
    assert {n: v["host"] for n, v in state["vms"].items()} == placement
    states = Counter(a.state for a in actions)
    assert states["success"] >= KILLS // 2, states
    # the actions a killed leader left behind were settled by the next one against the cluster
    assert sum(1 for a in actions if a.recovered) >= KILLS // 2, states
