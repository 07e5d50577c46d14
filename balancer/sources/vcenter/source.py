"""The vCenter source: one cluster read into a Snapshot, plans carried out with vMotion and host power calls."""

from __future__ import annotations

import logging
from typing import Callable, ClassVar, Mapping, Sequence

from ...config import DrsConfig, SdrsConfig, VCenterConfig
from ...plan.result import ActionResult
from ...errors import SourceError
from ...plan import Plan
from ...plan.domain_plan import CrossMove
from ...snapshot import Snapshot
from ..abilities import (CanCollect, CanExecute, CanHook, CanMaintainDatastores, CanMoveAcross, CanPowerHosts,
                         CanPowerOnVM, CanReportTasks)
from ..base import ClusterTask
from .collector import Collector
from .connection import Connection
from .executor import Executor
from .site import TargetSite, target_site
from .tasks import recent_tasks


class VCenterSource:
    """One vCenter cluster (``vc.cluster``), as a balancer Source."""

    abilities: ClassVar[frozenset[type]] = frozenset({CanCollect, CanExecute, CanPowerHosts, CanMaintainDatastores,
                                                      CanReportTasks, CanMoveAcross, CanPowerOnVM, CanHook})

    def __init__(self, vc: VCenterConfig, drs: DrsConfig | None = None, sdrs: SdrsConfig | None = None):
        self.vc = vc
        self.drs = drs or DrsConfig()
        self.sdrs = sdrs or SdrsConfig()
        self.name = f"vcenter:{vc.host}/{vc.cluster}"
        for line in vc.insecure_warnings():  # protocol http, verify_tls false: said whenever the balancer connects
            logging.getLogger("balancer.vcenter").warning(line)
        self.conn = Connection(vc)
        self.collector = Collector(self.conn, vc.cluster, self.drs.idle_memory_percent / 100.0)
        self.executor = self._make_executor()

    def _make_executor(self) -> Executor:
        return Executor(self.conn, self.collector, self.drs, timeout=self.vc.timeout, sdrs=self.sdrs,
                        deadline_margin=self.vc.deadline_margin)

    def __repr__(self) -> str:
        return f"VCenterSource({self.name})"

    def snapshot(self) -> Snapshot:
        return self.collector.snapshot()

    def execute(self, plan: Plan) -> list[ActionResult]:
        return self.executor.run(plan)

    def execution_hooks(self) -> Executor:
        """The hooks are the executor's (called in its worker threads)."""
        return self.executor

    def power_on_vm(self, vm_name: str, host_name: str, disks: Mapping[str, str] | None = None) -> str:
        """Power a powered-off VM on at ``host_name`` (relocating it and ``disks`` there first); a one-line outcome."""
        return self.executor.power_on_vm(vm_name, host_name, disks)

    def recent_tasks(self, keys: Sequence[str] = ()) -> list[ClusterTask]:
        """The relocations of the cluster's VMs and the host actions of its hosts vCenter is running,
        or ended within the last minutes, and the tasks of ``keys`` vCenter still knows."""
        return recent_tasks(self.conn, self.collector.refs(), keys)

    def site(self, host: str, datastore: str | None, pool: str | None = None) -> TargetSite:
        """Where a VM from another cluster lands on ``host`` (and ``datastore``) of this cluster."""
        refs = self.collector.refs()
        return target_site(self.vc, self.conn, refs, host, datastore, pool)

    def cross_move(self, move: CrossMove, target: "VCenterSource",
                   task_started: Callable[[str], None] | None = None) -> ActionResult:
        """Carry out a move from this cluster to ``target``'s (``move.cross_vcenter``: another vCenter);
        ``task_started`` gets the id of vCenter's task once it has accepted it."""
        from .executor import cross_result

        try:
            site = target.site(move.target, move.datastore, move.pool)
        except SourceError as exc:
            return cross_result(move, "skipped", str(exc))
        return self.executor.cross_move(move, site, task_started)

    def enter_datastore_maintenance(self, name: str) -> ActionResult:
        """Put datastore ``name`` into maintenance mode (DatastoreEnterMaintenanceMode)."""
        return self.executor.enter_datastore_maintenance(name)

    def exit_datastore_maintenance(self, name: str) -> ActionResult:
        """Take datastore ``name`` out of maintenance mode (DatastoreExitMaintenanceMode_Task)."""
        return self.executor.exit_datastore_maintenance(name)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "VCenterSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["VCenterSource"]
