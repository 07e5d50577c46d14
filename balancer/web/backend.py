"""What the console and the API need from the service (balancer/service/console.py implements it),
and how it refuses a request."""

from __future__ import annotations

from typing import Any, Protocol

MAX_IDS = 64  # recommendations approved or dismissed in one request


class ConsoleError(Exception):
    """A request the console refuses: its HTTP status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ConsoleBackend(Protocol):
    role: str  # leader | standby

    def clusters(self) -> list[dict[str, Any]]: ...
    def recommendations(self, cluster: str) -> list[dict[str, Any]]: ...
    def hosts(self, cluster: str) -> dict[str, Any]: ...
    def history(self, cluster: str, last: int) -> list[dict[str, Any]]: ...
    def approve(self, cluster: str, ids: list[str], user: str) -> dict[str, Any]: ...
    def dismiss(self, cluster: str, ids: list[str], user: str) -> dict[str, Any]: ...


__all__ = ["ConsoleBackend", "ConsoleError", "MAX_IDS"]
