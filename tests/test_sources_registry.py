"""The source registry: a toy in-memory source, registered with one line, is recommended for and applied
to through the real commands; every registered kind's declared abilities hold (docs/sources.md)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import yaml
from click.testing import CliRunner

from balancer.cli import cli
from balancer.config import parse_config
from balancer.errors import InputError
from balancer.checks.premise import move_premise
from balancer.plan.result import action_result
from balancer.plan import Move
from balancer.snapshot import SNAPSHOT_VERSION, VM, Host, Snapshot
from balancer.sources.abilities import (ABILITIES, CanCollect, CanExecute, CanHook, CanPowerOnVM, CanReportTasks,
                                        has, undeclared)
from balancer.sources.plan_runner import Limits, run_plan
from balancer.sources.registry import SOURCES, SourceKind, kind_of, register

# --- the toy source: what a package under balancer/sources/ would hold ----------------------------
# The cluster itself lives outside the balancer (as a real one does): a placement every opened source reads.
CLUSTER: dict[str, str] = {}
HOSTS = ("h1", "h2", "h3")


class ToySource:
    """Three hosts, six VMs; moves are made at once. Collects, executes, offers the execution hooks."""

    abilities = frozenset({CanCollect, CanExecute, CanHook})

    def __init__(self, name: str):
        self.name = name

    def snapshot(self) -> Snapshot:
        hosts = [Host(name=h, cpu_capacity_mhz=10_000.0, mem_capacity_mb=65_536.0) for h in HOSTS]
        vms = [VM(name=v, host=h, vcpus=2, mem_mb=4096.0, cpu_demand_mhz=1500.0, mem_demand_mb=3000.0)
               for v, h in sorted(CLUSTER.items())]
        return Snapshot(version=SNAPSHOT_VERSION, cluster=self.name, collected_at=datetime.now(timezone.utc),
                        source="toy", hosts=hosts, vms=vms)

    def execute(self, plan):
        return run_plan(plan, self._carry_out, Limits(threads=False), lambda: self.should_stop())

    def _carry_out(self, action):
        why = move_premise(self.snapshot(), action) if isinstance(action, Move) else "toy hosts stay on"
        if why:
            res = action_result(action, "skipped", why)
        else:
            self.before_action(action)
            CLUSTER[action.vm] = action.target
            res = action_result(action, "success")
        self.after_action(action, res)
        return res

    def execution_hooks(self):
        return self

    def before_action(self, action) -> None: ...

    def after_action(self, action, result) -> None: ...

    def should_stop(self) -> bool:
        return False

    def close(self) -> None: ...


SOURCE = ToySource


def open(config):  # noqa: A001 - the kind's contract
    return ToySource(config.sim.cluster)


# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def toy():
    """The toy registered (its registry line), the cluster skewed: every VM on h1."""
    CLUSTER.clear()
    CLUSTER.update({f"vm{i}": "h1" for i in range(6)})
    register(SourceKind("toy", __name__, "sim", section_required=False))
    try:
        yield
    finally:
        SOURCES.pop("toy", None)


def test_a_registered_toy_is_recommended_for_and_applied_to(toy, tmp_path):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(yaml.safe_dump({"source": "toy", "sim": {"cluster": "toy-1"},
                                   "journal": {"path": str(tmp_path / "journal.db")}}))
    runner = CliRunner()
    r = runner.invoke(cli, ["recommend", "--config", str(cfg), "--format", "json", "--time-limit", "1s",
                            "--out", str(tmp_path / "p.json")])
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "p.json").read_text())
    assert plan["cluster"] == "toy-1" and plan["moves"]
    r = runner.invoke(cli, ["apply", str(tmp_path / "p.json"), "--config", str(cfg), "--format", "json"])
    assert r.exit_code == 0, r.output
    results = json.loads(r.stdout)
    assert [x["outcome"] for x in results] == ["success"] * len(plan["moves"])
    assert {CLUSTER[m["vm"]] for m in plan["moves"]} <= {"h2", "h3"}
    assert len(set(CLUSTER.values())) > 1
    r = runner.invoke(cli, ["history", "--config", str(cfg), "--format", "json"])
    assert r.exit_code == 0, r.output


def test_the_config_takes_a_registered_source_and_names_them_all_otherwise(toy):
    cfg = parse_config({"source": "toy"})
    assert kind_of(cfg).name == "toy" and not kind_of(cfg).simulated
    with pytest.raises(InputError, match=r"source: Input should be 'sim', 'vcenter' or 'toy' \(got \"nope\"\)"):
        parse_config({"source": "nope"})


def test_without_the_line_the_source_is_unknown():
    with pytest.raises(InputError, match=r"^config: source: Input should be 'sim' or 'vcenter' \(got \"toy\"\)$"):
        parse_config({"source": "toy"})


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_kind_has_what_it_declares(name):
    kind = SOURCES[name]
    assert kind.abilities <= set(ABILITIES)
    assert undeclared(kind.code().SOURCE) == []
    assert callable(kind.code().open)


def test_has_asks_the_declaration_not_the_methods():
    class Quiet(ToySource):
        def recent_tasks(self):  # has the method, does not declare it
            return []

    class Telling(ToySource):
        abilities = ToySource.abilities | {CanReportTasks}

        def recent_tasks(self):
            return []

    assert not has(Quiet("q"), CanReportTasks) and has(Telling("t"), CanReportTasks)
    assert has(Telling("t"), CanCollect) and not has(Telling("t"), CanPowerOnVM)
    assert undeclared(type("Liar", (ToySource,), {"abilities": frozenset({CanReportTasks})})) == ["CanReportTasks"]
