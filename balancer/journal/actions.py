"""Carrying out a plan with every action journaled: ``JournaledActions``, shared by the service's cycles
and the one-off commands that act."""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..logs import event
from ..plan import Move, Plan, PowerAction, StorageMove
from ..plan.result import ActionResult, action_words
from ..sources.abilities import CanHook, has
from ..sources.base import Source
from .store import Journal, LeaseLost

log = logging.getLogger("balancer.cycle")  # the service's cycle logs these events (name kept)


class JournaledActions:
    """Carry out a plan's actions with every step journaled (a context manager around ``source.execute``).

    On entry the plan's actions are journaled as pending and the source's hooks are set so each
    action is marked started, gets the id of the cluster's task once the cluster has accepted it
    (vCenter), the time a cancel of that task was requested (past its deadline; the action stays
    started until the task ends), and then its outcome, with a log line each; assign what
    ``execute`` returns to ``results`` inside the block: on exit, outcomes the source decided
    without the hooks (e.g. skipped) are journaled too. Used by the service's cycles and by the
    one-off commands that act (apply, evacuate --execute), so cooldowns see every move.
    """

    def __init__(self, journal: Journal, source: Source, cluster: str, cycle_id: int, plan: Plan,
                 cluster_time: float | None, should_stop: Callable[[], bool] | None = None,
                 progress: Callable[[bool, str], None] | None = None):
        self.journal, self.source, self.cluster, self.cycle_id = journal, source, cluster, cycle_id
        self.plan, self.cluster_time, self.should_stop = plan, cluster_time, should_stop
        # told of every step's progress: (the cluster answered, what happened) -- the service's health
        self.progress = progress or (lambda reachable, detail: None)
        self.results: list[ActionResult] = []
        self.ids: dict[int, int] = {}
        self._target: Any = None

    def __enter__(self) -> "JournaledActions":
        self.ids = ids = self.journal.add_actions(self.cycle_id, self.cluster, self.plan, self.cluster_time)
        journal, name, cid, progress = self.journal, self.cluster, self.cycle_id, self.progress

        def before(action: Move | StorageMove | PowerAction) -> None:
            if not journal.action_started(ids[action.step]) and journal.epoch is not None:
                # fencing: the lease this plan was made under is no longer this instance's
                event(log, "action refused: this instance no longer holds the leader lease", logging.WARNING,
                      cluster=name, cycle=cid, step=action.step, epoch=journal.epoch)
                raise LeaseLost(f"cluster {name}: action refused: this instance no longer holds the leader "
                                f"lease (epoch {journal.epoch})")
            kind, subject, what = action_words(action)
            event(log, "action start", cluster=name, cycle=cid, step=action.step, kind=kind,
                  subject=subject, action=what, reason=action.reason)
            progress(True, f"step {action.step} started")

        def after(action: Move | StorageMove | PowerAction, result: ActionResult) -> None:
            journal.action_finished(ids[action.step], result)
            progress(True, f"step {action.step} {result.outcome}")
            event(log, "action", logging.INFO if result.done else logging.WARNING,
                  cluster=name, cycle=cid, step=result.step, kind=result.kind, subject=result.subject,
                  action=result.action, reason=result.reason, outcome=result.outcome,
                  message=result.message or None, took_s=result.seconds, predicted_s=_predicted(action))

        def task_started(action: Move | StorageMove | PowerAction, key: str) -> None:
            journal.action_task(ids[action.step], key)
            progress(True, f"step {action.step}: task {key} accepted")

        def cancel_requested(action: Move | StorageMove | PowerAction, message: str) -> None:
            journal.action_cancel_requested(ids[action.step], message)
            kind, subject, what = action_words(action)
            event(log, "action cancel requested", logging.WARNING, cluster=name, cycle=cid, step=action.step,
                  kind=kind, subject=subject, action=what, message=message)
            progress(True, f"step {action.step}: past its deadline, cancel requested")

        def task_polled(action: Move | StorageMove | PowerAction, reachable: bool, detail: str) -> None:
            progress(reachable, f"step {action.step}: {'task ' + detail if reachable else detail}")

        self._target = target = self.source.execution_hooks() if has(self.source, CanHook) else self.source
        target.before_action, target.after_action, target.task_started = before, after, task_started
        target.cancel_requested, target.task_polled = cancel_requested, task_polled
        if self.should_stop is not None:
            target.should_stop = self.should_stop
        return self

    def __exit__(self, *exc: Any) -> None:
        for hook in ("before_action", "after_action", "task_started", "cancel_requested", "task_polled", "should_stop"):
            self._target.__dict__.pop(hook, None)
        for r in self.results:
            if r.step not in self.ids and r.kind == "datastore":  # a datastore action outside the plan (maintenance)
                self.ids[r.step] = self.journal.add_action(self.cycle_id, self.cluster, r.step, r.kind, r.subject,
                                                           r.action, r.reason, self.cluster_time)
            # outcomes the executor decided without calling the hook (e.g. skipped)
            if r.step in self.ids and self.journal.action_finished(self.ids[r.step], r):
                event(log, "action", logging.INFO if r.done else logging.WARNING,
                      cluster=self.cluster, cycle=self.cycle_id, step=r.step, kind=r.kind, subject=r.subject,
                      action=r.action, reason=r.reason, outcome=r.outcome, message=r.message or None)


def _predicted(action: Move | StorageMove | PowerAction) -> float | None:
    """The plan's predicted time of a vMotion or Storage vMotion (None for a host action or without one)."""
    cost = action.vmotion if isinstance(action, Move) else action.storage_vmotion if isinstance(action, StorageMove) else None
    return None if cost is None else cost.seconds


__all__ = ["JournaledActions"]
