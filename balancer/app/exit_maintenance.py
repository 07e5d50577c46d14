"""`balancer exit-maintenance`: take a host or a datastore out of maintenance mode, journaled like `apply`."""

from __future__ import annotations

from ..checks.premise import power_premise
from ..config.plan_options import plan_options
from ..engine import make_plan
from ..errors import InputError
from ..errors.limits import quote
from ..plan import Plan, PowerAction
from ..plan.result import ActionResult
from ..snapshot import DatastoreState, HostState
from .evacuate import carry_out_datastore_exit
from .oneoff import acting, cluster_of


def exit_maintenance(name: str, config_path: str | None, cluster_name: str | None,
                     is_datastore: bool = False) -> list[ActionResult]:
    """Host (or, when no host has that name or ``is_datastore``, datastore) ``name`` out of maintenance;
    InputError when it is unknown or not in maintenance."""
    cluster, cfg = cluster_of(config_path, cluster_name)
    with acting(cluster, cfg, "exit-maintenance") as act:
        snap = act.source.snapshot()

        def only(power: list[PowerAction]) -> Plan:  # the cluster's plan frame, with no action but ``power``
            return make_plan(snap, plan_options(cfg, no_moves=True)).model_copy(
                update={"moves": [], "suppressed": [], "notes": [], "power": power, "storage_moves": []})

        found = None if is_datastore else snap.hosts_by_name().get(name)
        if found is None:
            ds = next((d for d in snap.datastores if d.name == name), None)
            if ds is None:
                what = "datastore" if is_datastore else "host or datastore"
                hosts = [h.name for h in snap.hosts if h.state is HostState.MAINTENANCE]
                stores = [d.name for d in snap.datastores if d.state is DatastoreState.MAINTENANCE]
                inside = ", ".join(hosts[:5] + stores[:5]) or "none"
                raise InputError(f"{what} {quote(name)}: not in cluster {snap.cluster} (in maintenance there: {inside})")
            if ds.state is not DatastoreState.MAINTENANCE:
                raise InputError(f"datastore {name} is not in maintenance")
            return act.carry_out(only([]), snap, lambda source, p: carry_out_datastore_exit(source, name))
        if found.state is HostState.ON:
            raise InputError(f"host {name} is on, not in maintenance")
        action = PowerAction(step=1, host=name, action="exit-maintenance", reason="maintenance",
                             detail="taken out of maintenance on request")
        if why := power_premise(action, found.state, 0):  # the executor's own check, before anything is journaled
            raise InputError(why)
        return act.carry_out(only([action]), snap)


__all__ = ["exit_maintenance"]
