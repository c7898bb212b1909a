"""Staff users as administrators list, create and disable them.

An administrator never chooses a staff user's password: creation returns a random initial
password, shown once (like a client secret), for the person to sign in with.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub import audit
from hub.access import access
from hub.admin.organizations import find_organization
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.models import Organization, StaffUser
from hub.principal import Principal
from hub.staff import StaffUserError, create_staff_user, normalise_email


@dataclass(frozen=True)
class StaffUserView:
    """What administrators see of a staff user: never the password hash."""

    email: str
    name: str
    organization_slug: str
    roles: list[str]
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class StaffUserFields:
    organization: str
    email: str
    name: str
    roles: list[str]


@dataclass(frozen=True)
class CreatedStaffUser:
    user: StaffUserView
    initial_password: str


def _view(user: StaffUser, slug: str) -> StaffUserView:
    return StaffUserView(
        user.email, user.name, slug, list(user.roles), user.active, user.created_at
    )


async def list_staff_users(
    session: AsyncSession, principal: Principal, organization: str
) -> list[StaffUserView]:
    access.require_admin(principal)
    org = await find_organization(session, organization)
    if org is None:
        raise NotFoundError("no such organization")
    rows = await session.execute(
        select(StaffUser)
        .where(col(StaffUser.organization_id) == org.id)
        .order_by(col(StaffUser.email))
    )
    return [_view(user, org.slug) for user in rows.scalars()]


async def add_staff_user(
    session: AsyncSession, principal: Principal, fields: StaffUserFields
) -> CreatedStaffUser:
    """Create a staff user of an operator or department organization."""
    access.require_admin(principal)
    org = await find_organization(session, fields.organization)
    if org is None:
        raise InvalidInputError(
            [FieldProblem(("input", "organization"), "no such organization", "NOT_FOUND")]
        )
    name = fields.name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError(
            [FieldProblem(("input", "name"), "must be 1 to 200 characters", "INVALID")]
        )
    password = secrets.token_urlsafe(18)
    try:
        user = await create_staff_user(
            session,
            organization=org,
            email=fields.email,
            name=name,
            password=password,
            roles=fields.roles,
        )
    except StaffUserError as error:
        raise InvalidInputError([FieldProblem(("input",), str(error), "NOT_ALLOWED")]) from None
    # Never the initial password (nor its hash).
    details = {"organization": org.slug, "name": user.name, "roles": sorted(user.roles)}
    await audit.record(session, principal, "staff_user.create", f"staff_user:{user.email}", details)
    return CreatedStaffUser(_view(user, org.slug), password)


async def disable_staff_user(
    session: AsyncSession, principal: Principal, email: str
) -> StaffUserView:
    """The user can no longer sign in; issued tokens stop within ``HUB_CLIENT_CACHE_TTL``."""
    access.require_admin(principal)
    found = await session.execute(
        select(StaffUser).where(col(StaffUser.email) == normalise_email(email))
    )
    user = found.scalar_one_or_none()
    if user is None:
        raise NotFoundError("no such staff user")
    was_active = user.active
    user.active = False
    session.add(user)
    await session.flush()
    owner = await session.get(Organization, user.organization_id)
    slug = "" if owner is None else owner.slug
    details = {"organization": slug, "was_active": was_active}
    await audit.record(
        session, principal, "staff_user.disable", f"staff_user:{user.email}", details
    )
    return _view(user, slug)
