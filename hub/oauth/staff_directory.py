"""Who a staff token's user is now: a short-lived cache over the user and organization rows,
so disabling a staff user stops their tokens within ``HUB_CLIENT_CACHE_TTL`` seconds
without a database read per request (the same rule as :mod:`hub.oauth.directory`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from hub.db import Database
from hub.models import Organization, OrgKind, StaffUser
from hub.ttl_cache import TTLCache


@dataclass(frozen=True)
class StaffIdentity:
    user_id: uuid.UUID
    active: bool
    organization_id: uuid.UUID
    organization_slug: str
    organization_kind: OrgKind
    organization_attributes: Mapping[str, Any] = field(default_factory=dict, compare=False)


class StaffDirectory:
    def __init__(self) -> None:
        self._cache: TTLCache[uuid.UUID, StaffIdentity | None] = TTLCache()

    async def lookup(self, database: Database, ttl: float, user_id: str) -> StaffIdentity | None:
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            return None
        return await self._cache.get(key, ttl, lambda: _load(database, key))


async def _load(database: Database, user_id: uuid.UUID) -> StaffIdentity | None:
    async with database.session() as session:
        row = (
            await session.execute(
                select(StaffUser, Organization)
                .join(Organization, col(Organization.id) == col(StaffUser.organization_id))
                .where(col(StaffUser.id) == user_id)
            )
        ).first()
    if row is None:
        return None
    user, org = row
    return StaffIdentity(
        user_id=user.id,
        active=user.active and org.active,
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        organization_attributes=dict(org.attributes or {}),
    )
