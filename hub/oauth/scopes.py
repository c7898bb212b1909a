"""Coarse scopes; the sharing policies decide the fine grain."""

from __future__ import annotations

import enum


class Scope(enum.StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    FEEDBACK_READ = "feedback:read"
    FEEDBACK_WRITE = "feedback:write"


ALL_SCOPES = frozenset(Scope)


class UnknownScopeError(ValueError):
    pass


def parse_scopes(text: str) -> list[str]:
    """Split a space- or comma-separated scope list, refusing unknown scopes by name."""
    scopes = [part for part in text.replace(",", " ").split() if part]
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        known = ", ".join(sorted(ALL_SCOPES))
        raise UnknownScopeError(f"unknown scope(s) {', '.join(unknown)}; known: {known}")
    return sorted(set(scopes))
