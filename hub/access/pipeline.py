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

A batch of new rows (an import: thousands of records a second) goes through
:func:`create_many`: the same steps, each done once for the whole batch (step 1 for
every distinct record the rows are about in one query, step 3 once per distinct set of
fields, one multi-row INSERT, the ``check`` of step 5 in one query), and step 6 as ONE
audit event listing every row written with its values, and one outbox event per row
(numbered in one insert). Step 7 is left out: an import reads nothing back.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import True_
from sqlmodel import SQLModel

from hub import audit, changes, outbox
from hub.access.enforce import Record, access
from hub.access.registry import REGISTRY
from hub.access.resources import MODELS, Resource
from hub.access.rules import REQUIRED_SCOPE
from hub.access.specs import Action
from hub.bulk import (
    TURN_EVERY,
    Prebuilt,
    any_of,
    any_param,
    built_once,
    insert_rows,
    take_turn,
)
from hub.errors import ConflictError, ForbiddenError, HubError, NotFoundError
from hub.models._types import row_values, table_columns
from hub.outbox import Operation
from hub.plainjson import plain
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


# --- batches --------------------------------------------------------------------------------

_IN_CHUNK = 5000
"""Ids per ``IN (...)`` list: well under both backends' limits on bound parameters."""


@dataclass(frozen=True)
class BatchRequest:
    """A batch of creates as the domain asks for it (:func:`create_many`).

    ``resource``, ``action``, ``operation``, ``root`` and ``snapshot`` are as in
    :class:`WriteRequest`, for every row. The batch is audited as ONE event: ``audit`` is
    its action (e.g. ``feedback.import``), ``target`` what it names (e.g.
    ``connector:support-desk``), ``details`` go into it (plain JSON values) beside the
    list of the rows written."""

    resource: Resource
    audit: str
    target: str
    operation: Operation = Operation.CREATE
    action: Action = Action.CREATE
    root: str | None = "input"
    details: Mapping[str, Any] = field(default_factory=dict)
    snapshot: Snapshot = _everything


@dataclass(frozen=True)
class NewRow:
    """One row of a batch: ``values`` by column, naming EVERY column of the table (its
    ``id`` included: a Core insert runs no model defaults), ``given`` the fields set from
    input with their input names (step 3), ``about`` the record it is about (as
    :attr:`WriteRequest.about`), ``details`` what the audit event says of it beside its
    id and values (plain JSON, e.g. its external id)."""

    values: Mapping[str, Any]
    given: Mapping[str, str]
    about: uuid.UUID | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


async def create_many(
    session: AsyncSession, principal: Principal, request: BatchRequest, rows: Sequence[NewRow]
) -> list[uuid.UUID | HubError]:
    """Create ``rows`` in the caller's transaction: the steps of the module's docstring,
    each once for the batch. Returns, in order, each row's id, or the error the same row
    would have met in :func:`create` (NOT_FOUND for a record about something the caller
    cannot see, FORBIDDEN without a grant, INVALID_INPUT naming the fields it may not
    set): such rows are not written and the others are.

    Raises :class:`~hub.errors.ForbiddenError` when a row written fails the policy's
    ``check`` (step 5), and whatever the database raises: the rows are then written but
    not audited, and the caller must roll back (a savepoint around the call lets it try
    the rows one by one with :func:`create` and keep the rest of its transaction).

    Inside :func:`records_deferred`, step 6 (the audit event and the outbox events) is
    left for the end of that block.
    """
    if request.action is not Action.CREATE:
        raise ValueError("create_many creates: its action is create")
    outcome: list[uuid.UUID | HubError] = [_refusal] * len(rows)
    refused = await _authorize_many(session, principal, request, rows)
    presets = access.presets(principal, request.resource, request.action)
    accepted: list[tuple[int, Mapping[str, Any]]] = []
    for i, row in enumerate(rows):
        problem = refused.get(i)
        if problem is not None:
            outcome[i] = problem
            continue
        # Presets last: what the policy forces wins over what was asked for.
        accepted.append((i, {**row.values, **presets} if presets else row.values))
    if not accepted:
        return outcome
    model: Any = MODELS[request.resource]
    columns = {column.name for column in table_columns(model)}
    for _, values in accepted:
        if values.keys() != columns:
            missing = sorted(columns - values.keys()) or sorted(values.keys() - columns)
            raise ValueError(
                f"a batch row must name every column of {model.__tablename__}: {', '.join(missing)}"
            )
    await session.flush()  # what the session holds goes first, as in create
    await insert_rows(session, model.__table__, [values for _, values in accepted])
    ids = [values["id"] for _, values in accepted]
    await _check_many(session, principal, request, ids)
    written = [(rows[i], v) for i, v in accepted]
    deferred: list[Callable[[], Awaitable[None]]] | None = session.info.get(_DEFERRED)
    if deferred is None:
        await _record_many(session, principal, request, written)
    else:
        deferred.append(functools.partial(_record_many, session, principal, request, written))
    for (i, _), row_id in zip(accepted, ids, strict=True):
        outcome[i] = row_id
    return outcome


