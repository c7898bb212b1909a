"""The append-only, hash-chained audit log (DESIGN §3 AuditEvent).

Every event carries ``seq`` (1, 2, 3, ... without gaps), ``prev_hash`` (the ``hash`` of
event ``seq - 1``; 64 zeros for the first) and ``hash`` = SHA-256 of ``prev_hash`` and the
event's canonical JSON. Changing a row breaks its own hash; deleting or reordering rows
breaks the ``seq``/``prev_hash`` links; :func:`verify_chain` names the first event where
the chain breaks. Removing the *newest* events breaks no link: every append batch also
moves a signed checkpoint of the head kept outside the table (:mod:`hub.audit_anchor`),
and :mod:`hub.audit_verify` checks the chain against it.

Appending is serialised per database so that the chain never forks: PostgreSQL takes a
transaction-scoped advisory lock (released at commit, so appends from concurrent writers
queue briefly at their commit point); SQLite has one writer at a time, and the unique
``seq`` turns any race into a failed, rolled-back transaction rather than a fork.
Append late in a transaction, so the lock is held for as little time as possible.
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import hashlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import orjson
from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit_anchor
from hub.audit_anchor import Checkpoint, Finding, Head
from hub.bulk import insert_rows
from hub.db import serialise
from hub.models import AuditEvent
from hub.models._sealed import vault
from hub.models._types import new_id, utcnow
from hub.pagination import Ordering, Page, fetch_page
from hub.plainjson import plain
from hub.principal import Principal

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_TABLE = cast(Table, AuditEvent.__table__)  # type: ignore[attr-defined]  # for hub.bulk

# Any constant identifies the chain's lock; this one spells "audit".
LOCK_KEY = 0x6175646974
"""The lock every audit append holds until commit (:func:`hub.db.serialise`); the outbox
numbers its events under it too (:mod:`hub.outbox`)."""
ANCHOR_ACTOR = "hub"
"""Who an ``audit.anchor`` event names when an append found the anchor wanting."""

SENSITIVE_FIELDS = frozenset({"email", "phone", "email_index", "phone_index"})
"""Fields whose values the log never holds in clear (see :func:`field_changes`)."""


def normalise_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """The details as the database returns them (plain JSON), so the hash computed at
    append time equals the one recomputed from the stored row."""
    result: dict[str, Any] = json.loads(json.dumps(details, default=plain))
    return result


def event_hash(
    *,
    seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    organization: str | None,
    client: str | None,
    action: str,
    target: str,
    details: Mapping[str, Any] | orjson.Fragment,
    plain_details: bool = False,
) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON content.

    ``plain_details``: the details hold only strings, 64-bit integers, booleans, nulls,
    lists and string-keyed objects (see :attr:`Entry.plain`). Their canonical JSON is then
    encoded by orjson, which writes exactly the bytes of the standard library's canonical
    form for such values (sorted keys, no spaces, no ASCII escaping; a test holds the two
    equal) at a fraction of the cost: a partner page's read event lists hundreds of ids.
    Such details may be given encoded already, as an ``orjson.Fragment`` of their
    canonical JSON (sorted keys).
    """
    content = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "organization": organization,
        "client": client,
        "action": action,
        "target": target,
        "details": details,
    }
    canonical = None
    if plain_details:
        # orjson refuses what is not plain after all (a str subclass as a key, an integer
        # beyond 64 bits): the standard library's encoding then decides, as it always may.
        with contextlib.suppress(TypeError):
            canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    if canonical is None:
        if isinstance(details, orjson.Fragment):
            content["details"] = orjson.loads(details.contents)
        canonical = json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def _canonical_fragment(details: Mapping[str, Any]) -> orjson.Fragment | None:
    """Plain details as their canonical JSON (what :func:`event_hash` hashes), ready to be
    both hashed and stored (the JSON column writes a fragment as it is); ``None`` if
    orjson refuses them (they were not plain after all: the standard library decides)."""
    try:
        return orjson.Fragment(orjson.dumps(details, option=orjson.OPT_SORT_KEYS))
    except TypeError:
        return None


def _row_hash(event: AuditEvent) -> str:
    return event_hash(
        seq=event.seq,
        prev_hash=event.prev_hash,
        at=event.at,
        actor=event.actor,
        organization=event.organization,
        client=event.client,
        action=event.action,
        target=event.target,
        details=event.details,
    )


