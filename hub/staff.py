"""Staff users: the operator's and departments' people who sign in to the console
(the authorization step of the authorization code grant, RFC 6749 §4.1.1)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.models import STAFF_ROLES, Organization, OrgKind, StaffUser

MIN_PASSWORD_LENGTH = 12
STAFF_KINDS = frozenset({OrgKind.OPERATOR, OrgKind.DEPARTMENT})
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + uuid.uuid4().hex)


class StaffUserError(ValueError):
    """A staff user cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class SignedIn:
    user: StaffUser
    organization: Organization


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_roles(roles: Iterable[str]) -> list[str]:
    chosen = sorted(set(roles))
    unknown = [role for role in chosen if role not in STAFF_ROLES]
    if unknown:
        raise StaffUserError(
            f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(STAFF_ROLES)}"
        )
    if not chosen:
        raise StaffUserError("a staff user needs at least one role")
    return chosen


async def create_staff_user(
    session: AsyncSession,
    *,
    organization: Organization,
    email: str,
    name: str,
    password: str,
    roles: Iterable[str],
) -> StaffUser:
    """Create a staff user of an operator or department organization (never a partner's)."""
    if OrgKind(organization.kind) not in STAFF_KINDS:
        raise StaffUserError(
            f"organization {organization.slug!r} is a {organization.kind}: only operator and "
            "department organizations have staff users"
        )
    address = normalise_email(email)
    if "@" not in address or len(address) > 254:
        raise StaffUserError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffUserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    taken = await session.execute(select(col(StaffUser.id)).where(col(StaffUser.email) == address))
    if taken.first() is not None:
        raise StaffUserError(f"a staff user with email {address} already exists")
    user = StaffUser(
        organization_id=organization.id,
        email=address,
        name=name,
        password_hash=_hasher.hash(password),
        roles=check_roles(roles),
    )
    session.add(user)
    await session.flush()
    return user


def _password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def sign_in(session: AsyncSession, email: str, password: str) -> SignedIn | None:
    """The active staff user with these credentials, or None (one answer for every failure)."""
    row = (
        await session.execute(
            select(StaffUser, Organization)
            .join(Organization, col(Organization.id) == col(StaffUser.organization_id))
            .where(col(StaffUser.email) == normalise_email(email))
        )
    ).first()
    # argon2 takes a few hundred milliseconds of CPU by design: in a worker thread (it
    # releases the GIL), or every sign-in attempt, by anyone, froze the whole server.
    if row is None:
        await asyncio.to_thread(_password_matches, _DUMMY_HASH, password)
        return None
    user, organization = row
    if not await asyncio.to_thread(_password_matches, user.password_hash, password):
        return None
    if not user.active or not organization.active:
        return None
    return SignedIn(user, organization)