_refusal = HubError("not written")


async def _authorize_many(
    session: AsyncSession, principal: Principal, request: BatchRequest, rows: Sequence[NewRow]
) -> dict[int, HubError]:
    """Steps 1 and 3 for each row, as :func:`create` would meet them, with one query for
    the visibility of every record the rows are about and one field check per distinct
    set of fields: index -> refusal."""
    denied: HubError | None = None
    try:
        access.require(principal, request.resource, request.action)
    except HubError as error:
        denied = error
    visible: set[uuid.UUID] = set()
    parent: Resource | None = None
    hidden_first = False
    abouts = {row.about for row in rows if row.about is not None}
    if abouts:
        parent = parent_of(request.resource)
        # As Access.target: without read access to the parent, its existence must not be
        # revealed either: the grant is checked first.
        hidden_first = not principal.has_scope(REQUIRED_SCOPE[(parent, Action.READ)])
        parent_model: Any = MODELS[parent]
        condition = access.rules.row_filter(principal, parent)
        dialect = session.get_bind().dialect.name
        # Built once per row filter, not per batch, and run by the driver
        # (hub.bulk.built_once, Prebuilt).
        statement = built_once(
            ("hub.access.pipeline visible", parent, dialect),
            condition,
            lambda: Prebuilt(
                select(parent_model.id).where(any_param(dialect, parent_model.id, "ids"), condition)
            ),
        )
        wanted = sorted(abouts)
        for start in range(0, len(wanted), _IN_CHUNK):
            found = await statement.rows(session, {"ids": wanted[start : start + _IN_CHUNK]})
            visible.update(row[0] for row in found)
    checked: dict[tuple[tuple[str, str], ...], HubError | None] = {}
    by_object: dict[int, HubError | None] = {}
    refused: dict[int, HubError] = {}
    for i, row in enumerate(rows):
        if i and not i % TURN_EVERY:
            await take_turn()
        if row.about is not None and denied is not None and hidden_first:
            refused[i] = denied
        elif row.about is not None and row.about not in visible:
            assert parent is not None
            refused[i] = NotFoundError(f"no such {parent.value.lower()}")
        elif denied is not None:
            refused[i] = denied
        else:
            # Callers share one mapping between rows setting the same fields: by identity
            # first (the rows hold their mappings for the whole call), then by content.
            if id(row.given) in by_object:
                problem = by_object[id(row.given)]
            else:
                key = tuple(sorted(row.given.items()))
                if key not in checked:
                    try:
                        access.check_fields(
                            principal, request.resource, request.action, row.given, request.root
                        )
                        checked[key] = None
                    except HubError as error:
                        checked[key] = error
                problem = by_object[id(row.given)] = checked[key]
            if problem is not None:
                refused[i] = problem
    return refused


async def _check_many(
    session: AsyncSession, principal: Principal, request: BatchRequest, ids: Sequence[uuid.UUID]
) -> None:
    """Step 5 for every row written, in one query per chunk of ids: the rows that do NOT
    satisfy the check are counted (none may)."""
    check = access.rules.write_check(principal, request.resource, request.action)
    if isinstance(check, True_):
        return  # a grant without a check accepts any row
    model: Any = MODELS[request.resource]
    for start in range(0, len(ids), _IN_CHUNK):
        failing = await session.execute(
            select(model.id)
            .where(any_of(session, model.id, ids[start : start + _IN_CHUNK]), ~check)
            .limit(1)
        )
        if failing.first() is not None:
            raise ForbiddenError(
                f"the sharing policy does not let you leave this {request.resource} record "
                "like this"
            )