@dataclass(frozen=True)
class Entry:
    """One event to append: what happened, to what, and its details (plain JSON)."""

    actor: str
    action: str
    target: str
    details: Mapping[str, Any]
    organization: str | None = None
    client: str | None = None
    at: datetime | None = None
    plain: bool = False
    """The details are plain JSON already, as the database returns them: strings, 64-bit
    integers, booleans, nulls, lists and string-keyed objects, nothing else (no floats, no
    tuples, no dates). They are then neither normalised nor hashed through the standard
    library's encoder (:func:`event_hash`). Set by producers that build such details, the
    read audit above all; when in doubt, leave it off."""


async def _lock_and_head(session: AsyncSession) -> tuple[Head, Checkpoint | None]:
    await serialise(session, LOCK_KEY)  # the reads below must not go stale
    tail = (
        await session.execute(
            select(col(AuditEvent.seq), col(AuditEvent.hash))
            .order_by(col(AuditEvent.seq).desc())
            .limit(1)
        )
    ).first()
    head = Head(0, GENESIS) if tail is None else Head(int(tail[0]), str(tail[1]))
    return head, await audit_anchor.read(session)


def _anchor_entry(finding: Finding, actor: str) -> Entry:
    return Entry(
        actor=actor,
        action=audit_anchor.ANCHOR_ACTION,
        target=audit_anchor.ANCHOR_TARGET,
        details=finding.details(),
    )


def _report(finding: Finding, seq: int) -> None:
    # The finding goes into the chain with the batch; the log line is for whoever
    # watches the hub (a batch that rolls back finds it again next time).
    log = logger.error if finding.tampering else logger.warning
    log("audit: %s; recording it as event %d (see `hub audit verify`)", finding.describe(), seq)


async def _append(
    session: AsyncSession, entries: list[Entry], *, key: bytes | None, actor: str
) -> tuple[list[dict[str, Any]], Checkpoint, Finding | None]:
    """Append ``entries`` and anchor the new head, in the caller's transaction.

    When the anchor does not vouch for the table's head, an ``audit.anchor`` event
    recording why goes first (by ``actor``); the rows of ``entries``' events are returned
    (column values by name). They are inserted in one bulk statement, no ORM object per
    event: the read audit appends a batch of events with hundreds of ids each."""
    key = key or audit_anchor.current_key()  # before the lock: a missing key fails fast
    head, anchor = await _lock_and_head(session)
    finding = await audit_anchor.examine(session, key, anchor, head)
    if finding is not None:
        entries = [_anchor_entry(finding, actor), *entries]
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []  # the rows as inserted: plain details encoded once
    for entry in entries:
        seq += 1
        # Microsecond precision is what both backends keep.
        at = (entry.at or utcnow()).astimezone(UTC)
        details = dict(entry.details) if entry.plain else normalise_details(entry.details)
        # Plain details are encoded once, canonically, for the hash and the column alike
        # (a read event is kilobytes of ids, and every partner page appends one).
        encoded = _canonical_fragment(details) if entry.plain else None
        row: dict[str, Any] = {
            "id": new_id(),
            "seq": seq,
            "at": at,
            "actor": entry.actor[:200],
            "organization": entry.organization,
            "client": entry.client,
            "action": entry.action,
            "target": entry.target[:200],
            "details": details,
            "prev_hash": prev,
        }
        prev = row["hash"] = event_hash(
            seq=seq,
            prev_hash=row["prev_hash"],
            at=at,
            actor=row["actor"],
            organization=row["organization"],
            client=row["client"],
            action=row["action"],
            target=row["target"],
            details=details if encoded is None else encoded,
            plain_details=encoded is not None,
        )
        rows.append(row)
        stored.append(row if encoded is None else {**row, "details": encoded})
    if rows:
        await session.flush()  # the change being audited goes first, as it always has
        # One COPY on PostgreSQL for a batch of reads, else one executemany: the table's
        # columns, not the ORM's bulk insert (which processes each value in Python).
        await insert_rows(session, _TABLE, stored)
    if finding is not None:
        _report(finding, rows[0]["seq"])
    if anchor is not None and not rows:
        return [], anchor, None  # nothing to anchor anew
    checkpoint = Checkpoint.sign(key, Head(seq, prev))
    await audit_anchor.write(session, checkpoint)
    return rows[1:] if finding is not None else rows, checkpoint, finding


