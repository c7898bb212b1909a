"""Connectors as administrators see and change them (the GraphQL admin, schema/sync_admin).

Every function starts with :meth:`hub.access.Access.require_admin`, before reading
anything, so a caller who is not a hub administrator learns nothing (not even whether a
connector exists). Definitions are checked exactly as ``hub sync apply`` checks them
(:func:`hub.sync.config.parse_spec`): a mistake comes back as a user error whose path
names the key (``["input", "mapping", "kind", "map"]``). Every change is audited in its
transaction (``connector.create``, ``connector.update``, ``connector.disable``,
``connector.run``). Credentials are never shown: only their names.

Dead-letter replays are :mod:`hub.sync.replay`; runs started by an administrator run in
the server's background (:mod:`hub.workers`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from hub import audit
from hub.access import access
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.models import Organization
from hub.models._types import utcnow
from hub.models.sync import SyncCheckpoint, SyncConnector, SyncDeadLetter, SyncLease, SyncRun
from hub.pagination import Ordering, Page, fetch_page, page_size
from hub.principal import Principal
from hub.sync.config import parse_spec, save_connector
from hub.sync.errors import ConnectorConfigError

MAX_PAGE = 200
REDACTED = "***"
# Config keys whose values are secrets by their name (credentials belong in
# `credentials`, sealed; a definition that puts one in `config` is not shown it back).
_SECRET_KEY = re.compile(r"pass|secret|token|authori[sz]ation|api[-_]?key|private", re.I)
# user:password@ in a URL (a database URL in a sql connector's config).
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")

RUNS_NEWEST_FIRST = Ordering(
    key="sync_run:started_at:desc",
    columns=(SyncRun.started_at, SyncRun.id),  # type: ignore[arg-type]
    types=(datetime, uuid.UUID),
    descending=True,
)
LETTERS_NEWEST_FIRST = Ordering(
    key="sync_dead_letter:created_at:desc",
    columns=(SyncDeadLetter.created_at, SyncDeadLetter.id),  # type: ignore[arg-type]
    types=(datetime, uuid.UUID),
    descending=True,
)


@dataclass(frozen=True)
class RunView:
    """One run: its status, counts, duration and error."""

    id: uuid.UUID
    connector: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    read: int
    created: int
    updated: int
    unchanged: int
    queued: int
    dead_lettered: int
    error: str | None

    @classmethod
    def of(cls, row: Any, connector: str) -> RunView:
        """From a :class:`SyncRun` (or a row of its columns)."""
        return cls(
            id=row.id,
            connector=connector,
            status=row.status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_ms=row.duration_ms,
            read=row.read,
            created=row.created,
            updated=row.updated,
            unchanged=row.unchanged,
            queued=row.queued,
            dead_lettered=row.dead_lettered,
            error=row.error,
        )


@dataclass(frozen=True)
class ConnectorView:
    """A connector as administrators see it: its definition with secrets left out
    (``credential_names`` only; secret-looking ``config`` values as ``***``), its last
    run, its open dead letters and when its checkpoint last moved."""

    name: str
    kind: str
    resource: str
    organization: str
    schedule_seconds: int | None
    enabled: bool
    adhoc: bool
    config: dict[str, Any]
    mapping: dict[str, Any] | None
    credential_names: list[str]
    created_at: datetime
    updated_at: datetime
    last_run: RunView | None
    open_dead_letters: int
    checkpoint_at: datetime | None


@dataclass(frozen=True)
class DeadLetterView:
    """A record a connector could not store: why, where in its source, and the raw
    record as read (administrators only: it may hold contact details)."""

    id: uuid.UUID
    connector: str
    run_id: uuid.UUID
    position: str
    reason: str
    record: Any
    attempts: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, row: Any, connector: str) -> DeadLetterView:
        return cls(
            id=row.id,
            connector=connector,
            run_id=row.run_id,
            position=row.position,
            reason=row.reason,
            record=raw_record(row.record),
            attempts=row.attempts,
            created_at=row.created_at,
            updated_at=row.updated_at,
            resolved_at=row.resolved_at,
        )


def raw_record(text: str) -> Any:
    """The stored raw record (JSON text, as the runner wrote it) as data."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def redact(value: Any, key: str = "") -> Any:
    """``value`` with secrets replaced: values under secret-sounding keys, and the
    password of any URL."""
    if _SECRET_KEY.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", value)
    return value


