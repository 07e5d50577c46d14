"""The journal: cycles, plans and actions with their outcomes, in an embedded SQLite database."""

from .store import ActionRow, CycleRow, Journal, open_journal

__all__ = ["ActionRow", "CycleRow", "Journal", "open_journal"]
