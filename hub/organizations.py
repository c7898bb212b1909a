"""Organizations as other records refer to them (name and kind only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.models import Organization


@dataclass(frozen=True)
class OrganizationRef:
    """What any caller may know of an organization that appears on a visible record."""

    id: uuid.UUID
    slug: str
    name: str
    kind: str


async def get_organizations(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, OrganizationRef]:
    statement = select(Organization).where(Organization.id.in_(ids))  # type: ignore[attr-defined]
    rows = (await session.execute(statement)).scalars().all()
    return {row.id: OrganizationRef(row.id, row.slug, row.name, row.kind) for row in rows}
