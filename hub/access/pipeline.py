"""The write pipeline: every create, update and state transition of a resource takes the
same steps, here and nowhere else (DESIGN §5, §10).

A domain module validates its input and applies its domain rules (identity matching,
source precedence, a lifecycle); it asks this module to write, and the pipeline makes
every access decision and does every step a write shares, in this order:

1. **the target is visible**: for an update or a transition, the row itself; for a create
   about a customer, that customer (a case note: its case; :func:`parent_of`,
   :meth:`Access.target`). A row the caller cannot read is NOT_FOUND exactly like a
   missing one, before anything about the write is revealed; then the OAuth scope and
   a rule granting the action (FORBIDDEN). A create about nothing checks the scope and
   the grant only.
2. **clean**: ``given`` may be a function; it is called now (after step 1, so a caller
   without the right learns nothing from validation) to validate the input and name the
   fields it sets. saleor's ``clean_input``.
3. **the fields are writable**: each field given must be among the granting rules'
   ``create``/``write`` fields, else one FORBIDDEN user error per field at its input
   path (``[root, input name]``, or ``[input name]`` for an argument).
4. **write**: a create's ``build`` makes the row; an update's ``change`` looks at the
   target and says what to set (:class:`Update`) or that nothing changes (``None``).
   The policy's ``presets`` are forced over either. A create is flushed; an update is
   one ``UPDATE … WHERE id = :id AND <compare-and-set> RETURNING *``: no row back means
   a concurrent writer got in first, and the target is re-read and ``change`` asked
   again (``attempts``) or ``conflict`` raised.
5. **check**: the row as written must satisfy the granting rules' ``check``
   (:meth:`Access.check_written`), else FORBIDDEN and the caller's transaction rolls
   back: nothing written, audited or published.
6. **record**: the audit event with the field diff and the outbox event, once
   (:func:`hub.changes.record_change`).
7. **read back** through the caller's scoped select (:meth:`Access.read_back`).

An update whose ``change`` returns ``None`` skips steps 4 to 6 (nothing written, nothing
audited, no event) and is read back. Administrative writes (merge, assignments, review
decisions: ``hub:admin`` on the operator) are not policy-governed and stay domain code,
but record their changes through the same step 6.

Example (a new interaction about a customer; ``Interaction`` is its table)::

    from hub.access import Action, Resource, pipeline
    from hub.outbox import Operation

    written = await pipeline.create(
        session,
        principal,
        pipeline.WriteRequest(
            Resource.INTERACTION,
            Action.CREATE,
            audit="interaction.create",
            operation=Operation.CREATE,
            about=customer_id,
            given={"customer_id": "customerId", "summary": "summary"},
        ),
        build=lambda: Interaction(customer_id=customer_id, summary=summary, ...),
    )
    return written.record

and an update with a compare-and-set on a version column::

    written = await pipeline.update(
        session,
        principal,
        pipeline.WriteRequest(
            Resource.CUSTOMER, Action.UPDATE, audit="customer.update",
            operation=Operation.UPDATE, target=customer_id, given={"name": "name"},
        ),
        change=lambda row: pipeline.Update(
            {"name": name, "version": Customer.version + 1},
            where=(Customer.version == expected,),
        ),
        conflict=lambda row: ConflictError(f"the customer is at version {row.version}"),
    )
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel

from hub import changes
from hub.access.enforce import Record, access
from hub.access.registry import REGISTRY
from hub.access.resources import MODELS, Resource
from hub.access.specs import Action
from hub.errors import ConflictError
from hub.models._types import row_values, table_columns
from hub.outbox import Operation
from hub.principal import Principal

Snapshot = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""The values of a row an audit event diffs (e.g. leaving out provenance stamps)."""


