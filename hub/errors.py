"""Domain errors raised by hub functions; the GraphQL layer maps each to a code."""

from __future__ import annotations

from dataclasses import dataclass


class HubError(Exception):
    """Base of the errors a caller may see; ``code`` becomes ``extensions.code``."""

    code = "INTERNAL_SERVER_ERROR"


class ForbiddenError(HubError):
    code = "FORBIDDEN"


class BadInputError(HubError):
    """An argument outside what the API accepts (page size, cursor, filter)."""

    code = "BAD_USER_INPUT"


class ConflictError(HubError):
    code = "CONFLICT"

    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


@dataclass(frozen=True)
class FieldProblem:
    """One invalid input: ``path`` names the input field, e.g. ``["input", "email"]``."""

    path: tuple[str, ...]
    message: str
    code: str = "INVALID"


class InvalidInputError(HubError):
    """Input failed validation; nothing was written. Carries every problem found."""

    code = "BAD_USER_INPUT"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(p.path)}: {p.message}" for p in problems))
        self.problems = problems


class NotFoundError(HubError):
    """The record does not exist *or* the caller may not see it: one answer for both."""

    code = "NOT_FOUND"
