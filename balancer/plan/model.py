"""The plan: what the engine decided for one snapshot.

The JSON form is a public, versioned contract documented in docs/plan-format.md
(JSON Schema: docs/plan.schema.json).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PLAN_VERSION = 1

MoveReason = Literal["rule", "capacity", "evacuate", "dpm", "balance"]
PowerReason = Literal["dpm", "capacity", "maintenance"]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourcePair(_Model):
    cpu: Finite
    mem: Finite


class Imbalance(_Model):
    """Population std-dev of per-host demand/capacity over hosts that are on."""

    before: ResourcePair
    after: ResourcePair
    target: Finite | None = None


class VMotionEstimate(_Model):
    seconds: Finite
    downtime_ms: Finite
    data_mb: Finite
    converges: bool = True


class Move(_Model):
    step: int
    vm: str
    source: str
    target: str
    reason: MoveReason
    detail: str = ""
    rule: str | None = None
    gain: Finite = 0.0
    vmotion: VMotionEstimate | None = None
    mem_mb: Finite = 0.0
    mandatory: bool = False

    @model_validator(mode="after")
    def _moves_somewhere(self) -> "Move":
        if self.source == self.target:
            raise ValueError(f"VM {self.vm}: source and target are the same host ({self.source})")
        return self


class PowerAction(_Model):
    step: int
    host: str
    action: Literal["standby", "power-on", "enter-maintenance", "exit-maintenance"]
    reason: PowerReason = "dpm"
    detail: str = ""
    saves_w: Finite | None = None


class Violation(_Model):
    kind: Literal["rule", "capacity"]
    name: str
    detail: str
    mandatory: bool = True


class Suppressed(_Model):
    vm: str
    target: str | None = None
    reason: str
    detail: str = ""


class Plan(_Model):
    version: Literal[1] = PLAN_VERSION
    cluster: str
    snapshot_digest: str
    collected_at: str | None = None
    status: Literal["ok", "infeasible"] = "ok"
    planner: str = "cp-sat"
    threshold: int = 3
    moves: list[Move] = []
    power: list[PowerAction] = []
    imbalance: Imbalance
    violations_before: list[Violation] = []
    violations_after: list[Violation] = []
    conflicts: list[str] = []
    suppressed: list[Suppressed] = []
    notes: list[str] = []

    @field_validator("collected_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"not an ISO 8601 date and time: {value!r}") from None
        return value

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def actions(self) -> list[Move | PowerAction]:
        """Moves and power actions together, in step order."""
        return sorted([*self.moves, *self.power], key=lambda a: a.step)
