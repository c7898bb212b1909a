"""Idempotency keys for create-type writes (issue 5 §3, CHECKLIST "Concurrent writes").

A client retrying a create it is unsure about (a timeout, a dropped connection) sends the
same key again; the hub then answers with the record the first attempt made instead of
making a second one. Keys are per client (``owner`` is the OAuth client id), kept
:data:`KEY_TTL`, and bound to one operation and one input: the same key with another
input, or for another operation, is refused (``IDEMPOTENCY_KEY_REUSED``) and nothing is
written.

How a keyed write runs (:func:`write_once`), all in the write's own transaction:

1. the caller's expired keys are deleted (pruning is opportunistic and per owner, so a
   busy client keeps its own table slice small; :func:`prune_expired` does every owner,
   once a minute from :class:`hub.runtime.Runtime`);
2. the key is looked up: found with the same request hash, the stored record is read
   back through :meth:`hub.access.Access.read_back` (what the caller may see *now*) and
   nothing is written; found with another hash, refused;
3. otherwise the write runs and the key row is inserted beside it, so the record and the
   key commit together or not at all.

Two concurrent requests with one key both miss at step 2. The unique (owner, key)
constraint settles it: on PostgreSQL the second insert waits for the first transaction
and then fails; on SQLite writers are serialised and the second fails the same way. The
loser's transaction (record included) rolls back and :func:`write_once` runs it once more
in a fresh transaction, where step 2 finds the winner's key and replays it.

A write that fails (bad input, FORBIDDEN, NOT_FOUND) stores no key: the transaction rolls
back, so a corrected retry with the same key is a first attempt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.access import Record, Resource, access
from hub.db import Database
from hub.errors import FieldProblem, InvalidInputError
from hub.models import IdempotencyKey
from hub.models._types import utcnow
from hub.plainjson import plain
from hub.principal import Principal

RESULT = "__result__"
"""A key of the record a keyed write returns holding plain JSON about the write itself
(e.g. a customer upsert's outcome): stored with the key and added to the replayed record,
so a retry gets the first answer, not only the record."""

KEY_TTL = timedelta(hours=24)
"""How long a key is remembered; a retry after that is a new request."""

MAX_KEY_LENGTH = 200  # the column's length
HEADER = "Idempotency-Key"
"""The HTTP header that may carry the key instead of an input field."""

R = TypeVar("R")


@dataclass(frozen=True)
class Idempotent:
    """How to make one create-type write idempotent: the extension point every keyed
    mutation uses (through :func:`schema.writes.run_write`).

    ``operation`` names the mutation (a key is bound to one); ``request`` is the
    operation's input as plain data (dicts, lists, strings, numbers, UUIDs, decimals,
    datetimes, enums and dataclasses are accepted) *without* the key itself: its
    canonical JSON is hashed, so a retry must send the same input. ``resource`` is what
    the write returns (a :data:`Record` with an ``id``), read back on a replay.
    ``key`` is the key from the input, if any (the GraphQL layer also reads the
    :data:`HEADER`); ``path`` is where user errors about the key point.

    Example::

        spec = Idempotent(
            operation="createCustomer",
            key=input.idempotency_key,
            request=dataclasses.asdict(fields),
            resource=Resource.CUSTOMER,
        )
        record, errors = await run_write(ctx, write, not_found_path=("input",),
                                         idempotency=spec)
    """

    operation: str
    key: str | None
    request: Any
    resource: Resource
    path: tuple[str, ...] = ("input", "idempotencyKey")


def request_hash(operation: str, request: Any) -> str:
    """SHA-256 of the operation name and the canonical JSON of its input (sorted keys,
    no whitespace), so equal inputs hash equal whatever their key order."""
    canonical = json.dumps(
        {"operation": operation, "input": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=plain,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_problems(key: str, path: tuple[str, ...]) -> list[FieldProblem]:
    """What is wrong with a key: it must be 1 to 200 printable characters."""
    if not key:
        return [FieldProblem(path, "an idempotency key must not be empty", "REQUIRED")]
    if len(key) > MAX_KEY_LENGTH:
        return [
            FieldProblem(
                path, f"an idempotency key must be at most {MAX_KEY_LENGTH} characters", "TOO_LONG"
            )
        ]
    if not key.isprintable():
        return [
            FieldProblem(path, "an idempotency key must be printable characters only", "INVALID")
        ]
    return []


async def prune_expired(
    session: AsyncSession, *, owner: str | None = None, now: datetime | None = None
) -> int:
    """Delete keys older than :data:`KEY_TTL` (of one ``owner``, or of every owner);
    returns how many went. Safe to run at any time: an expired key replays nothing."""
    cutoff = (now or utcnow()) - KEY_TTL
    statement = delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < cutoff)
    if owner is not None:
        statement = statement.where(col(IdempotencyKey.owner) == owner)
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


def owner_of(principal: Principal) -> str:
    """Whose keys these are: the client, and for a console token the staff user too
    (staff of several organizations share the console's client id)."""
    if principal.subject is None:
        return principal.client_id
    return f"{principal.client_id}/{principal.subject}"


def _reused(spec: Idempotent) -> InvalidInputError:
    return InvalidInputError(
        [
            FieldProblem(
                spec.path,
                f"this idempotency key was already used for a different {spec.operation} "
                "request (or another operation) in the last 24 hours; send the original "
                "input to get its result, or use a new key for a new request",
                "IDEMPOTENCY_KEY_REUSED",
            )
        ]
    )


async def guarded(
    session: AsyncSession,
    principal: Principal,
    spec: Idempotent,
    write: Callable[[AsyncSession], Awaitable[Record]],
) -> Record:
    """Run ``write`` under ``spec``'s key in the caller's transaction (steps 1-3 of the
    module docstring). A concurrent first use of the same key surfaces as
    :class:`~sqlalchemy.exc.IntegrityError` from the key insert; :func:`write_once`
    retries it."""
    if spec.key is None:
        return await write(session)
    problems = key_problems(spec.key, spec.path)
    if problems:
        raise InvalidInputError(problems)
    owner = owner_of(principal)
    digest = request_hash(spec.operation, spec.request)
    await prune_expired(session, owner=owner)
    found = (
        await session.execute(
            select(IdempotencyKey).where(
                col(IdempotencyKey.owner) == owner, col(IdempotencyKey.key) == spec.key
            )
        )
    ).scalar_one_or_none()
    if found is not None:
        if found.operation != spec.operation or found.request_hash != digest:
            raise _reused(spec)
        if found.result_id is None:  # not written by this module; never replay blindly
            raise _reused(spec)
        replayed = await access.read_back(session, principal, spec.resource, found.result_id)
        result = found.response.get("result")
        return replayed if result is None else {**replayed, RESULT: result}
    record = await write(session)
    result_id = record["id"]
    response: dict[str, Any] = {"id": str(result_id)}
    if RESULT in record:
        response["result"] = record[RESULT]
    session.add(
        IdempotencyKey(
            owner=owner,
            key=spec.key,
            operation=spec.operation,
            request_hash=digest,
            resource=spec.resource.value,
            result_id=result_id,
            response=response,
        )
    )
    await session.flush()
    return record


async def transact(
    database: Database,
    write: Callable[[AsyncSession], Awaitable[R]],
    *,
    retry_duplicate: bool,
) -> R:
    """Run ``write`` in one transaction. With ``retry_duplicate``, a unique-constraint
    failure (a concurrent request made the same row first) reruns it once in a fresh
    transaction, where ``write`` finds that row: writes that look before they insert
    (keyed writes, :func:`hub.assignments.assign_partner`) then return it."""
    attempts = 2 if retry_duplicate else 1
    for attempt in range(attempts):
        try:
            async with database.transaction() as session:
                return await write(session)
        except IntegrityError:
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def write_once(
    database: Database,
    principal: Principal,
    spec: Idempotent,
    write: Callable[[AsyncSession], Awaitable[Record]],
) -> Record:
    """Run a create-type write at most once per key (see the module docstring)."""
    return await transact(
        database,
        lambda session: guarded(session, principal, spec, write),
        retry_duplicate=spec.key is not None,
    )
