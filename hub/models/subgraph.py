"""Remote GraphQL subgraphs the hub composes into its graph (DESIGN §7, :mod:`hub.federation`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from hub.models._sealed import EncryptedText
from hub.models._types import UTCDateTime, new_id, utcnow

AUTH_KINDS = ("none", "header", "oauth2")
"""How the hub authenticates to a subgraph: nothing, a static header, or an OAuth 2.0
client-credentials token from the subgraph's own authorization server."""

STATUSES = ("new", "ok", "refused", "unreachable")
"""``new``: registered, no SDL accepted yet; ``ok``: the last refresh was accepted;
``refused``: the last SDL fetched did not compose (the accepted one, if any, serves);
``unreachable``: the last fetch failed (likewise)."""


class Subgraph(SQLModel, table=True):
    """One registered subgraph: where it is, how to reach it, and the SDL in force.

    ``sdl`` is the last accepted SDL, the one the hub serves; a refresh that does not
    compose leaves it as it is and records why in ``last_error``."""

    __tablename__ = "subgraph"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    url: str = Field(max_length=2000)
    auth_kind: str = Field(default="none", max_length=16)
    # Not secret: the header's name, or the token endpoint, client id and scope.
    auth: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The header's value or the client secret, sealed like customers' email.
    secret: str | None = Field(default=None, sa_type=EncryptedText("subgraph.secret"))
    timeout: float = 5.0
    status: str = Field(default="new", max_length=16)
    sdl: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sdl_sha256: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