async def _record_many(
    session: AsyncSession,
    principal: Principal,
    request: BatchRequest,
    written: Sequence[tuple[NewRow, Mapping[str, Any]]],
) -> None:
    """Step 6 for the batch: one audit event listing each row (its id, its ``details``
    and its values as :func:`hub.audit.field_changes` would show them: sensitive ones as
    keyed hashes, empty ones left out), then one outbox event per row."""
    resource = request.resource.value
    listed: list[dict[str, Any]] = []
    events: list[tuple[uuid.UUID, list[str], int | None]] = []
    fields_of: dict[frozenset[str], list[str]] = {}
    listing = _Listing(written[0][1].keys() if written else ())
    for n, (row, values) in enumerate(written, start=1):
        if not n % TURN_EVERY:
            await take_turn()
        after = request.snapshot(values)
        row_id = values["id"]
        entry: dict[str, Any] | None = None
        if listing.plain:
            try:
                shown = listing.values(after)
                details = _plain_dict(row.details) if row.details else {}
                entry = {"id": listing.text(row_id), **details, "values": shown}
            except _NotPlain:
                # Listed as it is from here on, for the append to normalise the standard
                # way (which leaves the plain rows before alone).
                listing.plain = False
        if entry is None:
            shown, _ = _shown(after, plain=False)
            entry = {"id": row_id, **row.details, "values": shown}
        listed.append(entry)
        # The fields an event names depend only on which are set (a create).
        key = frozenset(shown)
        names = fields_of.get(key)
        if names is None:
            names = fields_of[key] = list(changes.changed_fields(resource, {}, after))
        events.append((row_id, names, after.get("version")))
    head = {"resource": resource, **request.details, "count": len(listed)}
    entry_ = audit.entry_for(principal, request.audit, request.target, {**head, "records": listed})
    if listing.plain:
        # Plain JSON already (what the standard encoder writes with hub.plainjson.plain:
        # no float got here); otherwise the append normalises the details the standard way.
        with contextlib.suppress(_NotPlain):
            entry_ = replace(entry_, details={**_plain_dict(head), "records": listed}, plain=True)
    await _wait_turn(session)
    await audit.append_many(session, [entry_])
    # The audit append took the lock the outbox's numbers are taken under.
    await outbox.emit_batch(
        session, resource, request.operation, events, actor=audit.actor_of(principal), locked=True
    )


class _Listing:
    """A batch's rows made plain for its audit event, as :func:`_shown` makes them with
    ``plain``, in one pass a row with the checks ordered by what rows hold most: the
    text of a UUID or a time is made once per distinct value of the batch (the
    organization, the batch's ``now`` and the customers recur; each row's own id is
    made once and found again for its entry). ``plain`` turns off for good at the first
    value with no exact plain form (:class:`_NotPlain`)."""

    __slots__ = ("hidden", "memo", "plain")

    def __init__(self, names: Iterable[str]) -> None:
        self.memo: dict[Any, str] = {}
        self.hidden = audit.SENSITIVE_FIELDS.intersection(names)
        self.plain = True

    def text(self, value: Any) -> Any:
        """A UUID's (or a time's) plain text, remembered; any other value made plain."""
        found = self.memo.get(value)
        if found is not None:
            return found
        kind = type(value)
        if isinstance(value, uuid.UUID):  # a driver's subclass too (asyncpg's)
            found = self.memo[value] = str(value)
            return found
        if kind is datetime:
            found = (value.astimezone(UTC) if value.tzinfo else value).isoformat()
            self.memo[value] = found
            return found
        return _plain(value)

    def values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """One row's values as listed (see :func:`_shown`); raises :class:`_NotPlain`."""
        shown: dict[str, Any] = {}
        memo = self.memo
        hidden = self.hidden
        for name, value in values.items():
            if value is None:
                continue
            if hidden and name in hidden:  # a keyed hash, as field_changes shows it
                shown[name] = audit.field_changes({}, {name: value})[name]["after"]
                continue
            kind = type(value)
            if kind is str or kind is bool or (kind is int and -_INT64 <= value < _INT64):
                shown[name] = value
            elif kind is list and {*map(type, value)} <= _TEXT_ONLY:
                shown[name] = list(value)
            elif kind is datetime or isinstance(value, uuid.UUID):
                # The customers' ids come from the driver as its UUID subclass.
                found = memo.get(value)
                shown[name] = found if found is not None else self.text(value)
            else:
                shown[name] = _plain(value)
        return shown


_TEXT_ONLY = frozenset({str})


def _shown(values: Mapping[str, Any], *, plain: bool) -> tuple[dict[str, Any], bool]:
    """A row's values as a batch's audit event lists them (what :func:`hub.audit.
    field_changes` shows as their change from nothing: sensitive ones as keyed hashes,
    empty ones left out), and whether they are plain JSON. With ``plain``, they are made
    plain here, value by value, as :func:`hub.plainjson.plain` makes them for the
    standard encoder (UUIDs, a driver's subclass too, as text, times in UTC ISO 8601,
    tuples as lists): no second pass over the batch. A float (or an integer beyond 64
    bits) has no exact form on this path: ``False`` then, and the values left as they
    are for the append to normalise the standard way (which leaves plain ones alone)."""
    shown: dict[str, Any] = {}
    sensitive = audit.SENSITIVE_FIELDS
    for name, value in values.items():
        if value is None:
            continue
        kind = type(value)
        if name in sensitive:  # a keyed hash, as field_changes shows it
            value = audit.field_changes({}, {name: value})[name]["after"]
        elif kind is str or kind is bool or not plain:
            pass
        elif isinstance(value, uuid.UUID):
            value = str(value)
        elif kind is datetime:
            value = (value.astimezone(UTC) if value.tzinfo else value).isoformat()
        else:
            try:
                value = _plain(value)
            except _NotPlain:
                plain = False
        shown[name] = value
    return shown, plain


