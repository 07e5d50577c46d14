"""`POST /place` on the service's HTTP endpoint: the `balancer place` answer, as JSON, for provisioning tools.

The hosts are ranked on the cluster's last collection (the answer's ``collected_at``) with the
VMs' recent demand the service plans on; nothing is carried out. One cluster: ``POST /place``;
several: ``POST /place?cluster=NAME``.
"""

from __future__ import annotations

from typing import Sequence
from urllib.parse import parse_qs

from ..errors import InputError
from ..placement import parse_vm_spec, rank
from ..plan_options import plan_options
from ..validation import parse_json_text
from .cycle import ClusterCycle

def place_request(runners: Sequence[ClusterCycle], body: bytes, query: str) -> tuple[int, dict]:
    """(HTTP status, JSON answer): 200 with a placement, 409 when the VM fits nowhere (the placement
    says why), 400 on a bad spec or cluster, 503 before the cluster's first collection."""
    try:
        clusters = parse_qs(query).get("cluster", [])
        by_name = {r.name: r for r in runners}
        if len(clusters) > 1:
            raise InputError("cluster: give one")
        if clusters:
            runner = by_name.get(clusters[0])
            if runner is None:
                raise InputError(f"cluster {clusters[0]!r}: no such cluster (clusters: {', '.join(by_name)})")
        elif len(runners) == 1:
            runner = runners[0]
        else:
            raise InputError(f"the service balances {len(runners)} clusters ({', '.join(by_name)}): "
                             "choose one with ?cluster=NAME")
        seen = runner.last_seen
        if seen is None:
            return 503, {"error": f"cluster {runner.name}: not collected yet (the first cycle has not planned)"}
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("vm spec: not UTF-8") from None
        spec = parse_vm_spec(parse_json_text(text, "vm spec"), "vm spec")
        snap, vm_demand = seen
        options = plan_options(runner.config)
        placement = rank(snap, spec, options, vm_demand=vm_demand)
    except InputError as exc:
        return 400, {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the endpoint answers, the service stays up
        return 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
    return (200 if placement.status == "ok" else 409), placement.to_json_dict()


__all__ = ["place_request"]
