"""Types every area uses: Node, connections, page info, user errors, organizations, enums."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database
from hub.errors import FieldProblem
from hub.organizations import OrganizationRef
from hub.pagination import Page

T = TypeVar("T")


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID


# Every Relay-style subgraph defines PageInfo: shareable, so a supergraph composes it.
@strawberry.federation.type(shareable=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    page: strawberry.Private[Page[Any]]
    index: strawberry.Private[int]

    @strawberry.field
    def cursor(self) -> str:
        # Encoded on demand: most pages never ask for their edges' cursors.
        return self.page.cursor(self.index)


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Records matching the filter that the caller may see.")
    async def total_count(self) -> int:
        return await self.counter()


def connection(
    page: Page[T2], convert: Callable[[T2], T], counter: Callable[[], Awaitable[int]]
) -> Connection[T]:
    """Build a Relay connection from a hub page, converting each record to a type."""
    edges = [Edge(node=convert(item), page=page, index=i) for i, item in enumerate(page.items)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursor(0) if page.items else None,
            end_cursor=page.cursor(len(page.items) - 1) if page.items else None,
        ),
        counter=counter,
    )


T2 = TypeVar("T2")


async def page_connection(
    database: Database,
    fetch: Callable[[AsyncSession], Awaitable[Page[T2]]],
    count: Callable[[AsyncSession], Awaitable[int]],
    convert: Callable[[T2], T],
) -> Connection[T]:
    """A root list as a connection: its page now, its ``totalCount`` only when asked
    (each in a session of its own)."""
    async with database.session() as session:
        page = await fetch(session)

    async def counter() -> int:
        async with database.session() as session:
            return await count(session)

    return connection(page, convert, counter)


@strawberry.type(description="An input the API refused: `field` is the path to it.")
class UserError:
    field: list[str]
    message: str
    code: str


def user_errors(problems: Sequence[FieldProblem]) -> list[UserError]:
    return [UserError(field=list(p.path), message=p.message, code=p.code) for p in problems]


@strawberry.enum
class OrganizationKind(enum.Enum):
    OPERATOR = "operator"
    DEPARTMENT = "department"
    SUPPLIER = "supplier"
    VENDOR = "vendor"
    DISTRIBUTOR = "distributor"


@strawberry.type
class Organization:
    slug: str
    name: str
    kind: OrganizationKind

    @classmethod
    def from_ref(cls, ref: OrganizationRef) -> Organization:
        return cls(slug=ref.slug, name=ref.name, kind=OrganizationKind(ref.kind))


@strawberry.enum
class Channel(enum.Enum):
    WEBSITE = "website"
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    SOCIAL = "social"
    IN_PERSON = "in_person"
    MARKETING = "marketing"


def enum_or_none(kind: type[E], value: object) -> E | None:
    return None if value is None else kind(value)


E = TypeVar("E", bound=enum.Enum)
