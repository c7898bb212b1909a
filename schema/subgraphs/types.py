"""A registered subgraph as administrators see it (never its secret)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from hub.federation import store
from hub.models.subgraph import Subgraph as SubgraphRow
from schema.common import UserError


@strawberry.type(description="A remote GraphQL subgraph composed into the hub.")
class Subgraph:
    name: str
    url: str
    auth: str = strawberry.field(description="none, header or oauth2")
    timeout_ms: int = strawberry.field(description="How long the hub waits for it")
    status: str = strawberry.field(
        description="new, ok, refused (the last SDL did not compose) or unreachable; the "
        "accepted SDL keeps serving after a refusal"
    )
    fields: list[str] = strawberry.field(description="The fields it adds, e.g. Customer.x")
    last_error: str | None
    checked_at: datetime | None
    accepted_at: datetime | None

    @classmethod
    def of(cls, row: SubgraphRow) -> Subgraph:
        described = store.describe(row)
        return cls(
            name=row.name,
            url=row.url,
            auth=row.auth_kind,
            timeout_ms=round(row.timeout * 1000),
            status=row.status,
            fields=list(described["fields"]),
            last_error=row.last_error,
            checked_at=row.checked_at,
            accepted_at=row.accepted_at,
        )


@strawberry.input
class SubgraphHeaderInput:
    name: str
    value: str = strawberry.field(description="Sealed at rest, never shown again")


@strawberry.input
class SubgraphOAuthInput:
    token_url: str
    client_id: str
    client_secret: str = strawberry.field(description="Sealed at rest, never shown again")
    scope: str | None = None


@strawberry.input
class AddSubgraphInput:
    name: str
    url: str
    header: SubgraphHeaderInput | None = None
    oauth: SubgraphOAuthInput | None = None
    timeout_ms: int = strawberry.field(default=5000, description="At most 60000")


@strawberry.type
class SubgraphPayload:
    subgraph: Subgraph | None
    accepted: bool = strawberry.field(description="Whether the SDL fetched now serves")
    problems: list[str] = strawberry.field(description="Why it was refused, if it was")
    user_errors: list[UserError]