def _everything(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return values


@dataclass(frozen=True)
class WriteRequest:
    """One write as the domain asks for it.

    ``resource`` and ``action`` (``create`` or ``update``; a state transition is an
    update of its state field) are what the policy grants. ``audit`` is the audit
    action (``feedback.status``) and ``operation`` the outbox operation. ``target`` is
    the row an update changes; ``about`` the record a create is about (:func:`parent_of`:
    the customer, or a case note's case; both must be visible). ``given`` maps each
    field the write sets to its input name, or is a function returning that mapping
    (step 2 of the module's docstring); ``root`` is the input's name in error paths
    (``None`` for arguments). ``details`` go into the audit event; ``snapshot`` picks
    the values its diff compares (all columns by default).
    """

    resource: Resource
    action: Action
    audit: str
    operation: Operation
    target: uuid.UUID | None = None
    about: uuid.UUID | None = None
    given: Mapping[str, str] | Callable[[], Mapping[str, str]] = field(default_factory=dict)
    root: str | None = "input"
    details: Mapping[str, Any] = field(default_factory=dict)
    snapshot: Snapshot = _everything


@dataclass(frozen=True)
class Update:
    """What an update sets: ``values`` by column (values or SQL expressions such as
    ``Customer.version + 1``), on the condition ``where`` (the compare-and-set)."""

    values: Mapping[str, Any]
    where: tuple[ColumnElement[bool], ...] = ()


@dataclass(frozen=True)
class Written:
    """What a write did: ``record`` is the row read back for the writer (at least its
    id), ``row`` the ORM row written (an update's target, current after the write), and
    ``changed`` whether anything was written."""

    record: Record
    row: Any
    changed: bool = True


async def create(
    session: AsyncSession,
    principal: Principal,
    request: WriteRequest,
    build: Callable[[], SQLModel],
) -> Written:
    """Create one row of ``request.resource``: the steps of the module's docstring."""
    if request.about is not None:
        await access.target(
            session,
            principal,
            parent_of(request.resource),
            request.about,
            write=request.resource,
            action=request.action,
        )
        _check_fields(principal, request)
    else:
        authorize(principal, request)
    row: Any = build()
    for column, value in access.presets(principal, request.resource, request.action).items():
        setattr(row, column, value)
    session.add(row)
    await session.flush()
    await access.check_written(session, principal, request.resource, request.action, row.id)
    await _record(session, principal, request, row.id, {}, row_values(row))
    return Written(await access.read_back(session, principal, request.resource, row.id), row)


async def update(
    session: AsyncSession,
    principal: Principal,
    request: WriteRequest,
    change: Callable[[Any], Update | None],
    *,
    conflict: Callable[[Any], Exception] | None = None,
    attempts: int = 1,
) -> Written:
    """Update the row ``request.target``: the steps of the module's docstring.

    ``change`` gets the target (an ORM entity as read) and returns what to set, or
    ``None`` when nothing changes (it may raise the domain's own errors). When the
    compare-and-set matches no row, the target is re-read and ``change`` asked again, up
    to ``attempts`` times in all; then ``conflict(row)`` is raised (CONFLICT by default).
    """
    if request.target is None:
        raise ValueError("an update needs the target row's id")
    row: Any = await access.target(
        session,
        principal,
        request.resource,
        request.target,
        write=request.resource,
        action=request.action,
    )
    _check_fields(principal, request)
    model: Any = MODELS[request.resource]
    presets = access.presets(principal, request.resource, request.action)
    for attempt in range(attempts):
        if attempt:
            await session.refresh(row)
        planned = change(row)
        if planned is None:
            record = await access.read_back(session, principal, request.resource, row.id)
            return Written(record, row, changed=False)
        before = row_values(row)
        statement = (
            sql_update(model)
            .where(model.id == row.id, *planned.where)
            # Presets last: what the policy forces wins over what was asked for.
            .values({**planned.values, **presets})
            .returning(*table_columns(model))
            .execution_options(synchronize_session=False)
        )
        written = (await session.execute(statement)).first()
        if written is not None:
            break
    else:
        await session.refresh(row)
        raise conflict(row) if conflict else ConflictError("the record changed meanwhile; retry")
    after = dict(written._mapping)
    # The ORM row is the caller's view of the target: make it what was written, without
    # another SELECT and without marking it dirty.
    for name, value in after.items():
        set_committed_value(row, name, value)
    await access.check_written(session, principal, request.resource, request.action, row.id)
    await _record(session, principal, request, row.id, before, after)
    return Written(await access.read_back(session, principal, request.resource, row.id), row)


def parent_of(resource: Resource) -> Resource:
    """What a new record of ``resource`` is about: the target of its first one-to-one
    relation in the registry (the customer; a case note's case)."""
    relation = next(r for r in REGISTRY[resource].relations if not r.many)
    return Resource(relation.target)


def authorize(principal: Principal, request: WriteRequest) -> None:
    """Steps 1 to 3 for a write that is about no existing row yet: the scope and a rule
    granting the action, the input cleaned, its fields writable. :func:`create` does
    this itself; a write that must know it is allowed before it finds its row (an
    upsert matches first, then creates or updates) calls it first."""
    access.require(principal, request.resource, request.action)
    _check_fields(principal, request)


def _check_fields(principal: Principal, request: WriteRequest) -> None:
    given = request.given() if callable(request.given) else request.given
    access.check_fields(principal, request.resource, request.action, given, request.root)


async def _record(
    session: AsyncSession,
    principal: Principal,
    request: WriteRequest,
    row_id: uuid.UUID,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    await changes.record_change(
        session,
        principal,
        request.audit,
        request.resource,
        row_id,
        request.snapshot(before) if before else {},
        request.snapshot(after),
        operation=request.operation,
        **request.details,
    )
