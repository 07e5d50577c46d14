"""The shared plan runner: order, barriers, limits, failure cap, stop -- without any cluster."""

from __future__ import annotations

import threading

from balancer.plan.result import action_result
from balancer.plan import Imbalance, Plan, ResourcePair
from balancer.sources.plan_runner import Limits, run_plan
from helpers import plan_actions


def make_plan(*actions) -> Plan:
    zero = ResourcePair(cpu=0.0, mem=0.0)
    return Plan(cluster="c", snapshot_digest="test", imbalance=Imbalance(before=zero, after=zero),
                **plan_actions(*actions))


class Recorder:
    """carry_out that notes what was in flight when each action started; ``fail``: steps that fail."""

    def __init__(self, fail=()):
        self.fail, self.lock = set(fail), threading.Lock()
        self.flight: set[int] = set()
        self.started: list[tuple[int, frozenset]] = []

    def __call__(self, a):
        with self.lock:
            self.started.append((a.step, frozenset(self.flight)))
            self.flight.add(a.step)
        try:
            return action_result(a, "failed" if a.step in self.fail else "success", "no" if a.step in self.fail else "")
        finally:
            with self.lock:
                self.flight.discard(a.step)


def test_one_at_a_time_in_step_order_without_threads():
    plan = make_plan(("a", "h1", "h2"), ("b", "h3", "h4"), ("h1", "standby"), ("c", "h2", "h3"))
    rec = Recorder()
    results = run_plan(plan, rec, Limits(per_cluster=4, threads=False))
    assert [s for s, _ in rec.started] == [1, 2, 3, 4]
    assert all(not flight for _, flight in rec.started)
    assert [r.outcome for r in results] == ["success"] * 4


def test_a_power_action_runs_alone():
    plan = make_plan(("a", "h1", "h2"), ("b", "h3", "h4"), ("h5", "standby"), ("c", "h6", "h7"), ("d", "h8", "h9"))
    rec = Recorder()
    results = run_plan(plan, rec, Limits(per_cluster=4, per_host=2))
    started = dict(rec.started)
    assert started[3] == frozenset() and 3 not in started[4] | started[5]
    assert [r.step for r in results] == [1, 2, 3, 4, 5]
    assert rec.started.index((3, started[3])) == 2  # after both moves before it, before the ones after it


def test_a_move_depending_on_a_failed_one_is_skipped():
    # step 2 moves into h2, which step 1 frees: it waits for step 1, and is skipped when step 1 failed
    plan = make_plan(("a", "h2", "h3"), ("b", "h1", "h2"), ("c", "h4", "h5"))
    res = run_plan(plan, Recorder(fail={1}), Limits(per_cluster=4))
    assert [r.outcome for r in res] == ["failed", "skipped", "success"]
    assert res[1].message == "step 1, which it depends on, failed"


def test_after_max_failures_the_rest_is_skipped():
    plan = make_plan(*[(f"v{i}", f"h{i}", f"t{i}") for i in range(6)])
    res = run_plan(plan, Recorder(fail={1, 2, 3}), Limits(per_cluster=1, max_failures=3))
    assert [r.outcome for r in res] == ["failed"] * 3 + ["skipped"] * 3
    assert all(r.message == "not started: 3 actions failed (limit 3)" for r in res[3:])


def test_stop_skips_what_has_not_started():
    plan = make_plan(*[(f"v{i}", f"h{i}", f"t{i}") for i in range(4)])
    rec = Recorder()
    res = run_plan(plan, rec, Limits(threads=False), should_stop=lambda: len(rec.started) >= 2)
    assert [r.outcome for r in res] == ["success", "success", "skipped", "skipped"]
    assert res[2].message == "not started: the balancer is stopping"


def test_per_host_limit_holds():
    plan = make_plan(*[(f"v{i}", "h1", f"t{i}") for i in range(6)])
    rec = Recorder()
    run_plan(plan, rec, Limits(per_cluster=6, per_host=2))
    assert all(len(flight) < 2 for _, flight in rec.started)


def test_a_raising_action_fails_in_a_thread():
    plan = make_plan(("a", "h1", "h2"))

    def boom(a):
        raise RuntimeError("bug")

    res = run_plan(plan, boom, Limits())
    assert res[0].outcome == "failed" and res[0].message == "internal error: RuntimeError: bug"
