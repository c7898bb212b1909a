"""Who is calling: the identity every hub function receives (resolved once per request)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hub.models import OrgKind


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an OAuth client acting for its organization."""

    client_id: str
    organization_id: uuid.UUID
    organization_slug: str
    organization_kind: OrgKind
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None

    @property
    def is_partner(self) -> bool:
        return self.organization_kind.is_partner

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
