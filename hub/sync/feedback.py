"""Feedback from another system: each record names its customer by one key, resolved as
identity resolution does (external reference, then email, then phone), among the
customers the connector's organization may see; it is then submitted (or, when the
connector stored the same external id before and the values changed, updated) through
the write pipeline as that organization.

New records of a batch are written together (:func:`hub.access.pipeline.create_many`:
one access decision per customer and field set, one INSERT, one ``check`` query, one
audit event listing them, their outbox events in one insert), in a savepoint: when the
database refuses the batch (or a row fails the policy's ``check``), the savepoint rolls
back and the batch's records are stored one by one through the single-record pipeline,
so the one at fault becomes a dead letter alone. Changed records (an update) always go
one by one: they are the exception in a sync."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from asyncpg.pgproto.pgproto import UUID as _UUID
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.access import Action, Resource, access, pipeline
from hub.access.pipeline import BatchRequest, NewRow, Update, WriteRequest
from hub.bulk import TURN_EVERY, Prebuilt, any_param, built_once, take_turn
from hub.errors import HubError
from hub.feedback import FeedbackSubmission, submit_feedback
from hub.models import Customer, ExternalRef, Feedback
from hub.models._types import utcnow
from hub.models.activity import FEEDBACK_STATUSES
from hub.outbox import Operation
from hub.sync.errors import transient
from hub.sync.feedback_values import CREATED_AT, CUSTOMER_KEYS, checked, plain
from hub.sync.target import (
    EXTERNAL_ID,
    Context,
    Item,
    Outcome,
    Stored,
    explain,
    input_names,
    refused_by_database,
)
from hub.vault import email_index, phone_index, vault

# The columns an update may change, with their input names.
_UPDATABLE = {
    "customer_id": "customerId",
    "channel": "channel",
    "kind": "kind",
    "scale": "scale",
    "score": "score",
    "text": "text",
    "product": "product",
    "tags": "tags",
    "visibility": "visibility",
    "created_at": CREATED_AT,
}
BATCH_AUDIT = "feedback.import"
"""The audit action of a batch of feedback created by a connector (one event listing the
records; see docs/sync.md)."""

logger = logging.getLogger(__name__)


class FeedbackTarget:
    resource = Resource.FEEDBACK
    # New feedback gets fresh ids and reads customers it does not change: batches may
    # overlap up to the audit append (hub.sync.runner._Turn).
    overlaps = True

    def __init__(self) -> None:
        columns = input_names(Resource.FEEDBACK, "SubmitFeedbackInput")
        columns.pop("externalRef", None)  # the record's external_id is its reference
        self.columns = columns
        self.fields = frozenset({*columns, CREATED_AT, EXTERNAL_ID, *CUSTOMER_KEYS})

    def prepare(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        # The fast path for the usual record, the reference for the rest and for every
        # problem (hub.sync.feedback_values).
        fast = plain(values, self.columns)
        if fast is not None:
            return fast, []
        return checked(values, self.columns)

    async def store(
        self, session: AsyncSession, run: Context, items: Sequence[Item]
    ) -> list[Stored]:
        customers = await _resolve(session, run, items)
        results: list[Stored | None] = [None] * len(items)
        new: list[tuple[int, Item, uuid.UUID]] = []
        for i, item in enumerate(items):
            customer_id = customers.get(id(item))
            if customer_id is None:
                results[i] = Stored(None, reason=_unmatched(item, run))
            elif item.record_id is None and run.bulk:
                new.append((i, item, customer_id))
        if new:
            stored = await self._store_many(session, run, [(it, c) for _, it, c in new])
            if stored is not None:
                for (i, _, _), done in zip(new, stored, strict=True):
                    results[i] = done
        for i, item in enumerate(items):
            if results[i] is not None:
                continue
            try:
                async with session.begin_nested():
                    results[i] = await self._store_one(session, run, item, customers[id(item)])
            except HubError as error:
                results[i] = Stored(None, reason=explain(error))
            except DBAPIError as error:
                if transient(error):
                    raise  # the whole batch is retried
                # Refused by the database alone (a constraint or trigger our validation
                # does not know): this record is a dead letter, the batch goes on.
                results[i] = Stored(None, reason=refused_by_database(error))
        return [done for done in results if done is not None]

    async def _store_many(
        self, session: AsyncSession, run: Context, items: Sequence[tuple[Item, uuid.UUID]]
    ) -> list[Stored] | None:
        """New records in one go (the module's docstring), or ``None`` when the database
        or the policy's ``check`` refused the batch (rolled back: store them one by one)."""
        principal = run.principal
        now = utcnow()
        rows: list[NewRow] = []
        organization = principal.organization_id
        status = FEEDBACK_STATUSES[0]
        ids = _new_ids(len(items))
        for n, ((item, customer_id), row_id) in enumerate(zip(items, ids, strict=True), 1):
            if not n % TURN_EVERY:
                await take_turn()
            # What submit_feedback builds: prepare() cleaned the values with
            # clean_submission already (the customer and the external id aside).
            values = item.values
            get = values.get
            external_id = item.external_id
            rows.append(
                NewRow(
                    {
                        "id": row_id,
                        "customer_id": customer_id,
                        "organization_id": organization,
                        "channel": values["channel"],
                        "kind": values["kind"],
                        "scale": get("scale"),
                        "score": get("score"),
                        "text": values["text"],
                        "product": get("product"),
                        "tags": get("tags") or [],
                        "status": status,
                        "visibility": get("visibility") or "internal",
                        "external_ref": external_id,
                        "created_at": get("created_at") or now,
                        "updated_at": now,
                    },
                    given_fields(values),
                    customer_id,
                    {EXTERNAL_ID: external_id},
                )
            )
        request = BatchRequest(
            Resource.FEEDBACK,
            audit=BATCH_AUDIT,
            target=run.source,
            details={"run": str(run.run_id)},
        )
        try:
            async with session.begin_nested():
                written = await pipeline.create_many(session, principal, request, rows)
        except (HubError, DBAPIError) as error:
            if isinstance(error, DBAPIError) and transient(error):
                raise  # the whole batch is retried
            logger.info(
                "%s: a batch of %d records was refused as a whole (%s); storing them one by one",
                run.source,
                len(rows),
                type(error).__name__,
            )
            return None
        return [
            Stored(None, reason=explain(done))
            if isinstance(done, HubError)
            else Stored(Outcome.CREATED, done)
            for done in written
        ]

    async def _store_one(
        self, session: AsyncSession, run: Context, item: Item, customer_id: uuid.UUID
    ) -> Stored:
        values = item.values
        current = None
        if item.record_id is not None:
            found = await session.execute(
                select(Feedback).where(col(Feedback.id) == item.record_id)
            )
            current = found.scalar_one_or_none()
        if current is None:
            record = await submit_feedback(session, run.principal, _submission(item, customer_id))
            return Stored(Outcome.CREATED, record["id"])
        wanted = {
            **{k: v for k, v in values.items() if k in _UPDATABLE},
            "customer_id": customer_id,
        }
        if "created_at" not in values:
            wanted.pop("created_at", None)
        changed = {k: v for k, v in wanted.items() if getattr(current, k) != v}
        if not changed:
            return Stored(Outcome.UNCHANGED, current.id)
        seen = current.updated_at
        await pipeline.update(
            session,
            run.principal,
            WriteRequest(
                Resource.FEEDBACK,
                Action.UPDATE,
                audit="feedback.update",
                operation=Operation.UPDATE,
                target=current.id,
                given={name: _UPDATABLE[name] for name in changed},
                details={"source": run.source},
            ),
            # Compare-and-set on updated_at: a status moved meanwhile is not overwritten
            # by values computed before it.
            lambda _row: Update(
                {**changed, "updated_at": utcnow()}, where=(col(Feedback.updated_at) == seen,)
            ),
        )
        return Stored(Outcome.UPDATED, current.id)


_GIVEN = {"customer_id": "customerId", "channel": "channel", "kind": "kind", "text": "text"}
_OPTIONAL = (
    ("scale", "scale"),
    ("score", "score"),
    ("product", "product"),
    ("tags", "tags"),
    ("external_ref", "externalRef"),
    ("visibility", "visibility"),
    ("created_at", CREATED_AT),
)


def given_fields(values: Mapping[str, Any]) -> Mapping[str, str]:
    """The fields a submission of prepared ``values`` sets, with their input names:
    ``clean_submission(...).given`` without validating again (a test holds the two
    equal). The external id is always given (it is the record's reference).

    One shared, read-only mapping per combination of fields set: a batch has a handful
    of them, and the write pipeline checks each distinct one once (by identity)."""
    get = values.get
    visibility = get("visibility")
    # In the order of _OPTIONAL; the external id is always given.
    shape = (
        get("scale") is not None,
        get("score") is not None,
        get("product") is not None,
        bool(get("tags")),
        True,
        visibility is not None and visibility != "internal",
        get("created_at") is not None,
    )
    given = _GIVEN_BY_SHAPE.get(shape)
    if given is None:
        fields = dict(_GIVEN)
        fields.update((name, path) for (name, path), on in zip(_OPTIONAL, shape, strict=True) if on)
        given = _GIVEN_BY_SHAPE[shape] = MappingProxyType(fields)
    return given


_GIVEN_BY_SHAPE: dict[tuple[bool, ...], Mapping[str, str]] = {}
"""At most 2**7 entries: one per combination of optional fields."""


def _new_ids(count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) ids, as :func:`uuid.uuid4` makes them, from one read
    of the system's random source instead of one a row.

    Made as the PostgreSQL driver's :class:`uuid.UUID` subclass (asyncpg's, in C), which
    the driver gives back for every id it reads: equal to and hashed like a
    :class:`uuid.UUID`, but its text, bytes and hash cost a tenth (a batch's ids are
    hashed, encoded for three ``COPY`` and written out for the audit listing: 2 to 3 µs
    a record with :class:`uuid.UUID`'s Python properties)."""
    data = bytearray(os.urandom(16 * count))
    for at in range(0, 16 * count, 16):
        data[at + 6] = (data[at + 6] & 0x0F) | 0x40  # version 4
        data[at + 8] = (data[at + 8] & 0x3F) | 0x80  # the RFC 4122 variant
    raw = bytes(data)
    return [_UUID(raw[at : at + 16]) for at in range(0, 16 * count, 16)]


def _submission(item: Item, customer_id: uuid.UUID) -> FeedbackSubmission:
    values = item.values
    return FeedbackSubmission(
        customer_id=customer_id,
        channel=values["channel"],
        kind=values["kind"],
        text=values["text"],
        scale=values.get("scale"),
        score=values.get("score"),
        product=values.get("product"),
        tags=list(values.get("tags") or []),
        visibility=values.get("visibility") or "internal",
        external_ref=item.external_id,
        created_at=values.get("created_at"),
    )


async def _resolve(
    session: AsyncSession, run: Context, items: Sequence[Item]
) -> dict[int, uuid.UUID]:
    """The customer of each item (by ``id(item)``), with one query per kind of key for
    the whole batch: its external reference (in the organization's namespace, as
    :class:`hub.identity.Reference` stores them), else its email's blind index, else its
    phone's; among the customers the organization may see (so an import learns nothing
    about the others), the oldest when several share an address."""
    principal = run.principal
    among = access.candidates(principal, Resource.CUSTOMER)
    refs = {v for item in items if (v := item.values.get("customer_external_id"))}
    # One keyed index per distinct address of the batch (a customer's recur), and of
    # the run: remembered from batch to batch (_INDEXES).
    emails = {v: "" for item in items if (v := item.values.get("customer_email"))}
    for v in emails:
        emails[v] = _INDEXES.of(email_index, v)
    phones = {v: "" for item in items if (v := item.values.get("customer_phone"))}
    for v in phones:
        phones[v] = _INDEXES.of(phone_index, v)
    by_ref: dict[str, uuid.UUID] = {}
    if refs:
        rows = await session.execute(
            select(col(ExternalRef.external_id), col(Customer.id))
            .join(Customer, col(Customer.id) == col(ExternalRef.customer_id))
            .where(
                col(ExternalRef.source) == principal.organization_slug,
                col(ExternalRef.external_id).in_(refs),
                among,
            )
        )
        by_ref = {str(ref): customer for ref, customer in rows.all()}
    by_email = await _by_index(session, col(Customer.email_index), emails.values(), among)
    by_phone = await _by_index(session, col(Customer.phone_index), phones.values(), among)
    found: dict[int, uuid.UUID] = {}
    for item in items:
        v = item.values
        customer = (
            by_ref.get(v.get("customer_external_id", ""))
            or by_email.get(emails.get(v.get("customer_email", ""), ""))
            or by_phone.get(phones.get(v.get("customer_phone", ""), ""))
        )
        if customer is not None:
            found[id(item)] = customer
    return found


class _Indexes:
    """The blind indexes of the addresses and numbers a process has looked up, under the
    index key they were made with: an import names its customers again and again (100,000
    records about 5,000 customers, in about 10,000 spellings), and each index is an
    HMAC-SHA256, 1.6 µs, made once per distinct value of each batch otherwise. Bounded
    (cleared when full); forgotten when the vault's key changes (another database's)."""

    __slots__ = ("found", "key")

    LIMIT = 32_768

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.found: dict[tuple[Callable[[str], str | None], str], str] = {}

    def of(self, index: Callable[[str], str | None], value: str) -> str:
        """``index(value)`` (``""`` for none), remembered."""
        if vault.index_key is not self.key:
            self.found.clear()
            self.key = vault.index_key
        found = self.found.get((index, value))
        if found is None:
            if len(self.found) >= self.LIMIT:
                self.found.clear()
            found = self.found[(index, value)] = index(value) or ""
        return found


_INDEXES = _Indexes()


async def _by_index(
    session: AsyncSession,
    column: Any,
    wanted: Iterable[str | None],
    among: ColumnElement[bool],
) -> dict[str, uuid.UUID]:
    keys = {w for w in wanted if w}
    if not keys:
        return {}
    dialect = session.get_bind().dialect.name
    # Built once per key column and row filter, not per batch, and run by the driver
    # (hub.bulk.built_once, Prebuilt).
    statement = built_once(
        ("hub.sync.feedback customers by", column.key, dialect),
        among,
        lambda: Prebuilt(
            select(column, col(Customer.id))
            .where(any_param(dialect, column, "keys"), among)
            .order_by(col(Customer.created_at).desc(), col(Customer.id).desc())
        ),
    )
    rows = await statement.rows(session, {"keys": list(keys)})
    # Oldest last, so it wins: the same customer find_match would choose.
    return {str(key): customer for key, customer in rows}


def _unmatched(item: Item, run: Context) -> str:
    given = [k for k in CUSTOMER_KEYS if k in item.values]
    # Never the value itself: a dead letter's reason is stored in clear.
    return (
        f"no customer matches {' or '.join(given)} among the customers "
        f"{run.principal.organization_slug} may see"
    )


__all__ = ["CUSTOMER_KEYS", "FeedbackTarget"]
