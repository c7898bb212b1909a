"""The rule set the access module enforces.

:class:`RuleSet` is the extension point the sharing-policy engine (``policies/``) will
implement; :class:`BuiltinRules` is the fixed rule set in force until then. Rules only
*describe* access; :mod:`hub.access.enforce` applies them, so replacing the rules never
moves an enforcement point.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, exists, false, or_, true
from sqlmodel import col

from hub.access.resources import FIELDS, Action, Resource
from hub.models import Customer, CustomerPartner, Feedback, Interaction, Purchase
from hub.oauth.scopes import Scope
from hub.principal import Principal

# The coarse OAuth scope each (resource, action) needs before any rule is consulted.
REQUIRED_SCOPE: dict[tuple[Resource, Action], Scope] = {
    (Resource.CUSTOMER, Action.READ): Scope.CUSTOMERS_READ,
    (Resource.CUSTOMER, Action.CREATE): Scope.CUSTOMERS_WRITE,
    (Resource.CUSTOMER, Action.UPDATE): Scope.CUSTOMERS_WRITE,
    (Resource.ASSIGNMENT, Action.READ): Scope.CUSTOMERS_READ,
    (Resource.INTERACTION, Action.READ): Scope.CUSTOMERS_READ,
    (Resource.INTERACTION, Action.CREATE): Scope.CUSTOMERS_WRITE,
    (Resource.PURCHASE, Action.READ): Scope.CUSTOMERS_READ,
    (Resource.PURCHASE, Action.CREATE): Scope.CUSTOMERS_WRITE,
    (Resource.FEEDBACK, Action.READ): Scope.FEEDBACK_READ,
    (Resource.FEEDBACK, Action.CREATE): Scope.FEEDBACK_WRITE,
}


class RuleSet(Protocol):
    """What the access module asks of a rule set. Deny by default in every method.

    Example::

        class ReadOnlyRules:
            def row_filter(self, principal, resource):
                return true()
            def readable_fields(self, principal, resource):
                return FIELDS[resource]
            def may(self, principal, resource, action):
                return action is Action.READ
    """

    def row_filter(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        """The SQL condition selecting the rows of ``resource`` the principal may read."""
        ...

    def readable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        """The fields of ``resource`` the principal may read in clear."""
        ...

    def may(self, principal: Principal, resource: Resource, action: Action) -> bool:
        """Whether the principal may perform ``action`` at all (rows are checked apart)."""
        ...


PARTNER_HIDDEN_CUSTOMER_FIELDS = frozenset(
    {"email", "phone", "lifetime_value", "traits", "provenance"}
)
PARTNER_WRITES = frozenset(
    {(Resource.FEEDBACK, Action.CREATE), (Resource.INTERACTION, Action.CREATE)}
)


def _assigned(principal: Principal, customer_id: Any) -> ColumnElement[bool]:
    """Whether ``customer_id`` is assigned to the principal's organization.

    A correlated EXISTS rather than ``IN (SELECT ...)``: SQLite materialises and sorts the
    whole assignment list for IN, while EXISTS walks the page's index and probes the
    unique (customer_id, organization_id) index (several times faster for big partners).
    """
    return exists().where(
        col(CustomerPartner.customer_id) == customer_id,
        col(CustomerPartner.organization_id) == principal.organization_id,
    )


class BuiltinRules:
    """Operator and departments: everything. Partners: their assigned customers only,
    without email, phone, lifetime value, traits or provenance; feedback shared with
    partners or contributed by themselves; their own interactions, purchases and
    assignments; they may submit feedback and log interactions for those customers.
    """

    def row_filter(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        if not principal.is_partner:
            return true()
        org = principal.organization_id
        match resource:
            case Resource.CUSTOMER:
                return _assigned(principal, col(Customer.id))
            case Resource.FEEDBACK:
                return _assigned(principal, col(Feedback.customer_id)) & or_(
                    col(Feedback.visibility) == "partners", col(Feedback.organization_id) == org
                )
            case Resource.INTERACTION:
                return _assigned(principal, col(Interaction.customer_id)) & (
                    col(Interaction.organization_id) == org
                )
            case Resource.PURCHASE:
                return _assigned(principal, col(Purchase.customer_id)) & (
                    col(Purchase.organization_id) == org
                )
            case Resource.ASSIGNMENT:
                return col(CustomerPartner.organization_id) == org
        return false()

    def readable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        fields = FIELDS[resource]
        if principal.is_partner and resource is Resource.CUSTOMER:
            return fields - PARTNER_HIDDEN_CUSTOMER_FIELDS
        return fields

    def may(self, principal: Principal, resource: Resource, action: Action) -> bool:
        if action is Action.READ or not principal.is_partner:
            return True
        return (resource, action) in PARTNER_WRITES