def _credential_names(row: SyncConnector) -> list[str]:
    return [] if row.credentials is None else sorted(json.loads(row.credentials))


async def _views(
    session: AsyncSession, condition: ColumnElement[bool] | None = None
) -> list[ConnectorView]:
    """The connectors matching ``condition`` by name, each with its organization,
    checkpoint, last run and open dead letters: two statements however many there are."""
    ranked = select(
        SyncRun,
        func.row_number()
        .over(
            partition_by=col(SyncRun.connector_id),
            order_by=(col(SyncRun.started_at).desc(), col(SyncRun.id).desc()),
        )
        .label("newest"),
    ).subquery()
    last = aliased(SyncRun, ranked)
    statement = (
        select(SyncConnector, col(Organization.slug), col(SyncCheckpoint.updated_at), last)
        .join(Organization, col(Organization.id) == col(SyncConnector.organization_id))
        .outerjoin(SyncCheckpoint, col(SyncCheckpoint.connector_id) == col(SyncConnector.id))
        .outerjoin(
            last, and_(col(last.connector_id) == col(SyncConnector.id), ranked.c.newest == 1)
        )
        .order_by(col(SyncConnector.name))
    )
    if condition is not None:
        statement = statement.where(condition)
    rows = (await session.execute(statement)).all()
    if not rows:
        return []
    open_letters = dict(
        (
            await session.execute(
                select(col(SyncDeadLetter.connector_id), func.count())
                .where(
                    col(SyncDeadLetter.resolved_at).is_(None),
                    col(SyncDeadLetter.connector_id).in_([row[0].id for row in rows]),
                )
                .group_by(col(SyncDeadLetter.connector_id))
            )
        ).all()
    )
    return [
        ConnectorView(
            name=row.name,
            kind=row.kind,
            resource=row.resource,
            organization=slug,
            schedule_seconds=row.schedule_seconds,
            enabled=row.enabled,
            adhoc=row.adhoc,
            config=redact(dict(row.config)),
            mapping=None if row.mapping is None else dict(row.mapping),
            credential_names=_credential_names(row),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_run=None if run is None else RunView.of(run, row.name),
            open_dead_letters=int(open_letters.get(row.id, 0)),
            checkpoint_at=checkpoint_at,
        )
        for row, slug, checkpoint_at, run in rows
    ]


async def list_connectors(
    session: AsyncSession, principal: Principal, *, include_imports: bool = False
) -> list[ConnectorView]:
    """Every connector by name (``hub import``'s ad-hoc ones with ``include_imports``)."""
    access.require_admin(principal)
    return await _views(session, None if include_imports else col(SyncConnector.adhoc).is_(False))


async def get_connector(session: AsyncSession, principal: Principal, name: str) -> ConnectorView:
    access.require_admin(principal)
    return await _connector_view(session, name)


async def _connector_view(session: AsyncSession, name: str) -> ConnectorView:
    found = await _views(session, col(SyncConnector.name) == name)
    if not found:
        raise NotFoundError("no such connector")
    return found[0]


async def _row(session: AsyncSession, name: str) -> SyncConnector:
    found = await session.execute(select(SyncConnector).where(col(SyncConnector.name) == name))
    row = found.scalar_one_or_none()
    if row is None:
        raise NotFoundError("no such connector")
    return row


