"""Errors of the policy engine: each names a line and column in the policy source."""

from __future__ import annotations

from policies.model import NOWHERE, Position


class PolicyError(Exception):
    """A problem in a policy document at ``pos``; ``str()`` reads ``line:column: message``."""

    def __init__(self, message: str, pos: Position = NOWHERE) -> None:
        super().__init__(f"{pos}: {message}")
        self.message = message
        self.pos = pos

    @property
    def line(self) -> int:
        return self.pos.line

    @property
    def column(self) -> int:
        return self.pos.column


class PolicySyntaxError(PolicyError):
    """The source is not a well-formed policy document (parse stage)."""


class PolicyValidationError(PolicyError):
    """A document that parses but does not fit the catalog; carries every problem found."""

    def __init__(self, errors: list[PolicyError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.pos)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
