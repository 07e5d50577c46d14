"""The outcome of one attempted plan action."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Outcome = Literal["success", "failed", "skipped"]

# ends the message of an action skipped because it had already been made (execute/premise.py)
ALREADY_MADE = "(done before)"


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

    @property
    def done(self) -> bool:
        """Succeeded, or skipped because it had already been made (its VM or host is where the plan wants it)."""
        return self.outcome == "success" or (self.outcome == "skipped" and self.message.endswith(ALREADY_MADE))

    def to_json_dict(self) -> dict:
        return asdict(self)