class _NotPlain(Exception):
    """A value with no exact plain JSON form for the fast path (a float, a huge int)."""


_INT64 = 2**63


def _plain_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping made plain (:func:`_plain`), the values a row holds most often inline:
    this runs for every value of every row of a batch."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = type(value)
        if type(key) is not str:
            raise _NotPlain
        if kind is str or value is None or kind is bool:
            out[key] = value
        elif kind is uuid.UUID:
            out[key] = str(value)
        elif kind is datetime:
            # hub.plainjson.plain's form: UTC when aware.
            out[key] = (value.astimezone(UTC) if value.tzinfo else value).isoformat()
        elif kind is int and -_INT64 <= value < _INT64:
            out[key] = value
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """``value`` as plain JSON (see :attr:`hub.audit.Entry.plain`): the form
    :func:`hub.plainjson.plain` gives the standard library's encoder. The common types
    are tested first by identity: this runs for every value of every row of a batch."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_INT64 <= value < _INT64:
            return value
        raise _NotPlain
    if kind is uuid.UUID:
        return str(value)
    if kind is dict:
        return _plain_dict(value)
    if kind is list:
        return [_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, str | int):  # subclasses of the plain types
        return _plain(str(value) if isinstance(value, str) else int(value))
    if isinstance(value, Mapping):
        return _plain(dict(value))
    if isinstance(value, tuple):  # the standard encoder writes a tuple as a list, in order
        return [_plain(item) for item in value]
    if isinstance(value, uuid.UUID | datetime | Decimal | set | frozenset):
        return _plain(plain(value))
    raise _NotPlain


# --- writers in turn -----------------------------------------------------------------------

_TURN = "hub.access.pipeline.turn"
"""The key of :func:`wait_turn_before_record`'s callable in a session's ``info``."""


def wait_turn_before_record(session: AsyncSession, turn: Callable[[], Awaitable[None]]) -> None:
    """Make every write of ``session``'s transaction await ``turn()`` just before step 6
    (:func:`create`, :func:`update`, :func:`create_many`), the first step that takes the
    audit chain's lock (held until commit; the outbox numbers its events under it).

    For a writer running several transactions at once that must commit them in order (a
    sync run's batches overlapping: each batch's lookups, rows and ``COPY`` while the one
    before it commits): ``turn`` returns once the transaction before has committed. It
    must be called before the lock, not after: a later transaction holding the lock
    while it waits, in the hub, for an earlier one that waits, in the database, for the
    lock is a deadlock neither side can see. ``turn`` may be called many times (each
    write of the transaction calls it); it raises when the transaction before failed,
    and this one must then roll back.

    Example::

        async with database.transaction() as session:
            pipeline.wait_turn_before_record(session, previous_batch.committed)
            await pipeline.create_many(session, principal, request, rows)
    """
    session.info[_TURN] = turn


async def _wait_turn(session: AsyncSession) -> None:
    turn = session.info.get(_TURN)
    if turn is not None:
        await turn()


_DEFERRED = "hub.access.pipeline.deferred"
"""The key of :func:`records_deferred`'s list of pending steps in a session's ``info``."""


@contextlib.asynccontextmanager
async def records_deferred(session: AsyncSession) -> AsyncIterator[None]:
    """Within the block, :func:`create_many` leaves its step 6 (the batch's audit event
    and outbox events) for the end of the block, where the pending steps run in order.

    For a bulk writer whose own rows depend on the rows written (a sync run's links and
    dead letters) and that would rather write them *before* the audit chain's lock,
    which is held from step 6 until commit and serialises every writer of the hub: the
    shorter that hold, the sooner the next writer goes. A single-record write in the
    block (:func:`create`, :func:`update`) first runs the steps pending before its own
    step 6, so events keep the order of the writes. When the block raises, the pending
    steps do not run, and the caller's transaction must roll back (rows written but not
    audited must never commit).

    Example::

        async with database.transaction() as session:
            async with pipeline.records_deferred(session):
                ids = await pipeline.create_many(session, principal, request, rows)
                await store_links(session, ids)  # before the audit lock
            # the audit event and the outbox events are written here
    """
    if _DEFERRED in session.info:
        raise RuntimeError("records_deferred blocks do not nest")
    session.info[_DEFERRED] = []
    try:
        yield
        await _record_deferred(session)
    finally:
        session.info.pop(_DEFERRED, None)


async def _record_deferred(session: AsyncSession) -> None:
    pending: list[Callable[[], Awaitable[None]]] | None = session.info.get(_DEFERRED)
    while pending:
        await pending.pop(0)()


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
    await _record_deferred(session)  # the writes before this one are recorded first
    await _wait_turn(session)
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
