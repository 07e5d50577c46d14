"""Plan items in words, the same in every report format.

A move reads "reason: detail" ("balance: CPU imbalance 0.105 → 0.081, …", "evacuate: esx04 is in
maintenance"); when the engine's detail already names the reason ("rule web-spread: web-01 and
web-02 share esx03") it stands alone. A power action reads "dpm: esx07 to standby, saves ~180 W",
followed by the engine's detail ("; demand 30 % is below the 45–81 % band").
"""

from __future__ import annotations

from ..plan import Move, PowerAction, Suppressed
from ..snapshot import VmHostRule, VmVmRule

_POWER_PHRASE = {
    "standby": "to standby",
    "power-on": "powered on",
    "enter-maintenance": "into maintenance",
    "exit-maintenance": "out of maintenance",
}


def _reason_and_detail(reason: str, detail: str) -> str:
    detail = detail.strip()
    if not detail:
        return reason
    if detail.startswith(reason):
        return detail
    return f"{reason}: {detail}"


def move_words(move: Move) -> str:
    return _reason_and_detail(move.reason, move.detail)


def power_words(action: PowerAction) -> str:
    """E.g. "dpm: esx07 to standby, saves ~180 W; demand 30 % is below the 45–81 % band"."""
    saves = f", saves ~{action.saves_w:.0f} W" if action.saves_w else ""
    detail = action.detail.strip()
    if detail.startswith(action.reason):  # the detail says it all
        return detail + saves
    if detail.startswith(action.host):
        return f"{action.reason}: {detail}{saves}"
    return f"{action.reason}: {action.host} {_POWER_PHRASE[action.action]}{saves}" + (f"; {detail}" if detail else "")


def action_words(action: Move | PowerAction) -> str:
    return move_words(action) if isinstance(action, Move) else power_words(action)


def suppressed_words(s: Suppressed) -> str:
    return _reason_and_detail(s.reason, s.detail)


def rule_words(rule: VmVmRule | VmHostRule) -> str:
    """What a rule asks for, e.g. "keep apart: web-01, web-02" or "VM group db on host group rack-a"."""
    strength = "must" if rule.mandatory else "should"
    if isinstance(rule, VmVmRule):
        how = "run apart" if rule.type == "vm-anti-affinity" else "run together"
        return f"{', '.join(rule.vms)} {strength} {how}"
    where = "on" if rule.affine else "off"
    return f"VM group {rule.vm_group} {strength} run {where} host group {rule.host_group}"


def pct(x: float) -> str:
    """A utilisation as a percentage: 0.634 -> "63 %"."""
    return f"{100 * x:.0f} %"
