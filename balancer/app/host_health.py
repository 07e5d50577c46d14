"""GET / POST /host-health: hosts' health set through the service's HTTP API (docs/vsphere7.md).

For the simulated cluster, and for external monitoring in front of a vCenter without a health update
provider: ``POST /host-health[?cluster=NAME]`` with ``{"host": "esx-03", "state": "severe", "reason": "PSU 1
failed"}`` sets the host's health over the config's (``drs.host_health``) and vCenter's; ``"state": null``
clears what the API set. The next cycle's plans carry it (quarantine, maintenance: PlanOptions.health_overrides)
with its reason, and the journal keeps those plans. ``GET /host-health`` answers each cluster's hosts' health as
the last cycle judged it and what the API set. Kept in memory: a restart keeps only the config's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Literal, Sequence
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..errors.limits import Name, clip_line, quote
from ..errors.validation import parse_json_text, validate_model
from ..logs import event

if TYPE_CHECKING:
    from ..journal import Journal
    from ..service.cycle import ClusterCycle

log = logging.getLogger("balancer.health")


class HostHealthRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    host: Name
    state: Literal["healthy", "moderate", "severe"] | None
    reason: Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


def _runner(runners: Sequence["ClusterCycle"], query: str, every: bool = False) -> list["ClusterCycle"]:
    clusters = parse_qs(query).get("cluster", [])
    by_name = {r.name: r for r in runners}
    if len(clusters) > 1:
        raise InputError("cluster: give one")
    if clusters:
        if clusters[0] not in by_name:
            raise InputError(f"cluster {quote(clusters[0])}: no such cluster (clusters: {', '.join(by_name)})")
        return [by_name[clusters[0]]]
    if len(runners) == 1 or every:
        return list(runners)
    raise InputError(f"the service balances {len(runners)} clusters ({', '.join(by_name)}): choose one with ?cluster=NAME")


def host_health_request(runners: Sequence["ClusterCycle"], body: bytes, query: str, user: str = "",
                        journal: "Journal | None" = None) -> tuple[int, dict]:
    """(HTTP status, JSON answer): 200 with the cluster's hosts' health; 400 on a bad request (one line).
    A change (POST, by ``user``) is journaled as a ``host-health`` entry of the cluster, with the user."""
    try:
        if not body:  # GET
            return 200, {"clusters": {r.name: _state(r) for r in _runner(runners, query, every=True)}}
        (runner,) = _runner(runners, query)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("host health: not UTF-8") from None
        req = validate_model(HostHealthRequest, parse_json_text(text, "host health"), "host health")
        seen = runner.last_seen
        if seen is not None and req.host not in seen[0].hosts_by_name():
            raise InputError(f"host health: host {quote(req.host)} is not in cluster {runner.name}")
        if req.state is None:
            runner.health_api.pop(req.host, None)
        else:
            runner.health_api[req.host] = (req.state, req.reason)
        event(log, "host health set through the API", logging.WARNING if req.state in ("moderate", "severe") else logging.INFO,
              cluster=runner.name, host=req.host, state=req.state or "cleared", reason=req.reason or None,
              user=user or None)
        if journal is not None:
            cid = journal.begin_cycle(runner.name, kind="host-health")
            note = f"{user or 'unknown'} set host {req.host}: {req.state or 'cleared'}" + (f" ({req.reason})" if req.reason else "")
            journal.end_cycle(cid, "ok", note=note)
        return 200, {"clusters": {runner.name: _state(runner)}}
    except InputError as exc:
        return 400, {"error": clip_line(str(exc))}


def _state(runner: "ClusterCycle") -> dict:
    """What the API set, and what the cluster's health providers said at the last collection."""
    seen = runner.last_seen
    return {"api": {h: {"state": s, "reason": r} for h, (s, r) in sorted(runner.health_api.items())},
            "providers": {h.name: {"state": h.health, "reason": h.health_reason or ""}
                          for h in (seen[0].hosts if seen is not None else []) if h.health is not None}}


__all__ = ["HostHealthRequest", "host_health_request"]