async def append_many(session: AsyncSession, entries: Iterable[Entry]) -> int:
    """Append ``entries`` to the chain in order, in the caller's transaction, and move
    the anchor to the new head (:mod:`hub.audit_anchor`); returns how many. For
    producers that need no :class:`AuditEvent` back (the read audit's batches)."""
    entries = list(entries)
    if not entries:
        return 0
    rows, _, _ = await _append(session, entries, key=None, actor=ANCHOR_ACTOR)
    return len(rows)


async def append_all(session: AsyncSession, entries: Iterable[Entry]) -> list[AuditEvent]:
    """:func:`append_many`, returning the events appended."""
    entries = list(entries)
    if not entries:
        return []
    rows, _, _ = await _append(session, entries, key=None, actor=ANCHOR_ACTOR)
    return [AuditEvent(**row) for row in rows]


async def append(session: AsyncSession, entry: Entry) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction."""
    return (await append_all(session, [entry]))[0]


async def anchor_head(
    session: AsyncSession, key: bytes, *, actor: str
) -> tuple[Checkpoint, Finding | None]:
    """The checkpoint of the chain's head, anchoring it first when the anchor does not
    vouch for it (what an append would record, recorded now by ``actor``); an empty,
    never-anchored log gets a checkpoint of seq 0."""
    _, checkpoint, finding = await _append(session, [], key=key, actor=actor)
    return checkpoint, finding


def actor_of(principal: Principal) -> str:
    """How the log names a caller: its organization and client, and the staff user a
    console token acts for."""
    actor = f"{principal.organization_slug}/{principal.client_id}"
    return actor if principal.subject is None else f"{actor}/{principal.subject}"


def entry_for(principal: Principal, action: str, target: str, details: Mapping[str, Any]) -> Entry:
    return Entry(
        actor=actor_of(principal),
        organization=principal.organization_slug,
        client=principal.client_id,
        action=action,
        target=target,
        details=details,
    )


def shell_actor() -> str:
    """How the log names whoever runs the ``hub`` CLI: their operating-system account."""
    return f"cli:{getpass.getuser()}"


def shell_entry(action: str, target: str, details: Mapping[str, Any]) -> Entry:
    """An administrative change made with the ``hub`` CLI."""
    return Entry(actor=shell_actor(), action=action, target=target, details=details)


async def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    target: str,
    details: Mapping[str, Any],
) -> AuditEvent:
    """Audit one change the principal made, in the change's transaction."""
    return await append(session, entry_for(principal, action, target, details))


def _shown(name: str, value: Any) -> Any:
    if value is None or name not in SENSITIVE_FIELDS:
        return value
    return vault.value_hash(str(value))


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"before": x, "after": y}}`` for every field whose value changed;
    sensitive values appear as keyed hashes, never in clear."""
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"before": _shown(name, old), "after": _shown(name, new)}
    return changes


async def record_write(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource: str,
    record_id: uuid.UUID,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    **extra: Any,
) -> AuditEvent:
    """Audit one write: ``action`` (e.g. ``customer.update``) with its field diff."""
    details = {"resource": resource, "id": record_id, "changes": field_changes(before, after)}
    details.update(extra)
    return await record(session, principal, action, f"{resource}:{record_id}", details)


@dataclass(frozen=True)
class ChainBreak:
    """Where verification failed: the first event that does not check out."""

    seq: int
    event_id: uuid.UUID | None
    reason: str


@dataclass(frozen=True)
class ChainWalk:
    """What a walk of the whole chain found: events checked, the first break, the last
    event checked (its head), and the ``audit.anchor`` events met on the way."""

    checked: int
    broken: ChainBreak | None
    head: Head
    anchor_events: tuple[EventView, ...]


async def walk_chain(
    session: AsyncSession, *, batch: int = 5000, progress: Callable[[int], None] | None = None
) -> ChainWalk:
    """Walk the whole chain in ``seq`` order, recomputing every hash, up to the first
    break. ``progress`` is called with the number of events checked after each batch (the
    CLI shows it for long chains)."""
    expected_seq, prev = 1, GENESIS
    checked = 0
    last = 0
    anchor_events: list[EventView] = []

    def result(broken: ChainBreak | None) -> ChainWalk:
        return ChainWalk(checked, broken, Head(expected_seq - 1, prev), tuple(anchor_events))

    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(col(AuditEvent.seq) > last)
                    .order_by(col(AuditEvent.seq))
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return result(None)
        for event in rows:
            if event.seq != expected_seq:
                reason = (
                    f"event {expected_seq} is missing (deleted?); the next one is {event.seq}"
                    if event.seq > expected_seq
                    else f"event numbered {event.seq} appears out of order"
                )
                return result(ChainBreak(expected_seq, event.id, reason))
            if event.prev_hash != prev:
                return result(
                    ChainBreak(
                        event.seq,
                        event.id,
                        "its prev_hash does not match the event before it "
                        "(an earlier event was removed, replaced or reordered)",
                    )
                )
            if _row_hash(event) != event.hash:
                return result(
                    ChainBreak(
                        event.seq, event.id, "its content does not match its hash (modified)"
                    )
                )
            if event.action == audit_anchor.ANCHOR_ACTION:
                anchor_events.append(EventView.of(event))
            prev = event.hash
            expected_seq += 1
            checked += 1
        last = rows[-1].seq
        session.expunge_all()
        if progress is not None:
            progress(checked)


async def verify_chain(
    session: AsyncSession, *, batch: int = 5000, progress: Callable[[int], None] | None = None
) -> tuple[int, ChainBreak | None]:
    """Walk the whole chain; returns (events checked, first break). A shorter chain
    checks out too: :func:`hub.audit_verify.verify_log` also checks the anchor."""
    walk = await walk_chain(session, batch=batch, progress=progress)
    return walk.checked, walk.broken


async def count_events(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one())


# --- reading the log ---------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Which events to list; every given condition must hold (``until`` is exclusive)."""

    action: str | None = None
    organization: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.action is not None:
            conditions.append(col(AuditEvent.action) == self.action)
        if self.organization is not None:
            conditions.append(col(AuditEvent.organization) == self.organization)
        if self.target is not None:
            conditions.append(col(AuditEvent.target) == self.target)
        if self.since is not None:
            conditions.append(col(AuditEvent.at) >= self.since)
        if self.until is not None:
            conditions.append(col(AuditEvent.at) < self.until)
        return conditions


