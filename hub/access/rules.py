"""The rule set the access module enforces.

:class:`RuleSet` is the extension point; :class:`hub.access.policy_rules.PolicyRules`
implements it on the published sharing policy. Rules only *describe* access;
:mod:`hub.access.enforce` applies them, so replacing the rules never moves an
enforcement point.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, FromClause, Label

from hub.access.registry import REGISTRY, Resource
from hub.access.specs import Action
from hub.oauth.scopes import Scope
from hub.principal import Principal
from policies import Catalog, FieldDecision

# The coarse OAuth scope each (resource, action) needs before any rule is consulted.
REQUIRED_SCOPE: dict[tuple[Resource, Action], Scope] = {
    (resource, action): scope
    for resource, spec in REGISTRY.items()
    for action, scope in spec.scopes.items()
}


DATA_SCOPES = frozenset(REQUIRED_SCOPE.values())
"""Every scope that gates customer data (the rest is OAuth and administration)."""


class RuleSet(Protocol):
    """What the access module asks of a rule set. Deny by default in every method.

    ``version`` names what is in force (caches key on it); ``pseudonym_secret`` keys
    the ``pseudonym`` mask; ``remote`` names, per resource, the fields a federated
    subgraph provides (decided like any field, but not columns: the projection hands
    their decisions to whoever fetches them, :data:`hub.access.enforce.REMOTE`).
    """

    version: int
    fingerprint: str
    pseudonym_secret: bytes
    remote: Mapping[Resource, frozenset[str]]
    catalog: Catalog
    """What a policy may name now: the hub's catalog and the subgraphs' fields."""

    def row_filter(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        """The SQL condition selecting the rows of ``resource`` the principal may read."""
        ...

    def row_filter_within(
        self, principal: Principal, resource: Resource, relation: str, row: FromClause
    ) -> ColumnElement[bool]:
        """:meth:`row_filter` for rows that are all related through ``relation`` (a
        one-to-one relation of ``resource``) to the one row of ``row`` in scope where the
        condition is evaluated: the same rows, with conditions across ``relation``
        reading ``row`` directly."""
        ...

    def rule_columns(self, principal: Principal, resource: Resource) -> Sequence[Label[bool]]:
        """Columns to select with each row so :meth:`decide` can read them."""
        ...

    def decider(
        self, principal: Principal, resource: Resource
    ) -> Callable[[Mapping[Any, Any]], Mapping[str, FieldDecision]]:
        """The function giving each field's outcome (visible, masked with a mask, hidden)
        for one visible row selected with :meth:`rule_columns` (looked up once per page,
        called per row)."""
        ...

    def readable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        """The fields of ``resource`` every visible row shows the principal in clear."""
        ...

    def write_check(
        self, principal: Principal, resource: Resource, action: Action
    ) -> ColumnElement[bool]:
        """What a row must satisfy after ``action`` (the grants' ``check``)."""
        ...

    def presets(self, principal: Principal, resource: Resource, action: Action) -> dict[str, Any]:
        """Column values ``action`` forces from the caller."""
        ...

    def writable_fields(
        self, principal: Principal, resource: Resource, action: Action
    ) -> frozenset[str]:
        """The fields ``action`` (create or update) may set."""
        ...

    def may(self, principal: Principal, resource: Resource, action: Action) -> bool:
        """Whether the principal may perform ``action`` at all (rows are checked apart)."""
        ...

    def shown_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        """The fields of ``resource`` the principal may get on *some* row, in clear or
        masked: the fields of its per-audience schema. Every other field is hidden."""
        ...

    def audience(self, principal: Principal) -> Hashable:
        """A key equal for every principal who sees the same schema (for caches)."""
        ...
