"""Relay ``node``/``nodes`` and ``me``."""

from __future__ import annotations

import asyncio

import strawberry
from strawberry.types import Info

from hub.access import Resource
from hub.access.registry import NODES
from hub.errors import BadInputError
from schema.common import Node, Organization, OrganizationKind
from schema.context import Context
from schema.ids import from_global_id
from schema.resource_types import NODE_CLASSES

__all__ = ["NODE_CLASSES", "Me", "NodeQueries", "load_node"]


async def load_node(info: Info[Context, None], global_id: str) -> Node | None:
    """Any node by global ID, through the same scoped loaders as every other read."""
    parsed = from_global_id(global_id)
    if parsed is None:
        return None
    type_name, record_id = parsed
    if type_name not in info.schema._schema.type_map:
        return None  # a type hidden from the caller's schema: like an unknown ID
    loaders = info.context.loaders
    resource = NODES[type_name]
    if resource is Resource.CUSTOMER:
        found = await loaders.customers.load(record_id)
    else:
        found = await loaders.records.load((resource, record_id))
    return None if found is None else NODE_CLASSES[resource].from_record(found)


@strawberry.type
class Me:
    client_id: str
    scopes: list[str]
    organization: Organization


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by global ID; null when unknown or not yours.")
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node | None:
        return await load_node(info, str(id))

    @strawberry.field
    async def nodes(self, info: Info[Context, None], ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > info.context.settings.max_page_size:
            raise BadInputError(f"at most {info.context.settings.max_page_size} ids")
        # gather: the loads share one DataLoader batch instead of one statement per id.
        return list(await asyncio.gather(*(load_node(info, str(i)) for i in ids)))

    @strawberry.field(description="The calling client and its organization.")
    async def me(self, info: Info[Context, None]) -> Me:
        principal = info.context.principal
        ref = await info.context.loaders.organizations.load(principal.organization_id)
        name = ref.name if ref is not None else principal.organization_slug
        return Me(
            client_id=principal.client_id,
            scopes=sorted(principal.scopes),
            organization=Organization(
                slug=principal.organization_slug,
                name=name,
                kind=OrganizationKind(principal.organization_kind.value),
            ),
        )