NEWEST_FIRST = Ordering(
    key="audit:seq:desc",
    columns=(AuditEvent.seq,),  # type: ignore[arg-type]
    types=(int,),
    descending=True,
)
"""The order of the ``auditEvents`` connection (``seq`` is unique, so it is a keyset)."""


@dataclass(frozen=True)
class EventView:
    """One audit event as administrators read and export it."""

    seq: int
    at: datetime
    actor: str
    organization: str | None
    client: str | None
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: Any) -> EventView:
        return cls(
            row.seq,
            row.at,
            row.actor,
            row.organization,
            row.client,
            row.action,
            row.target,
            dict(row.details),
            row.prev_hash,
            row.hash,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "organization": self.organization,
            "client": self.client,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


EVENT_COLUMNS = (
    "seq",
    "at",
    "actor",
    "organization",
    "client",
    "action",
    "target",
    "details",
    "prev_hash",
    "hash",
)


def _event_columns() -> list[Any]:
    return [getattr(AuditEvent, name) for name in EVENT_COLUMNS]


async def events_page(
    session: AsyncSession, flt: AuditFilter, *, size: int, after: str | None
) -> Page[EventView]:
    """One page of events, newest first (no access check: :mod:`hub.admin.audit` checks)."""
    statement = select(*_event_columns()).where(*flt.conditions())
    return await fetch_page(
        session,
        statement,
        NEWEST_FIRST,
        size=size,
        after=after,
        project=lambda rows: [EventView.of(row) for row in rows],
    )


async def count_matching(session: AsyncSession, flt: AuditFilter) -> int:
    statement = select(func.count()).select_from(AuditEvent).where(*flt.conditions())
    return int((await session.execute(statement)).scalar_one())


async def iter_events(
    session: AsyncSession, flt: AuditFilter | None = None, *, batch: int = 2000
) -> AsyncIterator[EventView]:
    """Every matching event in chain order, read in batches (exports of long logs)."""
    conditions = (flt or AuditFilter()).conditions()
    last = 0
    while True:
        statement = (
            select(*_event_columns())
            .where(col(AuditEvent.seq) > last, *conditions)
            .order_by(col(AuditEvent.seq))
            .limit(batch)
        )
        rows = (await session.execute(statement)).all()
        if not rows:
            return
        for row in rows:
            yield EventView.of(row)
        last = rows[-1].seq


# --- exports ----------------------------------------------------------------------------

ExportFormat = Literal["csv", "json"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def render(records: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: ExportFormat) -> str:
    """Export rows (plain JSON values) as CSV (lists space-separated, objects as JSON)
    or as a JSON array."""
    if fmt == "json":
        return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(name)) for name in columns])
    return buffer.getvalue()
