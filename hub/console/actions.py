"""Running a hub write from a console action: one transaction, and a refusal turned into a
message for the page (the hub's errors name the field and the problem; nothing is
written when one is raised)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from hub.console.auth import Ctx
from hub.errors import HubError, InvalidInputError

T = TypeVar("T")


def message_of(error: HubError) -> str:
    if isinstance(error, InvalidInputError):
        return "; ".join(
            f"{'.'.join(p.path)}: {p.message}" if p.path else p.message for p in error.problems
        )
    return str(error)


async def attempt(
    ctx: Ctx, work: Callable[[AsyncSession], Awaitable[T]]
) -> tuple[T | None, str | None]:
    """``work`` in a transaction: its result, or the hub's refusal as a message."""
    try:
        async with ctx.runtime.database.transaction() as session:
            return await work(session), None
    except HubError as error:
        return None, message_of(error)