def _problem(error: ConnectorConfigError, where: str) -> FieldProblem:
    """``where.key.sub: message`` as a problem at ``[where, key, sub]``."""
    text = str(error)
    head, sep, message = text.partition(": ")
    if sep and (head == where or head.startswith(f"{where}.")):
        path = tuple(part for part in head.split(".") if part)
        return FieldProblem(path, message)
    if text.startswith("no organization"):
        return FieldProblem((where, "organization"), text, "NOT_FOUND")
    return FieldProblem((where,), text)


def _spec(definition: Mapping[str, Any], where: str) -> Any:
    try:
        return parse_spec(definition, where)
    except ConnectorConfigError as error:
        raise InvalidInputError([_problem(error, where)]) from None


def _details(spec: Any, changed: Sequence[str] | None = None) -> dict[str, Any]:
    """What the audit log keeps of a definition: never a credential's value."""
    details: dict[str, Any] = {
        "kind": spec.kind,
        "resource": spec.resource.value,
        "organization": spec.organization,
        "schedule_seconds": spec.schedule_seconds,
        "enabled": spec.enabled,
        "credentials": sorted(spec.credentials or {}),
    }
    if changed is not None:
        details["changed"] = sorted(changed)
    return details


async def _save(session: AsyncSession, spec: Any, where: str) -> SyncConnector:
    try:
        row, _ = await save_connector(session, spec)
    except ConnectorConfigError as error:
        raise InvalidInputError([_problem(error, where)]) from None
    return row


async def create_connector(
    session: AsyncSession, principal: Principal, definition: Mapping[str, Any]
) -> ConnectorView:
    """A new connector from a definition (the keys of a ``hub sync apply`` file)."""
    access.require_admin(principal)
    spec = _spec(definition, "input")
    taken = await session.execute(
        select(col(SyncConnector.id)).where(col(SyncConnector.name) == spec.name)
    )
    if taken.first() is not None:
        message = "a connector has this name (updateConnector changes it)"
        raise InvalidInputError([FieldProblem(("input", "name"), message, "TAKEN")])
    row = await _save(session, spec, "input")
    await audit.record(
        session, principal, "connector.create", f"connector:{row.name}", _details(spec)
    )
    return await _connector_view(session, row.name)


async def _definition(session: AsyncSession, row: SyncConnector) -> dict[str, Any]:
    """The stored definition, as :func:`parse_spec` reads one."""
    org = await session.get(Organization, row.organization_id)
    return {
        "name": row.name,
        "kind": row.kind,
        "resource": row.resource,
        "organization": "" if org is None else org.slug,
        "schedule": row.schedule_seconds,
        "enabled": row.enabled,
        "config": dict(row.config),
        "mapping": row.mapping,
        "credentials": None if row.credentials is None else json.loads(row.credentials),
    }


async def update_connector(
    session: AsyncSession, principal: Principal, name: str, patch: Mapping[str, Any]
) -> ConnectorView:
    """Change the keys given in ``patch`` (``None`` clears ``schedule``, ``mapping`` or
    ``credentials``; ``config`` and ``credentials`` are replaced whole). The result is
    checked as a whole definition. The checkpoint stays."""
    access.require_admin(principal)
    row = await _row(session, name)
    if "name" in patch:
        message = "a connector's name cannot change (create another)"
        raise InvalidInputError([FieldProblem(("patch", "name"), message, "NOT_ALLOWED")])
    definition = await _definition(session, row)
    definition.update(patch)
    spec = dataclasses.replace(_spec(definition, "patch"), adhoc=row.adhoc)
    await _save(session, spec, "patch")
    details = _details(spec, changed=list(patch))
    await audit.record(session, principal, "connector.update", f"connector:{name}", details)
    return await _connector_view(session, name)


async def disable_connector(
    session: AsyncSession, principal: Principal, name: str
) -> ConnectorView:
    """No more scheduled or requested runs (a run in progress finishes); ``updateConnector``
    with ``enabled: true`` turns it back on."""
    access.require_admin(principal)
    row = await _row(session, name)
    was_enabled = row.enabled
    row.enabled = False
    row.updated_at = utcnow()
    await session.flush()
    details = {"was_enabled": was_enabled}
    await audit.record(session, principal, "connector.disable", f"connector:{name}", details)
    return await _connector_view(session, name)


