"""Planning in worker processes: clusters are planned side by side, none waits for another's plan.

The engine is pure (a snapshot, options and history in, a plan out), so a plan can be made in
another process: ``PlanPool.plan`` has the signature of ``make_plan`` and runs it in a pool of
``service.workers`` processes (started with ``spawn``: the service's threads and connections are
not copied into them). Collection and execution stay in the service's threads, one cluster
each, with each vCenter's own limits. With one worker, or one cluster, plans are made in the
service's own process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..engine import History, PlanOptions, make_plan
from ..errors import BalancerError
from ..logs import event
from ..plan import Plan
from ..snapshot import Snapshot

log = logging.getLogger("balancer.service")


def _exit_with_parent(parent: int) -> None:
    """In a worker: end when the service is gone (even after kill -9, which lets no one say so)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class PlannerFailed(BalancerError):
    """A worker process died while planning (killed, out of memory)."""

    exit_code = 1


class PlanPool:
    """``workers`` planning processes (1: plan in this process)."""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_exit_with_parent, initargs=(os.getpid(),))
            return self._pool

    def plan(self, snapshot: Snapshot, options: PlanOptions, history: History | None = None) -> Plan:
        if self.workers == 1:
            return make_plan(snapshot, options, history)
        pool = self._executor()
        try:
            return pool.submit(make_plan, snapshot, options, history).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # the next plan starts a new pool
                    self._pool = None
            event(log, "a planning worker process died; the pool is started afresh", logging.ERROR)
            raise PlannerFailed(f"cluster {snapshot.cluster}: the worker process planning it died") from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["PlanPool", "PlannerFailed"]
