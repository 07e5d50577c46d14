"""The outcome of one attempted plan action."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Outcome = Literal["success", "failed", "skipped"]


@dataclass(frozen=True)
class ActionResult:
    step: int
    kind: Literal["move", "power"]
    subject: str  # the VM moved or the host acted on
    action: str  # "esx01 -> esx02" for a move; "standby" / "power-on" / ... for a host
    outcome: Outcome
    reason: str = ""
    message: str = ""
    seconds: float = 0.0

    def to_json_dict(self) -> dict:
        return asdict(self)
