"""Running a mutation: one transaction, user errors for bad input, nothing half-written;
create-type mutations optionally idempotent (see :mod:`hub.idempotency`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import Record
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.idempotency import HEADER, Idempotent, transact, write_once
from schema.common import UserError, user_errors
from schema.context import Context

R = TypeVar("R")

__all__ = ["IDEMPOTENCY_KEY", "Idempotent", "bad_id", "run_write"]

IDEMPOTENCY_KEY = (
    "1-200 printable characters naming this request (or send the Idempotency-Key header): "
    "a retry with the same key and input returns the first result instead of writing "
    "again; the same key with another input is refused. Keys are kept 24 hours."
)
"""The description of every ``idempotencyKey`` input field."""


@overload
async def run_write(
    context: Context,
    write: Callable[[AsyncSession], Awaitable[R]],
    *,
    not_found_path: tuple[str, ...],
    retry_duplicate: bool = False,
) -> tuple[R | None, list[UserError]]: ...


@overload
async def run_write(
    context: Context,
    write: Callable[[AsyncSession], Awaitable[Record]],
    *,
    not_found_path: tuple[str, ...],
    idempotency: Idempotent,
) -> tuple[Record | None, list[UserError]]: ...


async def run_write(
    context: Context,
    write: Callable[[AsyncSession], Awaitable[R]] | Callable[[AsyncSession], Awaitable[Record]],
    *,
    not_found_path: tuple[str, ...],
    idempotency: Idempotent | None = None,
    retry_duplicate: bool = False,
) -> tuple[R | Record | None, list[UserError]]:
    """Run ``write`` in a transaction. Invalid input and unknown (or invisible) records
    come back as user errors; FORBIDDEN and CONFLICT propagate as GraphQL errors.

    ``idempotency`` makes a create-type write happen at most once per key: the key is
    the spec's (from the input) or the ``Idempotency-Key`` header's (both given and
    different is a user error); without either, the write simply runs. A retry with
    the same key and input answers with the first result, re-read for the caller.
    ``retry_duplicate`` reruns a write once when a concurrent request inserted the same
    unique row first (for writes that look before they insert).
    """
    try:
        if idempotency is not None:
            spec = _with_header_key(context, idempotency)
            record = await write_once(
                context.database,
                context.principal,
                spec,
                write,  # type: ignore[arg-type]  # the overloads guarantee a Record
            )
            return record, []
        return await transact(context.database, write, retry_duplicate=retry_duplicate), []
    except InvalidInputError as error:
        return None, user_errors(error.problems)
    except NotFoundError as error:
        return None, user_errors([FieldProblem(not_found_path, str(error), "NOT_FOUND")])


def _with_header_key(context: Context, spec: Idempotent) -> Idempotent:
    """The spec with the key the request carries: the input field's or the header's."""
    header = context.request.headers.get(HEADER)
    if header is None:
        return spec
    if spec.key is not None and spec.key != header:
        raise InvalidInputError(
            [
                FieldProblem(
                    spec.path,
                    f"differs from the {HEADER} header; send the key once, "
                    "in the input or in the header",
                    "IDEMPOTENCY_KEY_MISMATCH",
                )
            ]
        )
    return dataclasses.replace(spec, key=header)


def bad_id(path: tuple[str, ...]) -> list[UserError]:
    """The user error for an ID that does not parse: the same words as an unknown one."""
    return user_errors([FieldProblem(path, "no such customer", "NOT_FOUND")])
