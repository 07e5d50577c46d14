"""The journal: cycles, plans and actions with their outcomes, in an embedded SQLite database or in
PostgreSQL (shared by an active/standby pair, with the leader lease)."""

from .lease import Lease, instance_id
from .store import ActionRow, CycleRow, DatastoreSpace, Journal, LeaseLost, RecommendationRow, connect, open_journal

__all__ = ["ActionRow", "CycleRow", "DatastoreSpace", "Journal", "Lease", "LeaseLost", "RecommendationRow", "connect", "instance_id", "open_journal"]
