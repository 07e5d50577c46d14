"""Carry out a plan's actions in order and within limits: the one scheduler every source shares.

A source supplies only ``carry_out(action) -> ActionResult`` (check the action's premise, call the
cluster, wait for it; the ``before_action`` / ``after_action`` hooks are its to call, since only it
knows when the premise was checked) and its limits; ``run_plan`` decides what starts when:

- actions are considered in step order; a power action is a barrier: it starts when every earlier
  action has finished, and nothing after it starts before it has finished;
- a move waits for every earlier action of the same VM and every earlier move *away from* its target
  host (the capacity or rule it needs is freed by that move); moves into the same host, or out of
  the same host, may run together;
- a move of disks waits for every earlier move of disks *away from* a datastore it moves disks to
  (the room it needs is freed by that move);
- at most ``per_host`` host moves in flight per host (source and target both count),
  ``per_datastore`` moves copying disks per datastore (source and target both count) and
  ``per_cluster`` moves in the cluster;
- an action that depends on a failed (or cancelled) one is skipped; after ``max_failures`` failures
  nothing new starts and the rest is skipped;
- an action is in flight until ``carry_out`` returns: a vMotion past its deadline whose cancel
  vCenter does not honour keeps its slot (and its hosts') until vCenter's task ends;
- once ``should_stop()`` answers True (the service is shutting down) nothing new starts either:
  actions in flight finish, the rest is skipped.

Outcomes the runner decides itself (skipped: stopping, too many failures, a failed dependency) come
back in the results without the ``after_action`` hook: the caller records them from the results.
A ``carry_out`` that raises in a worker thread fails its action ("internal error: ..."), it does not
take the plan down; without threads (``Limits.threads`` False) the exception goes to the caller.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Union

from ..plan.result import FAILURES, ActionResult, action_result
from ..plan import Move, Plan, PowerAction, StorageMove

Action = Union[Move, StorageMove, PowerAction]

STOPPING = "not started: the balancer is stopping"


@dataclass(frozen=True)
class Limits:
    """How much of a plan may be in flight at once, and how many failures end it (None: no limit)."""

    per_cluster: int = 1  # moves in flight in the cluster (a power action always runs alone)
    per_host: int | None = None  # host moves in flight per host, source and target both counting
    per_datastore: int | None = None  # moves copying disks in flight per datastore, source and target both counting
    max_failures: int = 3  # after this many failed actions nothing new starts
    threads: bool = True  # False: each action is carried out in the caller's thread, one at a time
                          # (what it raises is the caller's)


def datastores_touched(a: Action) -> set[str]:
    """The datastores a move copies disks from or to (none for a host action or a move without disks)."""
    if isinstance(a, PowerAction):
        return set()
    return {d.source for d in a.disks} | {d.target for d in a.disks}


def dependencies(actions: list[Action]) -> dict[int, list[int]]:
    """For each action (by index), the earlier actions that must have finished before it starts."""
    out: dict[int, list[int]] = {}
    for i, a in enumerate(actions):
        if isinstance(a, PowerAction):
            out[i] = list(range(i))
            continue
        deps = []
        into = {d.target for d in a.disks}
        for j in range(i):
            b = actions[j]
            if isinstance(b, PowerAction) or b.vm == a.vm:
                deps.append(j)
            elif isinstance(a, Move) and isinstance(b, Move) and b.source == a.target:
                deps.append(j)
            elif into & {d.source for d in b.disks}:
                deps.append(j)
        out[i] = deps
    return out


class _InlinePool:
    """A pool of one that carries out each action in the caller's thread when it is submitted; what
    the action raises goes to the caller (as any call in its thread)."""

    def submit(self, fn: Callable[..., ActionResult], *args: Any) -> Future:
        fut: Future = Future()
        fut.set_result(fn(*args))
        return fut

    def __enter__(self) -> "_InlinePool":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run_plan(plan: Plan, carry_out: Callable[[Action], ActionResult], limits: Limits,
             should_stop: Callable[[], bool] = lambda: False) -> list[ActionResult]:
    """Carry out ``plan``'s actions with ``carry_out`` in the order and limits above; one result per
    action, in step order."""
    actions: list[Action] = list(plan.actions)
    if not actions:
        return []
    results: dict[int, ActionResult] = {}
    outcome: dict[int, str] = {}  # index -> outcome, for finished actions
    pending: list[int] = list(range(len(actions)))  # indexes into actions, in step order
    running: dict[Future, int] = {}
    host_flight: dict[str, int] = {}
    ds_flight: dict[str, int] = {}  # moves copying disks from or to each datastore
    failures = 0
    deps = dependencies(actions)
    per_cluster = max(1, limits.per_cluster) if limits.threads else 1
    per_host = limits.per_host if limits.per_host is not None else per_cluster
    per_datastore = limits.per_datastore if limits.per_datastore is not None else per_cluster

    def skip(i: int, message: str) -> None:
        results[i] = action_result(actions[i], "skipped", message)
        outcome[i] = "skipped"

    def blocking_failure(i: int) -> int | None:
        a = actions[i]
        for j in deps[i]:
            if outcome.get(j) not in FAILURES:
                continue
            b = actions[j]
            if not isinstance(a, PowerAction):
                return j
            touched = {b.host} if isinstance(b, PowerAction) else {b.source, b.target}
            if a.host in touched:
                return j
        return None

    def moves_of(a: Action) -> tuple[set[str], set[str]]:
        return ({a.source, a.target} if isinstance(a, Move) else set()), datastores_touched(a)

    pool_of = (lambda: ThreadPoolExecutor(max_workers=per_cluster, thread_name_prefix="vmotion")) \
        if limits.threads else _InlinePool
    with pool_of() as pool:
        while pending or running:
            if pending and should_stop():
                for i in pending:
                    skip(i, STOPPING)
                pending = []
            if failures >= limits.max_failures and pending:
                for i in pending:
                    skip(i, f"not started: {failures} actions failed (limit {limits.max_failures})")
                pending = []
            for i in list(pending):
                a = actions[i]
                if any(j not in outcome for j in deps[i]):
                    if isinstance(a, PowerAction):
                        break  # nothing after a power action starts before it has finished
                    continue
                failed_dep = blocking_failure(i)
                if failed_dep is not None:
                    skip(i, f"step {actions[failed_dep].step}, which it depends on, failed")
                    pending.remove(i)
                    continue
                if isinstance(a, PowerAction):
                    if running:
                        break
                    running[pool.submit(carry_out, a)] = i
                    pending.remove(i)
                    break
                hosts, stores = moves_of(a)
                if len(running) >= per_cluster or any(host_flight.get(h, 0) >= per_host for h in hosts) \
                        or any(ds_flight.get(d, 0) >= per_datastore for d in stores):
                    continue
                for h in hosts:
                    host_flight[h] = host_flight.get(h, 0) + 1
                for d in stores:
                    ds_flight[d] = ds_flight.get(d, 0) + 1
                running[pool.submit(carry_out, a)] = i
                pending.remove(i)
                if not limits.threads:
                    break  # carried out already: look at should_stop and the failures again first
            if not running:
                if pending:  # cannot happen: the first pending action always has its dependencies done
                    raise AssertionError("plan runner: no action can start")
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                a = actions[i]
                hosts, stores = moves_of(a)
                for h in hosts:
                    host_flight[h] -= 1
                for d in stores:
                    ds_flight[d] -= 1
                try:
                    res = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker bug must not take the plan down
                    res = action_result(a, "failed", f"internal error: {type(exc).__name__}: {exc}")
                results[i] = res
                outcome[i] = res.outcome
                if res.outcome in FAILURES:
                    failures += 1
    return [results[i] for i in range(len(actions))]


__all__ = ["Action", "Limits", "STOPPING", "datastores_touched", "dependencies", "run_plan"]
