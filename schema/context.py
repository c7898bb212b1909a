"""The typed per-request GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from starlette.requests import Request

from hub.db import Database
from hub.principal import Principal
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.federation.fetch import RemoteFetcher
    from schema.loaders import Loaders


@dataclass
class Context:
    request: Request
    principal: Principal
    database: Database
    settings: Settings
    withheld: list[list[str | int]] = field(init=False, default_factory=list)
    """Response paths of fields withheld on their row (see :mod:`schema.withheld`)."""
    cost: int | None = None
    """The operation's cost (:func:`schema.limits.operation_cost`) if the HTTP view has
    measured it already, for the rate limit; the cost limit then reuses it."""

    @cached_property
    def loaders(self) -> Loaders:
        """This request's DataLoaders, made on first use: a request the compiled path
        answers (:mod:`schema.compiled`) never needs them."""
        from schema.loaders import Loaders

        return Loaders(self)

    @cached_property
    def remote(self) -> RemoteFetcher:
        """This request's fetcher of remote subgraph fields (:mod:`hub.federation.fetch`),
        made on first use, over the subgraphs in force when it is made."""
        from hub.federation.fetch import RemoteFetcher
        from hub.federation.state import federation

        return RemoteFetcher(self.principal, federation.current)
