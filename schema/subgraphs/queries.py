"""``subgraphs``: every registered subgraph with its status (administrators only)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.federation import admin
from schema.context import Context
from schema.subgraphs.types import Subgraph


@strawberry.type
class SubgraphQueries:
    @strawberry.field(description="Remote subgraphs and their status (administrators only).")
    async def subgraphs(self, info: Info[Context, None]) -> list[Subgraph]:
        ctx = info.context
        async with ctx.database.session() as session:
            rows = await admin.list_subgraphs(session, ctx.principal)
        return [Subgraph.of(row) for row in rows]
