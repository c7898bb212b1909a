"""The typed per-request GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request

from hub.db import Database
from hub.principal import Principal
from hub.settings import Settings

if TYPE_CHECKING:
    from schema.loaders import Loaders


@dataclass
class Context:
    request: Request
    principal: Principal
    database: Database
    settings: Settings
    loaders: Loaders = field(init=False)
    withheld: list[list[str | int]] = field(init=False, default_factory=list)
    """Response paths of fields withheld on their row (see :mod:`schema.withheld`)."""

    def __post_init__(self) -> None:
        from schema.loaders import Loaders

        self.loaders = Loaders(self)
