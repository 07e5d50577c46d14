"""The tasks vCenter is carrying out, or ended a short while ago, on a cluster's VMs and hosts, in the
balancer's words.

vCenter goes on with a vMotion (or a host's power or maintenance task) when the balancer that asked
for it stops: after a restart the balancer asks which of its actions vCenter is still running, and
how those that ended meanwhile ended. One request: ``TaskManager.recentTask`` (tasks queued,
running, or ended within the last minutes) followed to each task's ``info``, with the cluster's
references (``Collector.refs``) naming the VMs and hosts the tasks work on.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..base import ClusterTask
from .connection import Connection
from .inventory import ClusterRefs, moid, objects_spec, props, retrieve

TASK_PATHS = ["info.key", "info.entity", "info.name", "info.descriptionId", "info.state", "info.error",
              "info.queueTime"]
STATES = ("queued", "running", "success", "error")

# vCenter's method (info.name without _Task, or the last part of info.descriptionId), lower case
# -> the balancer's action word. MigrateVM_Task is the older call for a vMotion; "relocatevm"
# is the name the simulator gives.
ACTIONS = {
    "relocatevm": "relocate", "relocate": "relocate", "migratevm": "relocate", "migrate": "relocate",
    "powerdownhosttostandby": "standby", "poweruphostfromstandby": "power-on",
    "entermaintenancemode": "enter-maintenance", "exitmaintenancemode": "exit-maintenance",
}


def task_action(name: Any, description_id: Any) -> str | None:
    """The balancer's action word for a task of that info.name / info.descriptionId (None: none of its actions)."""
    for text in (name, str(description_id or "").rsplit(".", 1)[-1]):
        key = str(text or "").lower()
        if key.endswith("_task"):
            key = key[: -len("_task")]
        if key in ACTIONS:
            return ACTIONS[key]
    return None


def recent_tasks(conn: Connection, refs: ClusterRefs, keys: Sequence[str] = ()) -> list[ClusterTask]:
    """The relocations of the cluster's VMs and the host actions of its hosts vCenter has queued, is
    running, or ended within the last minutes (``recentTask``), each with its task's id; and the tasks
    of ``keys`` (ids the journal holds) not among them, read by their managed object id as long as
    vCenter still knows them (its task history outlives ``recentTask``)."""

    def read() -> list[Any]:
        from pyVmomi import vim, vmodl

        PC = vmodl.query.PropertyCollector
        content = conn.content
        follow = PC.TraversalSpec(name="recentTask", type=vim.TaskManager, path="recentTask", skip=False)
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=content.taskManager, skip=True, selectSet=[follow])],
                             propSet=[PC.PropertySpec(type=vim.Task, pathSet=TASK_PATHS, all=False)])
        return retrieve(content, [spec])

    def read_keys(missing: list[str]) -> list[Any]:
        from pyVmomi import vim

        found = []
        for key in missing:  # one at a time: a task vCenter no longer knows faults only its own read
            task = vim.Task(key, conn.si._stub)
            try:
                found += retrieve(conn.content, [objects_spec([(task, vim.Task, TASK_PATHS)])])
            except Exception:  # noqa: BLE001 - ManagedObjectNotFound: vCenter forgot it
                continue
        return found

    names = {moid(v): n for n, v in refs.vms.items()}
    names.update({moid(h): n for n, h in refs.hosts.items()})
    out = []
    objects = list(conn.call("reading vCenter's recent tasks", read))
    seen = {str(props(oc).get("info.key") or moid(oc.obj)) for oc in objects}
    missing = [k for k in dict.fromkeys(keys) if k and k not in seen]
    if missing:
        objects += conn.call("reading the balancer's tasks", lambda: read_keys(missing))
    wanted = set(missing)
    for oc in objects:
        p = props(oc)
        state, entity = str(p.get("info.state", "")), p.get("info.entity")
        key = str(p.get("info.key") or moid(oc.obj))
        if state not in STATES or entity is None or (moid(entity) not in names and key not in wanted):
            continue
        action = task_action(p.get("info.name"), p.get("info.descriptionId"))
        if action is not None:
            error = describe_fault(p.get("info.error")) if state == "error" else ""
            subject = names.get(moid(entity), moid(entity))
            out.append(ClusterTask(subject, action, str(p.get("info.name") or action), state, key, error,
                                   queued_at=p.get("info.queueTime")))
    return out


def describe_fault(fault: Any) -> str:
    """A task's ``info.error`` in one line: the fault's type, and its message when it has one."""
    if fault is None:
        return "unknown error"
    text = " ".join(str(getattr(fault, "msg", "") or getattr(fault, "localizedMessage", "") or "").split())
    name = type(fault).__name__.rsplit(".", 1)[-1]
    if not text or name in text:
        return name
    return f"{name}: {text}"


__all__ = ["describe_fault", "recent_tasks", "task_action"]