async def request_run(session: AsyncSession, principal: Principal, name: str) -> uuid.UUID:
    """Check that ``name`` may run now (it exists, is enabled and holds no live lease)
    and audit the request; returns the connector's id. The run itself starts after this
    transaction (:class:`hub.workers.ServerWorkers`)."""
    access.require_admin(principal)
    row = await _row(session, name)
    if not row.enabled:
        message = "the connector is disabled (updateConnector with enabled: true enables it)"
        raise InvalidInputError([FieldProblem(("name",), message, "DISABLED")])
    lease = await session.get(SyncLease, row.id)
    if lease is not None and lease.expires_at > utcnow():
        raise InvalidInputError([running_elsewhere(("name",))])
    await audit.record(session, principal, "connector.run", f"connector:{name}", {})
    return row.id


def running_elsewhere(path: tuple[str, ...]) -> FieldProblem:
    return FieldProblem(
        path, "the connector is running now (a run holds its lease); wait for it to end", "RUNNING"
    )


async def get_run(session: AsyncSession, run_id: uuid.UUID) -> RunView | None:
    found = await session.execute(
        select(SyncRun, col(SyncConnector.name))
        .join(SyncConnector, col(SyncConnector.id) == col(SyncRun.connector_id))
        .where(col(SyncRun.id) == run_id)
    )
    row = found.first()
    return None if row is None else RunView.of(row[0], row[1])


async def run_of_holder(session: AsyncSession, holder: str) -> RunView | None:
    """The run a runner (named by its lease holder) started, if it has."""
    found = await session.execute(
        select(SyncRun, col(SyncConnector.name))
        .join(SyncConnector, col(SyncConnector.id) == col(SyncRun.connector_id))
        .where(col(SyncRun.holder) == holder)
        .order_by(col(SyncRun.started_at).desc())
        .limit(1)
    )
    row = found.first()
    return None if row is None else RunView.of(row[0], row[1])


async def runs_page(
    session: AsyncSession,
    principal: Principal,
    connector: str,
    *,
    first: int | None,
    after: str | None,
) -> Page[RunView]:
    """A connector's runs, newest first."""
    access.require_admin(principal)
    row = await _row(session, connector)
    statement = select(*SyncRun.__table__.columns).where(  # type: ignore[attr-defined]
        col(SyncRun.connector_id) == row.id
    )
    return await fetch_page(
        session,
        statement,
        RUNS_NEWEST_FIRST,
        size=page_size(first, default=20, maximum=MAX_PAGE),
        after=after,
        project=lambda rows: [RunView.of(r, connector) for r in rows],
    )


async def dead_letters_page(
    session: AsyncSession,
    principal: Principal,
    connector: str,
    *,
    first: int | None,
    after: str | None,
    include_resolved: bool = False,
) -> Page[DeadLetterView]:
    """A connector's dead letters, newest first (open ones only, unless asked)."""
    access.require_admin(principal)
    row = await _row(session, connector)
    statement = select(*SyncDeadLetter.__table__.columns).where(  # type: ignore[attr-defined]
        col(SyncDeadLetter.connector_id) == row.id
    )
    if not include_resolved:
        statement = statement.where(col(SyncDeadLetter.resolved_at).is_(None))
    return await fetch_page(
        session,
        statement,
        LETTERS_NEWEST_FIRST,
        size=page_size(first, default=50, maximum=MAX_PAGE),
        after=after,
        project=lambda rows: [DeadLetterView.of(r, connector) for r in rows],
    )


__all__ = [
    "ConnectorView",
    "DeadLetterView",
    "RunView",
    "create_connector",
    "dead_letters_page",
    "disable_connector",
    "get_connector",
    "get_run",
    "list_connectors",
    "redact",
    "request_run",
    "run_of_holder",
    "running_elsewhere",
    "runs_page",
    "update_connector",
]
