"""Plan items in words, the same in every report format.

A move reads "reason: detail" ("balance: CPU imbalance 0.105 → 0.081, …", "evacuate: esx04 is in
maintenance"); when the engine's detail already names the reason ("rule web-spread: web-01 and
web-02 share esx03") it stands alone. A power action reads "dpm: esx07 to standby, saves ~180 W",
followed by the engine's detail ("; demand 30 % is below the 45–81 % band").
"""

from __future__ import annotations

from ..plan import Move, PowerAction, StorageMove, Suppressed, Totals
from ..snapshot import VmdkRule, VmDatastoreRule, VmHostRule, VmVmRule

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


def move_words(move: Move | StorageMove) -> str:
    return _reason_and_detail(move.reason, move.detail)


def disk_words(move: Move | StorageMove) -> str:
    """The disks a move takes along: "Hard disk 1, Hard disk 2 (160 GB)"; "" when none."""
    if not move.disks:
        return ""
    gb = sum(d.size_gb for d in move.disks)
    return f"{', '.join(d.disk for d in move.disks)} ({gb:.0f} GB)"


def power_words(action: PowerAction) -> str:
    """E.g. "dpm: esx07 to standby, saves ~180 W; demand 30 % is below the 45–81 % band"."""
    saves = f", saves ~{action.saves_w:.0f} W" if action.saves_w else ""
    detail = action.detail.strip()
    if detail.startswith(action.reason):  # the detail says it all
        return detail + saves
    if detail.startswith(action.host):
        return f"{action.reason}: {detail}{saves}"
    return f"{action.reason}: {action.host} {_POWER_PHRASE[action.action]}{saves}" + (f"; {detail}" if detail else "")


def action_words(action: Move | StorageMove | PowerAction) -> str:
    return power_words(action) if isinstance(action, PowerAction) else move_words(action)


def suppressed_words(s: Suppressed) -> str:
    return _reason_and_detail(s.reason, s.detail)


def rule_words(rule: VmVmRule | VmHostRule | VmdkRule | VmDatastoreRule) -> str:
    """What a rule asks for, e.g. "keep apart: web-01, web-02" or "VM group db on host group rack-a"."""
    if isinstance(rule, VmdkRule):
        disks = ", ".join(rule.disks) if rule.disks else "every disk"
        how = "on different datastores" if rule.type == "vmdk-anti-affinity" else "on one datastore"
        return f"VM {rule.vm}: {disks} {how}"
    if isinstance(rule, VmDatastoreRule):
        return f"{', '.join(rule.vms)}: disks on different datastores"
    strength = "must" if rule.mandatory else "should"
    if isinstance(rule, VmVmRule):
        how = "run apart" if rule.type == "vm-anti-affinity" else "run together"
        return f"{', '.join(rule.vms)} {strength} {how}"
    where = "on" if rule.affine else "off"
    return f"VM group {rule.vm_group} {strength} run {where} host group {rule.host_group}"


def duration(seconds: float) -> str:
    """A predicted duration: 42 -> "42 s", 125 -> "2 min 05 s", 7384 -> "2 h 03 min"."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def size_mb(mb: float) -> str:
    """An amount of data: 512 -> "512 MB", 18425 -> "18.0 GB", 2.5e6 -> "2.38 TB" (binary units)."""
    if mb < 1024:
        return f"{mb:.0f} MB"
    if mb < 1024 ** 2:
        return f"{mb / 1024:.1f} GB"
    return f"{mb / 1024 ** 2:.2f} TB"


def totals_words(totals: Totals | None) -> str:
    """What the plan's migrations cost, in one line ("" when it moves nothing)."""
    if totals is None or not (totals.moves or totals.storage_moves):
        return ""
    parts = []
    if totals.moves:
        parts.append(f"{totals.moves} vMotion{'s' if totals.moves != 1 else ''}, {duration(totals.vmotion_seconds)} "
                     f"predicted one after another, {size_mb(totals.data_mb)} copied "
                     f"({size_mb(totals.mem_mb)} of configured memory)")
    if totals.storage_moves:
        parts.append(f"{totals.storage_moves} Storage vMotion{'s' if totals.storage_moves != 1 else ''}, "
                     f"{duration(totals.storage_vmotion_seconds)}, {size_mb(totals.storage_data_gb * 1024)} copied")
    return "; ".join(parts)
