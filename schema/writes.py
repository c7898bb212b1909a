"""Running a mutation: one transaction, user errors for bad input, nothing half-written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from schema.common import UserError, user_errors
from schema.context import Context

R = TypeVar("R")


async def run_write(
    context: Context,
    write: Callable[[AsyncSession], Awaitable[R]],
    *,
    not_found_path: tuple[str, ...],
) -> tuple[R | None, list[UserError]]:
    """Run ``write`` in a transaction. Invalid input and unknown (or invisible) records
    come back as user errors; FORBIDDEN and CONFLICT propagate as GraphQL errors."""
    try:
        async with context.database.transaction() as session:
            return await write(session), []
    except InvalidInputError as error:
        return None, user_errors(error.problems)
    except NotFoundError as error:
        return None, user_errors([FieldProblem(not_found_path, str(error), "NOT_FOUND")])


def bad_id(path: tuple[str, ...]) -> list[UserError]:
    """The user error for an ID that does not parse: the same words as an unknown one."""
    return user_errors([FieldProblem(path, "no such customer", "NOT_FOUND")])
