"""What the runtime writes a record as: one :class:`Target` per resource a connector
may write (feedback, customers), chosen by the connector's ``resource``.

A target names the fields a mapping may set (the resource's API input names, plus
``external_id`` and, for records about a customer, one customer key), turns a mapped
record into typed, validated values (:meth:`Target.prepare`), and stores a batch of them
through the write pipeline as the connector's organization (:meth:`Target.store`).
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import REGISTRY, Resource
from hub.access.specs import camel
from hub.errors import HubError, InvalidInputError
from hub.principal import Principal

EXTERNAL_ID = "external_id"
MAX_EXTERNAL_ID = 200


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    QUEUED = "queued"  # the write pipeline left the change for review (proposals)


@dataclass(frozen=True)
class Item:
    """One record ready to store: its external id, its prepared values (by target
    field), the digest of those values, and ``record_id`` when the connector stored
    this external id before (``known`` its digest then)."""

    external_id: str
    values: dict[str, Any]
    digest: str
    record_id: uuid.UUID | None = None
    known: str | None = None


@dataclass(frozen=True)
class Stored:
    """What storing one item did: an outcome and the hub record, or why it failed."""

    outcome: Outcome | None
    record_id: uuid.UUID | None = None
    reason: str | None = None


class Context(Protocol):
    """What a target needs of the run: who writes, under which connector name, in which
    run, and whether new records may be written in bulk (:func:`hub.access.pipeline.
    create_many`; off, each record goes through the single-record pipeline)."""

    @property
    def principal(self) -> Principal: ...

    @property
    def source(self) -> str: ...

    @property
    def run_id(self) -> uuid.UUID: ...

    @property
    def bulk(self) -> bool: ...


class Target(Protocol):
    """Writing one resource. Implementations: :mod:`hub.sync.feedback`,
    :mod:`hub.sync.customers`."""

    resource: Resource
    fields: frozenset[str]
    """The target field names a mapping may set."""
    overlaps: bool
    """Whether batches may be stored at once (:class:`hub.sync.runner.Runner`'s
    ``in_flight``), each in its own transaction, committing in order: true when a
    batch's writes before the write pipeline's step 6 touch only rows of its own (new
    records with fresh ids), so it never waits in the database for a batch still in
    flight. Batches naming the same external id never overlap either way."""

    def prepare(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Typed, validated values from mapped ones, and the problems (``field: why``)."""
        ...

    async def store(
        self, session: AsyncSession, run: Context, items: Sequence[Item]
    ) -> list[Stored]:
        """Store ``items`` in the caller's transaction, one :class:`Stored` each, in
        order. A failed item is rolled back alone (a savepoint) and reported; anything
        raised is a failure of the whole batch. A target may store new records in bulk
        when ``run.bulk``: with the same outcome for each item as one by one."""
        ...


def input_names(resource: Resource, input_type: str) -> dict[str, str]:
    """API input name -> column, for the fields ``input_type`` sets (from the registry)."""
    names: dict[str, str] = {}
    for spec in REGISTRY[resource].fields:
        for entry in spec.inputs:
            owner, _, field = entry.partition(".")
            if owner == input_type:
                names[field or camel(spec.name)] = spec.name
    return names


def digest(values: Mapping[str, Any]) -> str:
    """A stable hash of prepared values: equal values, equal digest (an unchanged record)."""
    data = orjson.dumps(values, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()


def refused_by_database(error: BaseException) -> str:
    """Why the database refused one record, naming the error's kind and never its text
    (a constraint's message may quote the values)."""
    orig = getattr(error, "orig", None) or error
    code = (
        getattr(orig, "sqlstate", None)
        or getattr(orig, "sqlite_errorname", None)
        or type(orig).__name__
    )
    return f"the database refused this record ({code})"


def explain(error: HubError) -> str:
    """A write's refusal as one line naming the fields: ``text: must not be empty``."""
    if isinstance(error, InvalidInputError):
        return "; ".join(
            f"{'.'.join(p.path[1:] if len(p.path) > 1 else p.path)}: {p.message}"
            for p in error.problems
        )
    return str(error)


__all__ = [
    "EXTERNAL_ID",
    "MAX_EXTERNAL_ID",
    "Context",
    "Item",
    "Outcome",
    "Stored",
    "Target",
    "digest",
    "explain",
    "input_names",
    "refused_by_database",
]
