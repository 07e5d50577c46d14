"""Counts in words for people: "1 VM", "3 VMs" -- never "1 datastores" or "1 VM(s)"; a few names of many."""

from __future__ import annotations

_IRREGULAR = {"VM": "VMs", "datastore": "datastores", "disk": "disks", "host": "hosts", "action": "actions",
              "cycle": "cycles", "move": "moves", "rule": "rules", "error": "errors", "vCPU": "vCPUs"}


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one: counted(1, "VM") -> "1 VM", counted(2, "VM") -> "2 VMs"."""
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {plural or _IRREGULAR.get(noun, noun + 's')}"


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """The noun alone, singular for exactly one: plural(1, "rule") -> "rule", plural(2, "rule") -> "rules"."""
    return noun if n == 1 else (plural_form or _IRREGULAR.get(noun, noun + "s"))


def some_names(names, first: int = 10) -> str:
    """The first ``first`` names and how many more ("esx01, esx02 and 94 more"; "none"): valid names in a
    one-line message."""
    names = list(names)
    text = ", ".join(names[:first]) + (f" and {len(names) - first} more" if len(names) > first else "")
    return text or "none"


__all__ = ["counted", "plural", "some_names"]
