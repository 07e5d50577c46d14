"""Showing plans and snapshots to people: terminal tables and JSON."""
