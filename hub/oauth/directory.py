"""Who a token's client is now: a short-lived cache over the client and organization rows.

Tokens carry the client id; the organization and whether the client is still active are
read from the database at most every ``ttl`` seconds, so disabling a client takes effect
on every replica within that time without a database read per request.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from hub.db import Database
from hub.models import Client, Organization, OrgKind
from hub.ttl_cache import TTLCache


@dataclass(frozen=True)
class ClientIdentity:
    client_id: str
    active: bool
    organization_id: uuid.UUID
    organization_slug: str
    organization_kind: OrgKind
    organization_attributes: Mapping[str, Any] = field(default_factory=dict, compare=False)


class ClientDirectory:
    def __init__(self, database: Database, ttl: float) -> None:
        self._database = database
        self._ttl = ttl
        self._cache: TTLCache[str, ClientIdentity | None] = TTLCache()

    async def lookup(self, client_id: str) -> ClientIdentity | None:
        return await self._cache.get(client_id, self._ttl, lambda: self._load(client_id))

    async def _load(self, client_id: str) -> ClientIdentity | None:
        async with self._database.session() as session:
            row = (
                await session.execute(
                    select(Client, Organization)
                    .join(Organization, col(Organization.id) == col(Client.organization_id))
                    .where(col(Client.client_id) == client_id)
                )
            ).first()
        if row is None:
            return None
        client, org = row
        return ClientIdentity(
            client_id=client.client_id,
            active=client.active and org.active,
            organization_id=org.id,
            organization_slug=org.slug,
            organization_kind=OrgKind(org.kind),
            organization_attributes=dict(org.attributes or {}),
        )
