"""Who is calling: the identity every hub function receives (resolved once per request)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    # The staff user a console token acts for (its ``sub``); None for client tokens.
    subject: str | None = None
    # The organization's attributes (``$subject.attributes.<name>`` in sharing policies).
    attributes: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_partner(self) -> bool:
        return self.organization_kind.is_partner

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
