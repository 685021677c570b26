"""Domain errors raised by services and selectors; ``labeling.api.errors`` maps each to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause; ``message`` is shown to them as is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The object does not exist, or the user may not know that it does (blinding)."""


class Forbidden(DomainError):
    """The user may see the object but not perform this action on it."""


class Conflict(DomainError):
    """The action clashes with the current state: a double submit, a closed assignment, a run in progress."""


class InvalidInput(DomainError):
    """The request does not fit: ``field`` names the offending part."""
