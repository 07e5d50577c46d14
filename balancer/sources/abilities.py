"""What a cluster source can do, declared: one Protocol per ability, and the one question to ask.

A source class names its abilities in ``abilities`` (a frozenset of the Protocols below) and has the
methods they describe; the service and the commands ask ``has(source, CanX)``, never whether a
method happens to be there. A subclass that adds an ability declares it
(``abilities = Parent.abilities | {CanReportTasks}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, TypeGuard, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from ..plan.result import ActionResult
    from ..plan import Move, Plan, PowerAction, StorageMove
    from ..plan.domain_plan import CrossMove
    from ..snapshot import Snapshot
    from .base import ClusterTask


@runtime_checkable
class CanCollect(Protocol):
    """Reads the cluster into a Snapshot."""

    def snapshot(self) -> "Snapshot": ...


@runtime_checkable
class CanExecute(Protocol):
    """Carries out a plan's VM moves (and moves of disks), by the shared plan runner (plan_runner.py)."""

    def execute(self, plan: "Plan") -> "list[ActionResult]": ...


@runtime_checkable
class CanPowerHosts(Protocol):
    """Its ``execute`` also carries out a plan's host actions: standby, power-on, entering and
    leaving maintenance (DPM, evacuations)."""

    def execute(self, plan: "Plan") -> "list[ActionResult]": ...


@runtime_checkable
class CanMaintainDatastores(Protocol):
    """Puts datastores into maintenance mode and takes them out again."""

    def enter_datastore_maintenance(self, name: str) -> "ActionResult": ...

    def exit_datastore_maintenance(self, name: str) -> "ActionResult": ...


@runtime_checkable
class CanReportTasks(Protocol):
    """Its actions go on in the cluster without the balancer (vCenter runs a vMotion's task to its end
    when the balancer that asked for it is gone): the tasks queued, running or ended lately, so that a
    restart tells an action still in flight from an interrupted one. ``keys``: ids of tasks to read too
    (by id, as long as the cluster still knows them) when they are no longer among the recent ones."""

    def recent_tasks(self, keys: "Sequence[str]" = ()) -> "list[ClusterTask]": ...


@runtime_checkable
class CanMoveAcross(Protocol):
    """Moves a VM from its cluster to another cluster of the same kind with the cluster's own call
    (vCenter: RelocateVM_Task with the target's host and pool); ``task_started`` gets the id of the
    cluster's task once it has accepted it."""

    def cross_move(self, move: "CrossMove", target: Any,
                   task_started: Callable[[str], None] | None = None) -> "ActionResult": ...


@runtime_checkable
class CanExportImport(Protocol):
    """Moves a VM to another cluster of the same kind by taking it out here (``export_vm``: what the
    other needs) and in there (``import_vm``): the embedded simulator."""

    def export_vm(self, name: str) -> dict: ...

    def import_vm(self, spec: dict, host: str, datastore: str | None) -> None: ...


@runtime_checkable
class CanAdvance(Protocol):
    """Has a clock of its own, moved on once per cycle (the embedded simulator's trace clock)."""

    def advance(self) -> None: ...


@runtime_checkable
class CanPowerOnVM(Protocol):
    """Powers a powered-off VM on at a host (``balancer place --execute``), first moving the disks named in
    ``disks`` (disk -> datastore); a one-line outcome."""

    def power_on_vm(self, vm_name: str, host_name: str, disks: Mapping[str, str] | None = None) -> str: ...


class ExecutionHooks(Protocol):
    """The object whose hooks the plan runner's actions call; the service sets them to journal each action.

    ``before_action(action)`` just before the cluster is asked (after the premise check),
    ``after_action(action, result)`` when the action has an outcome, ``task_started(action, key)``
    once the cluster has accepted the action's task (a source with tasks), ``cancel_requested(action,
    message)`` when that task ran past its deadline and was asked to cancel (the action stays in flight
    until the task ends), ``task_polled(action, reachable, detail)`` at each poll of the task (a
    progress mark; ``reachable`` False when the cluster could not be read), and ``should_stop()``,
    polled before starting each further action (True: skip the rest). Setting them on the object
    (``hooks.before_action = f``) replaces them until they are deleted from its ``__dict__``."""

    def before_action(self, action: "Move | StorageMove | PowerAction") -> None: ...

    def after_action(self, action: "Move | StorageMove | PowerAction", result: "ActionResult") -> None: ...

    def should_stop(self) -> bool: ...


@runtime_checkable
class CanHook(Protocol):
    """Offers the execution hooks (ExecutionHooks) on the object ``execution_hooks()`` returns."""

    def execution_hooks(self) -> ExecutionHooks: ...


ABILITIES: tuple[type, ...] = (CanCollect, CanExecute, CanPowerHosts, CanMaintainDatastores, CanReportTasks,
                               CanMoveAcross, CanExportImport, CanAdvance, CanPowerOnVM, CanHook)

T = TypeVar("T")


def has(source: object, ability: type[T]) -> TypeGuard[T]:
    """True when ``source`` declares ``ability`` (one of the Protocols above) in its ``abilities``."""
    return ability in getattr(type(source), "abilities", frozenset())


def undeclared(cls: type) -> list[str]:
    """The abilities ``cls`` declares but lacks a method of (empty: the declaration holds)."""
    return [a.__name__ for a in getattr(cls, "abilities", ())
            if any(not callable(getattr(cls, m, None)) for m in _methods(a))]


def _methods(protocol: type) -> list[str]:
    return [m for m in vars(protocol) if not m.startswith("_") and callable(getattr(protocol, m))]


__all__ = ["ABILITIES", "CanAdvance", "CanCollect", "CanExecute", "CanExportImport", "CanHook",
           "CanMaintainDatastores", "CanMoveAcross", "CanPowerHosts", "CanPowerOnVM", "CanReportTasks",
           "ExecutionHooks", "has", "undeclared"]
