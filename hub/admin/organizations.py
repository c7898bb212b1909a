"""Organizations as administrators see and change them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub import audit
from hub.access import access
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.models import Organization, OrgKind
from hub.principal import Principal
from hub.validation import Problems

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_ATTRIBUTES_BYTES = 10_000


@dataclass(frozen=True)
class OrganizationView:
    """The public shape of an organization for administrators."""

    slug: str
    name: str
    kind: str
    attributes: dict[str, Any]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, org: Organization) -> OrganizationView:
        return cls(org.slug, org.name, org.kind, dict(org.attributes), org.active, org.created_at)


@dataclass(frozen=True)
class OrganizationFields:
    """Input for create (all given) and update (``None`` = unchanged; slug and kind fixed)."""

    slug: str | None = None
    name: str | None = None
    kind: str | None = None
    attributes: Any = None


def _attributes(problems: Problems, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add("attributes", "must be a JSON object")
        return None
    if len(json.dumps(value)) > MAX_ATTRIBUTES_BYTES:
        problems.add("attributes", f"must be at most {MAX_ATTRIBUTES_BYTES} bytes", "TOO_LONG")
        return None
    return dict(value)


async def find_organization(session: AsyncSession, slug: str) -> Organization | None:
    found = await session.execute(select(Organization).where(col(Organization.slug) == slug))
    return found.scalar_one_or_none()


async def _require(session: AsyncSession, slug: str) -> Organization:
    org = await find_organization(session, slug)
    if org is None:
        raise NotFoundError("no such organization")
    return org


async def list_organizations(session: AsyncSession, principal: Principal) -> list[OrganizationView]:
    access.require_admin(principal)
    rows = (await session.execute(select(Organization).order_by(col(Organization.slug)))).scalars()
    return [OrganizationView.of(org) for org in rows]


async def create_organization(
    session: AsyncSession, principal: Principal, fields: OrganizationFields
) -> OrganizationView:
    """A new organization; there is only ever one operator."""
    access.require_admin(principal)
    problems = Problems()
    slug = problems.text("slug", fields.slug, max_length=64, required=True)
    if slug is not None and not SLUG.match(slug):
        problems.add("slug", "must be lowercase letters, digits and inner hyphens")
        slug = None
    name = problems.text("name", fields.name, max_length=200, required=True)
    kind = problems.choice("kind", fields.kind, {k.value for k in OrgKind}, required=True)
    attributes = _attributes(problems, fields.attributes)
    if slug is not None and await find_organization(session, slug) is not None:
        problems.add("slug", "is already taken", "TAKEN")
    if kind == OrgKind.OPERATOR:
        operator = await session.execute(
            select(Organization.id).where(col(Organization.kind) == OrgKind.OPERATOR.value)
        )
        if operator.first() is not None:
            problems.add("kind", "there is already an operator organization", "NOT_ALLOWED")
    if problems.items or slug is None or name is None or kind is None:
        raise InvalidInputError(problems.items)
    org = Organization(slug=slug, name=name, kind=kind, attributes=attributes or {})
    session.add(org)
    await session.flush()
    details = {"slug": slug, "name": name, "kind": kind, "attributes": org.attributes}
    await audit.record(
        session, principal, "organization.create", f"organization:{org.slug}", details
    )
    return OrganizationView.of(org)


async def update_organization(
    session: AsyncSession, principal: Principal, slug: str, patch: OrganizationFields
) -> OrganizationView:
    """Change the name and/or replace the attributes object."""
    access.require_admin(principal)
    org = await _require(session, slug)
    problems = Problems("patch")
    if patch.name is not None:
        name = problems.text("name", patch.name, max_length=200, required=True)
    attributes = _attributes(problems, patch.attributes)
    problems.raise_any()
    before = {"name": org.name, "attributes": dict(org.attributes)}
    if patch.name is not None and name is not None:
        org.name = name
    if attributes is not None:
        org.attributes = attributes
    await session.flush()
    changes = audit.field_changes(before, {"name": org.name, "attributes": org.attributes})
    await audit.record(
        session, principal, "organization.update", f"organization:{org.slug}", {"changes": changes}
    )
    return OrganizationView.of(org)


async def disable_organization(
    session: AsyncSession, principal: Principal, slug: str
) -> OrganizationView:
    """Refuse its clients at the token endpoint now, and their tokens at the resource side
    within ``HUB_CLIENT_CACHE_TTL`` (the client directory reads ``organization.active``)."""
    access.require_admin(principal)
    org = await _require(session, slug)
    if org.kind == OrgKind.OPERATOR or org.id == principal.organization_id:
        # Disabling the operator (or oneself) would lock every administrator out.
        message = "the operator and your own organization cannot be disabled"
        raise InvalidInputError([FieldProblem(("slug",), message, "NOT_ALLOWED")])
    was_active = org.active
    org.active = False
    await session.flush()
    await audit.record(
        session,
        principal,
        "organization.disable",
        f"organization:{org.slug}",
        {"was_active": was_active},
    )
    return OrganizationView.of(org)
