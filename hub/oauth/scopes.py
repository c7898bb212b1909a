"""Coarse scopes; the sharing policies decide the fine grain."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from hub.models import OrgKind


class Scope(enum.StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    FEEDBACK_READ = "feedback:read"
    FEEDBACK_WRITE = "feedback:write"
    # An organization's own outbound webhook subscriptions (schema/webhooks).
    WEBHOOKS_MANAGE = "webhooks:manage"
    # Administration of organizations and clients (schema/admin); see hub.access.
    HUB_ADMIN = "hub:admin"


ALL_SCOPES = frozenset(Scope)

# Scopes a partner organization's client may never hold, whatever is stored for it.
PARTNER_EXCLUDED_SCOPES = frozenset({Scope.HUB_ADMIN})

# RFC 8414 §2 lets a server leave supported scopes unadvertised: the admin scope is not
# something any partner reading the metadata needs to learn about.
ADVERTISED_SCOPES = ALL_SCOPES - {Scope.HUB_ADMIN}


class UnknownScopeError(ValueError):
    pass


class ScopeNotGrantableError(ValueError):
    """A scope the client's kind of organization may never be granted."""


def parse_scopes(text: str) -> list[str]:
    """Split a space- or comma-separated scope list, refusing unknown scopes by name."""
    scopes = [part for part in text.replace(",", " ").split() if part]
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        known = ", ".join(sorted(ALL_SCOPES))
        raise UnknownScopeError(f"unknown scope(s) {', '.join(unknown)}; known: {known}")
    return sorted(set(scopes))


def grantable_scopes(kind: OrgKind | str, scopes: Iterable[str]) -> list[str]:
    """``scopes`` narrowed to what an organization of ``kind`` may ever hold."""
    excluded = PARTNER_EXCLUDED_SCOPES if OrgKind(kind).is_partner else frozenset()
    return sorted(set(scopes) - excluded)


def check_grantable(kind: OrgKind | str, scopes: Iterable[str]) -> None:
    """Refuse scopes an organization of ``kind`` may never hold, naming them."""
    refused = sorted(set(scopes) - set(grantable_scopes(kind, scopes)))
    if refused:
        raise ScopeNotGrantableError(
            f"{', '.join(refused)} may not be granted to a client of a partner organization "
            f"({OrgKind(kind).value})"
        )
