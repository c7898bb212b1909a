"""The subgraphs a replica serves: their accepted SDLs read, their clients, and the policy
catalog with their fields (:data:`federation`, swapped as a whole).

:meth:`hub.runtime.Runtime.reload_policy` follows the database: when the accepted SDLs
change (a refresh anywhere), it loads a new :class:`Federation` and, with it, new rules
over the new catalog, so the per-audience schemas are rebuilt with the new fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.subgraph import SubgraphClient
from hub.access.catalog import CATALOG
from hub.federation.sdl import RemoteField, SubgraphRefused, SubgraphShape
from hub.federation.store import client_for, shape_of
from hub.models.subgraph import Subgraph
from hub.netguard import NetPolicy
from policies import Catalog, FieldType

logger = logging.getLogger(__name__)


def catalog_with(shapes: Sequence[SubgraphShape]) -> Catalog:
    """The hub's policy catalog plus the subgraphs' fields (remote: rules may show, mask
    or hide them; no condition may test them)."""
    added: dict[str, dict[str, tuple[FieldType, str]]] = {}
    for shape in shapes:
        for remote in shape.fields:
            added.setdefault(remote.resource.value, {})[remote.name] = (
                remote.policy_type,
                f"the subgraph '{shape.name}'",
            )
    return CATALOG.with_remote(added) if added else CATALOG


@dataclass(frozen=True)
class Federation:
    """The accepted subgraphs of one moment, ready to serve."""

    identity: tuple[tuple[str, str], ...] = ()
    shapes: tuple[SubgraphShape, ...] = ()
    clients: Mapping[str, SubgraphClient] = field(default_factory=dict)
    catalog: Catalog = CATALOG

    @property
    def fields(self) -> dict[str, RemoteField]:
        """Every remote field by coordinate (``Customer.loyaltyTier``)."""
        return {f.coordinate: f for shape in self.shapes for f in shape.fields}

    async def aclose(self, grace: float = 0.0) -> None:
        """Close the clients (after ``grace`` seconds: requests may still use them)."""
        if grace:
            await asyncio.sleep(grace)
        for client in self.clients.values():
            await client.aclose()


class FederationState:
    """The process's :class:`Federation` in force; replaced, never edited."""

    def __init__(self) -> None:
        self.current = Federation()


federation = FederationState()


async def load_federation(
    session: AsyncSession, identity: tuple[tuple[str, str], ...], policy: NetPolicy
) -> Federation:
    """The accepted subgraphs, each with a client connecting as ``policy`` allows. One
    whose SDL no longer reads (it did when accepted) is left out, and logged."""
    rows = await session.execute(
        select(Subgraph).where(col(Subgraph.sdl).is_not(None)).order_by(col(Subgraph.name))
    )
    shapes: list[SubgraphShape] = []
    clients: dict[str, SubgraphClient] = {}
    for row in rows.scalars():
        assert row.sdl is not None
        try:
            shape = shape_of(row.name, row.sdl)
        except SubgraphRefused as refused:
            logger.error("subgraph %s left out: %s", row.name, refused)
            continue
        shapes.append(shape)
        clients[row.name] = client_for(row, policy)
    return Federation(identity, tuple(shapes), clients, catalog_with(shapes))
