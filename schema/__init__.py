"""The GraphQL API: a Federation v2 subgraph over the hub (DESIGN §7)."""

from __future__ import annotations

import sys
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, Info

from hub.errors import HubError
from hub.settings import Settings
from schema import resource_types
from schema.areas import areas
from schema.audit.extension import ReadAuditExtension
from schema.errors import log
from schema.limits import Limits, OperationLimitsExtension
from schema.metrics import OperationMetricsExtension
from schema.node import NodeQueries
from schema.resource_types import NODE_CLASSES
from schema.scalars import SCALAR_OVERRIDES


def _entity_types(info: Info) -> list[str]:
    """The members of the federation ``_Entity`` union (all keyed by a global ``id``) in
    the caller's schema: a type hidden from it is refused like an unknown one."""
    union = info.schema._schema.type_map.get("_Entity")
    return sorted(member.name for member in getattr(union, "types", ()))


class HubSchema(strawberry.federation.Schema):
    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Refuse malformed representations as bad input before strawberry dispatches them
        (unchecked, they end as internal errors); each entity then resolves through the
        same scoped loaders as ``customer(id)``."""
        entity_types = _entity_types(info)
        for index, rep in enumerate(representations):
            if not (
                isinstance(rep, dict)
                and rep.get("__typename") in entity_types
                and isinstance(rep.get("id"), str)
            ):
                raise GraphQLError(
                    f"representations[{index}] must be an object with a __typename of "
                    f"{' or '.join(entity_types)} and a string id",
                    extensions={"code": "BAD_USER_INPUT"},
                )
        return super().entities_resolver(info, representations)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected refusals (FORBIDDEN, BAD_USER_INPUT...) are answers, not incidents; only
        # unexpected exceptions are logged, by schema.errors.format_error with a traceback.
        del errors, execution_context


def build_schema(settings: Settings) -> HubSchema:
    limits = Limits.from_settings(settings)
    # Factories: strawberry builds fresh extension instances per request (their caches are
    # module-level and shared), so concurrent requests never share execution state.
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: OperationLimitsExtension(limits),
        ReadAuditExtension,
        OperationMetricsExtension,
    ]
    return HubSchema(
        query=Query,
        mutation=Mutation,
        types=list(NODE_CLASSES.values()),
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=True),
        scalar_overrides=SCALAR_OVERRIDES,
    )


# Every area (schema/<area>/ with queries or mutations) declares what it adds to the root
# types in its __init__.py (schema/areas.py); none is named here. Collected last, so that
# an area may import what this module defines.
AREAS = areas(sys.modules[__name__])
resource_types.complete()  # every area's types are registered now
Query = merge_types("Query", (NodeQueries, *(q for area in AREAS for q in area.queries)))
Mutation = merge_types("Mutation", tuple(m for area in AREAS for m in area.mutations))

__all__ = ["HubError", "HubSchema", "build_schema", "log"]
