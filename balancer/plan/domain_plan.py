"""The domain plan: VMs to move between the clusters of one balancing domain.

A balancing domain groups clusters (of one vCenter or several) between which the balancer may
move VMs when one cluster runs out of capacity and another has room. Its plan is its own
document, beside each cluster's plan: the JSON form is a public, versioned contract documented
in docs/domains.md (JSON Schema: docs/domain-plan.schema.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors.limits import MAX_PLAN_BYTES, Name, Text, clip, quote
from ..errors.validation import read_json_file, validate_model
from .model import CopyEstimate, Step, VMotionEstimate, iso_time

DOMAIN_PLAN_VERSION = 1
READ_VERSIONS = (1,)
Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClusterLoad(_Model):
    """One cluster of the domain: its demand over the capacity of its usable hosts, before and after."""

    cluster: Name
    snapshot_digest: Text
    collected_at: Text | None = None
    cpu_before: Finite  # CPU demand / capacity of the hosts that are on or in standby
    mem_before: Finite
    cpu_after: Finite
    mem_after: Finite
    over: bool  # above the domain's high-water mark before the plan

    @field_validator("collected_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        return iso_time(value)


class CrossMove(_Model):
    """One VM moved to another cluster (vMotion with a resource pool; across vCenters, with a service locator)."""

    step: Annotated[Step, Field(strict=True)]
    vm: Name
    source_cluster: Name
    source: Name  # host
    target_cluster: Name
    target: Name  # host
    reason: Literal["cross-cluster"] = "cross-cluster"
    detail: Text = ""
    cross_vcenter: bool = False
    # the target cluster's datastore its disks are on after the move: where they are copied to
    # (storage_copy set), or, across vCenters, the same datastore seen from the other vCenter;
    # None: within one vCenter, the disks stay where they are
    datastore: Name | None = None
    pool: Name | None = None  # the target cluster's resource pool it goes into (None: the root pool)
    cpu_mhz: NonNegative = 0.0  # the load it takes off its cluster
    mem_mb: NonNegative = 0.0
    vmotion: VMotionEstimate
    storage_copy: CopyEstimate | None = None  # the disks' copy, when they move too

    @model_validator(mode="after")
    def _between_clusters(self) -> "CrossMove":
        if self.source_cluster == self.target_cluster:
            raise ValueError(f"VM {clip(self.vm)}: source_cluster and target_cluster are the same ({clip(self.source_cluster)})")
        return self


class Refusal(_Model):
    """Why a VM could not go to a cluster (the compatibility check that failed, or no room)."""

    vm: Name
    target_cluster: Name
    why: Text


class DomainPlan(_Model):
    version: Annotated[int, Field(strict=True)] = DOMAIN_PLAN_VERSION
    domain: Name
    high: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]  # a cluster above this share sheds VMs
    room: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]  # it receives while at or below this share
    clusters: list[ClusterLoad]
    moves: list[CrossMove] = []
    refused: list[Refusal] = []  # the first few compatibility refusals met, for the report
    notes: list[Text] = []

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, bool) or value not in READ_VERSIONS:
            readable = " and ".join(str(v) for v in READ_VERSIONS)
            raise ValueError(f"unsupported domain plan version {quote(value)} (this balancer reads versions {readable})")
        return value

    @model_validator(mode="after")
    def _references(self) -> "DomainPlan":
        names = [c.cluster for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError("clusters: a cluster listed twice")
        for m in self.moves:
            for c in (m.source_cluster, m.target_cluster):
                if c not in names:
                    raise ValueError(f"move of VM {clip(m.vm)}: cluster {quote(c)} is not one of the plan's clusters")
        steps = [m.step for m in self.moves]
        if steps != list(range(1, len(steps) + 1)):
            raise ValueError("moves: steps must be 1, 2, ... in order")
        return self

    def cluster_load(self, name: str) -> ClusterLoad:
        return next(c for c in self.clusters if c.cluster == name)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")


def is_domain_plan(data: Any) -> bool:
    """Does this parsed JSON look like a domain plan (rather than a cluster's plan)?"""
    return isinstance(data, dict) and "domain" in data and "cluster" not in data


def parse_domain_plan(data: Any, what: str = "domain plan") -> DomainPlan:
    return validate_model(DomainPlan, data, what)


def load_domain_plan(path: str | Path) -> DomainPlan:
    path = Path(path)
    return parse_domain_plan(read_json_file(path, f"domain plan {path}", MAX_PLAN_BYTES), f"domain plan {path}")


def domain_plan_json(plan: DomainPlan) -> str:
    return json.dumps(plan.to_json_dict(), indent=2) + "\n"


def domain_plan_schema() -> dict:
    return DomainPlan.model_json_schema()


__all__ = ["DOMAIN_PLAN_VERSION", "ClusterLoad", "CrossMove", "DomainPlan", "Refusal", "domain_plan_json",
           "domain_plan_schema", "is_domain_plan", "load_domain_plan", "parse_domain_plan"]
