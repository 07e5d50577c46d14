"""The tasks vCenter is still carrying out on a cluster's VMs and hosts, in the balancer's words.

vCenter goes on with a vMotion (or a host's power or maintenance task) when the balancer that asked
for it stops: after a restart the balancer asks which of its actions vCenter is still running.
One request: ``TaskManager.recentTask`` (tasks queued, running, or ended within the last minutes)
followed to each task's ``info``, with the cluster's references (``Collector.refs``) naming the VMs
and hosts the tasks work on.
"""

from __future__ import annotations

from typing import Any

from ..base import RunningTask
from .connection import Connection
from .inventory import ClusterRefs, moid, props, retrieve

TASK_PATHS = ["info.entity", "info.name", "info.descriptionId", "info.state"]
ACTIVE = ("queued", "running")

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


def running_tasks(conn: Connection, refs: ClusterRefs) -> list[RunningTask]:
    """The relocations of the cluster's VMs and the host actions of its hosts vCenter has queued or is running."""

    def read() -> list[Any]:
        from pyVmomi import vim, vmodl

        PC = vmodl.query.PropertyCollector
        content = conn.content
        follow = PC.TraversalSpec(name="recentTask", type=vim.TaskManager, path="recentTask", skip=False)
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=content.taskManager, skip=True, selectSet=[follow])],
                             propSet=[PC.PropertySpec(type=vim.Task, pathSet=TASK_PATHS, all=False)])
        return retrieve(content, [spec])

    names = {moid(v): n for n, v in refs.vms.items()}
    names.update({moid(h): n for n, h in refs.hosts.items()})
    out = []
    for oc in conn.call("reading vCenter's recent tasks", read):
        p = props(oc)
        state, entity = str(p.get("info.state", "")), p.get("info.entity")
        if state not in ACTIVE or entity is None or moid(entity) not in names:
            continue
        action = task_action(p.get("info.name"), p.get("info.descriptionId"))
        if action is not None:
            out.append(RunningTask(names[moid(entity)], action, str(p.get("info.name") or action), state))
    return out


__all__ = ["running_tasks", "task_action"]
