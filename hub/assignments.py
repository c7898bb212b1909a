"""Which partner serves which customer (CustomerPartner, DESIGN §3).

Assignments are the natural row scope of partners: assigning a distributor to a customer
is what lets it see that customer (with consent), so only the operator's administrators
make or end them (:func:`require_operator`). Both writes are idempotent by nature:
assigning an assigned partner returns the assignment it has (changing its role if
another is given), unassigning an unassigned one reports that nothing was removed.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import changes
from hub.access import Record, Resource, access
from hub.errors import FieldProblem, ForbiddenError, InvalidInputError, NotFoundError
from hub.models import Customer, CustomerPartner, Organization, OrgKind
from hub.models._types import row_values
from hub.outbox import Operation
from hub.principal import Principal

MAX_ROLE_LENGTH = 32  # the column's length


def require_operator(principal: Principal) -> None:
    """FORBIDDEN unless the caller administers the hub *for the operator*: a department's
    administrators run the hub with the operator but do not decide which partners see
    which customers."""
    access.require_admin(principal)
    if principal.organization_kind is not OrgKind.OPERATOR:
        raise ForbiddenError("this operation is for the operator's administrators")


async def _partner(
    session: AsyncSession, reference: str, *, assigning: bool = True
) -> Organization:
    """The partner organization named by slug or id; a user error at ``partner`` else.
    A disabled partner may be unassigned, not assigned."""
    try:
        condition = col(Organization.id) == uuid.UUID(reference)
    except ValueError:
        condition = col(Organization.slug) == reference.strip()
    org = (await session.execute(select(Organization).where(condition))).scalar_one_or_none()
    if org is None:
        problem = FieldProblem(("partner",), "no organization has this slug or id", "NOT_FOUND")
    elif not OrgKind(org.kind).is_partner:
        problem = FieldProblem(
            ("partner",),
            f"{org.slug} is a{'n' if org.kind == 'operator' else ''} {org.kind}; only "
            "suppliers, vendors and distributors are assigned to customers",
            "NOT_A_PARTNER",
        )
    elif assigning and not org.active:
        problem = FieldProblem(
            ("partner",), f"{org.slug} is disabled; enable it before assigning it", "INACTIVE"
        )
    else:
        return org
    raise InvalidInputError([problem])


async def _customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError("no such customer")
    return customer


async def _existing(
    session: AsyncSession, customer_id: uuid.UUID, org_id: uuid.UUID
) -> CustomerPartner | None:
    statement = select(CustomerPartner).where(
        col(CustomerPartner.customer_id) == customer_id,
        col(CustomerPartner.organization_id) == org_id,
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def assign_partner(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    partner: str,
    role: str,
) -> Record:
    """Assign ``partner`` (slug or id) to the customer in ``role``; returns the
    assignment. Assigning again returns the same assignment (same ``since``); with
    another role, the role changes (audited as ``assignment.update``).

    A concurrent first assignment of the same pair fails the unique constraint; run it
    with a retry (``transact(..., retry_duplicate=True)``) and the rerun finds it."""
    require_operator(principal)
    cleaned = role.strip()
    if not cleaned or len(cleaned) > MAX_ROLE_LENGTH:
        raise InvalidInputError(
            [
                FieldProblem(
                    ("role",),
                    f"give a role of 1 to {MAX_ROLE_LENGTH} characters, e.g. reseller",
                    "REQUIRED" if not cleaned else "TOO_LONG",
                )
            ]
        )
    await _customer(session, customer_id)
    org = await _partner(session, partner)
    link = await _existing(session, customer_id, org.id)
    if link is not None and link.role == cleaned:
        return await access.read_back(session, principal, Resource.ASSIGNMENT, link.id)
    if link is not None:
        before = row_values(link)
        link.role = cleaned
        action, operation = "assignment.update", Operation.UPDATE
    else:
        before = {}
        link = CustomerPartner(customer_id=customer_id, organization_id=org.id, role=cleaned)
        session.add(link)
        action, operation = "assignment.create", Operation.CREATE
    await session.flush()
    await changes.record_change(
        session,
        principal,
        action,
        Resource.ASSIGNMENT,
        link.id,
        before,
        row_values(link),
        operation=operation,
        customer=customer_id,
        partner=org.slug,
    )
    return await access.read_back(session, principal, Resource.ASSIGNMENT, link.id)


async def unassign_partner(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID, partner: str
) -> bool:
    """End ``partner``'s assignment to the customer; ``False`` if it had none (so a
    retried call succeeds too)."""
    require_operator(principal)
    await _customer(session, customer_id)
    org = await _partner(session, partner, assigning=False)
    link = await _existing(session, customer_id, org.id)
    if link is None:
        return False
    before = row_values(link)
    # Core, not session.delete: a concurrent unassign may have removed the row since it
    # was read, and then this one removed nothing (the ORM would raise instead).
    result = await session.execute(
        delete(CustomerPartner).where(col(CustomerPartner.id) == link.id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await changes.record_change(
        session,
        principal,
        "assignment.delete",
        Resource.ASSIGNMENT,
        before["id"],
        before,
        {},
        operation=Operation.DELETE,
        customer=customer_id,
        partner=org.slug,
    )
    return True
