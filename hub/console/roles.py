"""Who may do what in the console: staff roles mapped to permissions, checked on the
server for every page and every action (:func:`hub.console.auth.page`).

The hub functions behind the pages check again where they have their own rule (the
``hub.admin`` functions refuse anyone without ``hub:admin``, which only the admin role's
tokens carry), so a gap here could never widen what a role may do.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.StrEnum):
    DASHBOARD = "dashboard"  # the charts
    READ_POLICIES = "read_policies"  # versions, source, diffs
    EDIT_POLICIES = "edit_policies"  # drafts, validation, impact, view as, publish, rollback
    EXPLORE = "explore"  # the GraphQL explorer, as any organization (queries only)
    ADMINISTER = "administer"  # organizations, clients, review, connectors, audit


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "analyst": frozenset({Permission.DASHBOARD, Permission.READ_POLICIES}),
    "policy_editor": frozenset(
        {
            Permission.DASHBOARD,
            Permission.READ_POLICIES,
            Permission.EDIT_POLICIES,
            Permission.EXPLORE,
        }
    ),
    "admin": frozenset(Permission),
}
"""``member`` (and any other role) opens nothing in the console."""


def permissions(roles: Iterable[str]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return granted
