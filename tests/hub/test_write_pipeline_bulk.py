"""The write pipeline's batch of creates (:func:`hub.access.pipeline.create_many`): the
same decisions as one :func:`~hub.access.pipeline.create` per row, one audit event for
the batch (the chain still verifies), one outbox event per row, all or nothing when a
written row fails the policy's check; on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from hub import audit, sharing
from hub.access import Action, PolicyRules, Resource, access, pipeline
from hub.access.pipeline import BatchRequest, NewRow, WriteRequest
from hub.bulk import COPY_FROM
from hub.changes import changed_fields
from hub.db import Database
from hub.errors import ForbiddenError, HubError, InvalidInputError, NotFoundError
from hub.models import AuditEvent, Customer, Feedback, Organization, OutboxEvent
from hub.models._types import new_id, row_values, utcnow
from hub.outbox import Operation
from hub.principal import Principal
from policies import parse
from tests.conftest import SECRET, make_org
from tests.hub.factories import assign, count_rows, make_customer

POLICY = """
rules:
  - name: distributors-customers
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {assignments.organization: {eq: $subject.org}}
    read: {visible: [id, name]}
  - name: distributors-feedback
    subjects: [{kind: distributor}]
    resource: Feedback
    rows: {organization: {eq: $subject.org}}
    read: {visible: [id, text, visibility]}
    create:
      fields: [customer_id, channel, kind, text, external_ref]
      check: {kind: {in: [praise, complaint]}}
      presets: {organization: $subject.org, visibility: partners}
"""


@pytest.fixture
def policy() -> Iterator[None]:
    saved = access.rules
    access.rules = PolicyRules(
        98, parse(POLICY), sharing.operator_guardrails(), pseudonym_secret=SECRET.encode()
    )
    yield
    access.rules = saved


async def _world(db: Database) -> tuple[Organization, list[Customer], Customer]:
    org = await make_org(db, "distributor", slug="acme")
    mine = [
        await make_customer(db, name=name, consent_share_with_partners=True, provenance={})
        for name in ("Ada", "Grace")
    ]
    for customer in mine:
        await assign(db, customer, org)
    stranger = await make_customer(db, name="Eve", consent_share_with_partners=True)
    return org, mine, stranger


def _row(customer: uuid.UUID, n: int, kind: str = "praise", **given: str) -> NewRow:
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(),
        "customer_id": customer,
        "organization_id": uuid.uuid4(),  # the preset decides
        "channel": "email",
        "kind": kind,
        "scale": None,
        "score": None,
        "text": f"Feedback {n}",
        "product": None,
        "tags": [],
        "status": "new",
        "visibility": "internal",  # the preset decides
        "external_ref": f"x{n}",
        "created_at": now,
        "updated_at": now,
    }
    fields = {"customer_id": "customerId", "channel": "channel", "kind": "kind", "text": "text"}
    return NewRow(values, {**fields, **given}, about=customer, details={"external_id": f"x{n}"})


def _request(**overrides: Any) -> BatchRequest:
    return BatchRequest(
        Resource.FEEDBACK, audit="feedback.import", target="connector:desk", **overrides
    )


async def _create_one(db: Database, principal: Principal, row: NewRow) -> HubError | None:
    """What the single-record pipeline says of ``row`` (rolled back either way)."""
    request = WriteRequest(
        Resource.FEEDBACK,
        Action.CREATE,
        audit="feedback.create",
        operation=Operation.CREATE,
        about=row.about,
        given=row.given,
    )
    try:
        async with db.transaction() as session:
            await pipeline.create(session, principal, request, lambda: Feedback(**row.values))
            raise _Undo
    except _Undo:
        return None
    except HubError as error:
        return error


class _Undo(Exception):
    pass


async def test_a_batch_is_written_with_one_audit_event_and_one_outbox_event_per_row(
    db: Database, policy: None
) -> None:
    org, (ada, grace), _ = await _world(db)
    principal = sharing.principal_for(org)
    rows = [_row(ada.id, 1), _row(grace.id, 2, kind="complaint"), _row(ada.id, 3)]
    audits, events = await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)
    async with db.transaction() as session:
        written = await pipeline.create_many(
            session, principal, _request(details={"run": "r1"}), rows
        )
    assert written == [row.values["id"] for row in rows]
    async with db.session() as session:
        stored = {f.id: f for f in (await session.execute(select(Feedback))).scalars().all()}
        trail = (
            (await session.execute(select(AuditEvent).where(col(AuditEvent.seq) > audits)))
            .scalars()
            .all()
        )
        published = (
            (
                await session.execute(
                    select(OutboxEvent)
                    .where(col(OutboxEvent.position) > events)
                    .order_by(col(OutboxEvent.position))
                )
            )
            .scalars()
            .all()
        )
        checked, broken = await audit.verify_chain(session)
    # The presets are forced over what was asked for.
    assert {(f.organization_id, f.visibility) for f in stored.values()} == {(org.id, "partners")}
    assert [stored[row.values["id"]].text for row in rows] == [
        "Feedback 1",
        "Feedback 2",
        "Feedback 3",
    ]
    # One event for the batch, naming each row with its values as written.
    [event] = trail
    assert (event.action, event.target, event.actor) == (
        "feedback.import",
        "connector:desk",
        audit.actor_of(principal),
    )
    assert (event.details["resource"], event.details["run"], event.details["count"]) == (
        "Feedback",
        "r1",
        3,
    )
    listed = event.details["records"]
    assert [r["id"] for r in listed] == [str(row.values["id"]) for row in rows]
    assert [r["external_id"] for r in listed] == ["x1", "x2", "x3"]
    first = stored[rows[0].values["id"]]
    expected = {
        k: v for k, v in audit.normalise_details(row_values(first)).items() if v is not None
    }
    assert listed[0]["values"] == expected
    assert broken is None and checked >= 1  # hashed on the fast path, verified the standard way
    # One event per row, in order, numbered without gaps, naming the fields written.
    assert [e.record_id for e in published] == written
    assert [e.position for e in published] == list(range(events + 1, events + 4))
    assert {e.operation for e in published} == {"create"}
    assert tuple(published[0].fields) == changed_fields("Feedback", {}, row_values(first))


async def test_refused_rows_meet_the_errors_of_the_single_record_pipeline(
    db: Database, policy: None
) -> None:
    org, (ada, _), stranger = await _world(db)
    principal = sharing.principal_for(org)
    rows = [
        _row(ada.id, 1),
        _row(stranger.id, 2),  # not assigned: not visible
        _row(uuid.uuid4(), 3),  # no such customer
        _row(ada.id, 4, product="product"),  # not among the create fields
        _row(ada.id, 5),
    ]
    expected = [await _create_one(db, principal, row) for row in rows]
    async with db.transaction() as session:
        written = await pipeline.create_many(session, principal, _request(), rows)
    assert written[0] == rows[0].values["id"] and written[4] == rows[4].values["id"]
    assert expected[0] is None and expected[4] is None
    for got, want in zip(written[1:4], expected[1:4], strict=True):
        assert isinstance(got, HubError) and want is not None
        assert (type(got), str(got)) == (type(want), str(want))
    assert isinstance(written[1], NotFoundError) and str(written[1]) == "no such customer"
    assert isinstance(written[3], InvalidInputError)
    assert [(p.path, p.code) for p in written[3].problems] == [(("input", "product"), "FORBIDDEN")]
    assert await count_rows(db, Feedback) == 2
    async with db.session() as session:
        [event] = (
            await session.execute(
                select(AuditEvent).where(col(AuditEvent.action) == "feedback.import")
            )
        ).scalars()
    assert event.details["count"] == 2


async def test_without_a_grant_every_row_is_forbidden_and_nothing_is_written(
    db: Database, policy: None
) -> None:
    _, (ada, _), _ = await _world(db)
    partner = await make_org(db, "supplier", slug="nobody")  # no rule grants it anything
    principal = sharing.principal_for(partner)
    before = await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)
    rows = [_row(ada.id, 1), _row(ada.id, 2)]
    expected = await _create_one(db, principal, rows[0])
    async with db.transaction() as session:
        written = await pipeline.create_many(session, principal, _request(), rows)
    assert all(isinstance(w, ForbiddenError | NotFoundError) for w in written)
    assert expected is not None
    assert {(type(w), str(w)) for w in written} == {(type(expected), str(expected))}
    assert await count_rows(db, Feedback) == 0
    assert (await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)) == before


async def test_a_row_failing_the_check_refuses_the_batch_and_a_savepoint_undoes_it(
    db: Database, policy: None
) -> None:
    org, (ada, grace), _ = await _world(db)
    principal = sharing.principal_for(org)
    before = await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)
    rows = [_row(ada.id, 1), _row(grace.id, 2, kind="bug"), _row(ada.id, 3)]
    assert isinstance(await _create_one(db, principal, rows[1]), ForbiddenError)
    async with db.transaction() as session:
        with pytest.raises(ForbiddenError, match="does not let you leave this Feedback"):
            async with session.begin_nested():
                await pipeline.create_many(session, principal, _request(), rows)
        # The caller's transaction goes on: the rows one by one, the bad one left out.
        again = await pipeline.create_many(session, principal, _request(), [rows[0], rows[2]])
    assert len(again) == 2 and await count_rows(db, Feedback) == 2
    assert (await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)) == (
        before[0] + 1,
        before[1] + 2,
    )


async def test_a_row_must_name_every_column(db: Database, policy: None) -> None:
    org, (ada, _), _ = await _world(db)
    row = _row(ada.id, 1)
    partial = NewRow({k: v for k, v in row.values.items() if k != "tags"}, row.given, ada.id)
    with pytest.raises(ValueError, match="every column of feedback: tags"):
        async with db.transaction() as session:
            await pipeline.create_many(session, sharing.principal_for(org), _request(), [partial])


@pytest.mark.parametrize("ratio", [None, 0.5], ids=["plain", "with-a-float"])
async def test_details_are_stored_as_the_standard_encoding_gives_them_and_verify(
    db: Database, policy: None, ratio: float | None
) -> None:
    # Plain JSON is hashed on the fast path, anything else (a float) the standard way:
    # either way the details stored are what hub.audit.normalise_details makes of them.
    org, (ada, _), _ = await _world(db)
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    details = {"ratio": ratio, "when": utcnow(), "ids": (3, 1, 2), "set": {b, a}}
    row = _row(ada.id, 1)
    async with db.transaction() as session:
        await pipeline.create_many(
            session, sharing.principal_for(org), _request(details=details), [row]
        )
    async with db.session() as session:
        [event] = (
            await session.execute(
                select(AuditEvent).where(col(AuditEvent.action) == "feedback.import")
            )
        ).scalars()
        _, broken = await audit.verify_chain(session)
    expected = audit.normalise_details(details)
    assert {k: event.details[k] for k in expected} == expected
    assert event.details["ids"] == [3, 1, 2] and event.details["set"] == [str(a), str(b)]
    assert broken is None


async def test_a_large_batch_stores_every_value_as_a_single_create_would(
    db: Database, policy: None
) -> None:
    """From COPY_FROM rows on, PostgreSQL gets a COPY: the values must arrive as an INSERT
    binds them (JSON lists, aware times in any zone, NULLs)."""
    org, (ada, grace), _ = await _world(db)
    zone = timezone(timedelta(hours=2))
    rows = []
    for n in range(COPY_FROM + 10):
        row = _row((ada, grace)[n % 2].id, n)
        values = {
            **row.values,
            "tags": ["late", f"t{n}"] if n % 3 else [],
            "score": n if n % 2 else None,
            "scale": "nps" if n % 2 else None,
            "created_at": datetime(2025, 6, 30, 8, n % 60, tzinfo=zone),
        }
        rows.append(NewRow(values, row.given, row.about, row.details))
    async with db.transaction() as session:
        written = await pipeline.create_many(session, sharing.principal_for(org), _request(), rows)
    assert written == [row.values["id"] for row in rows]
    async with db.session() as session:
        stored = {f.id: f for f in (await session.execute(select(Feedback))).scalars()}
    for row in rows:
        f = stored[row.values["id"]]
        want = row.values
        assert (f.tags, f.score, f.scale, f.text, f.external_ref) == (
            want["tags"],
            want["score"],
            want["scale"],
            want["text"],
            want["external_ref"],
        )
        assert f.created_at == want["created_at"]  # the same instant, kept in UTC
        assert (f.organization_id, f.visibility) == (org.id, "partners")


def test_the_fast_plain_form_is_the_standard_one() -> None:
    """The batch event's rows are made plain value by value; what it lists must be what
    the standard encoder writes with hub.plainjson.plain, for the values rows hold: UUIDs
    (also a driver's subclass, as asyncpg returns them), times in any zone or none,
    tuples, nested lists and objects."""

    class DriverUUID(uuid.UUID):
        pass

    zone = timezone(timedelta(hours=-5))
    values: dict[str, Any] = {
        "customer_id": DriverUUID(int=8),
        "case_id": uuid.UUID(int=9),
        "at": datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=zone),
        "naive": datetime(2025, 1, 2, 3, 4, 5),
        "tags": ["a", "é"],
        "pair": (2, 1),
        "traits": {"k": [1, None, True]},
    }
    shown, plain = pipeline._shown(values, plain=True)
    assert plain
    assert shown == audit.normalise_details(values)
    # A float has no exact form on the fast path: left for the standard normalisation.
    _, plain = pipeline._shown({**values, "score": 1.5}, plain=True)
    assert not plain


async def test_a_write_waits_for_its_turn_before_it_takes_the_audit_lock(
    db: Database, database_url: str, policy: None
) -> None:
    """pipeline.wait_turn_before_record: a batch overlapping another (a sync run's) is
    let through step 6 only when its turn comes, and before it holds the audit chain's
    lock: while the turn is awaited, another transaction can still take that lock."""
    org, (ada, grace), _ = await _world(db)
    principal = sharing.principal_for(org)
    turns: list[bool | None] = []

    async def turn() -> None:
        if not database_url.startswith("postgresql"):
            turns.append(None)  # SQLite has one writer: no lock of its own to probe
            return
        async with db.engine.connect() as other:
            took = await other.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": audit.LOCK_KEY}
            )
            turns.append(bool(took.scalar_one()))
            await other.rollback()

    async with db.transaction() as session:
        pipeline.wait_turn_before_record(session, turn)
        written = await pipeline.create_many(
            session, principal, _request(), [_row(ada.id, 1), _row(grace.id, 2)]
        )
        assert all(isinstance(done, uuid.UUID) for done in written)
        one = _row(ada.id, 3)
        request = WriteRequest(
            Resource.FEEDBACK,
            Action.CREATE,
            audit="feedback.create",
            operation=Operation.CREATE,
            about=ada.id,
            given=one.given,
        )
        await pipeline.create(session, principal, request, lambda: Feedback(**one.values))
    # Once for the batch, once for the single create (the lock held by then is this
    # transaction's own: the probe from another connection fails).
    expected = [True, False] if database_url.startswith("postgresql") else [None, None]
    assert turns == expected
    async with db.session() as session:
        actions = (await session.execute(select(col(AuditEvent.action)))).scalars().all()
    assert sorted(actions) == ["feedback.create", "feedback.import"]


async def test_records_deferred_leaves_a_batchs_audit_and_outbox_for_the_end_in_order(
    db: Database, policy: None
) -> None:
    """pipeline.records_deferred: inside the block a batch's step 6 waits (the caller
    writes rows of its own first, before the audit lock); a single write in the block
    records the pending batch first, so the events keep the order of the writes; a block
    that raises records nothing."""
    org, (ada, grace), _ = await _world(db)
    principal = sharing.principal_for(org)
    audits, events = await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)
    one = _row(grace.id, 9)
    request = WriteRequest(
        Resource.FEEDBACK,
        Action.CREATE,
        audit="feedback.create",
        operation=Operation.CREATE,
        about=grace.id,
        given=one.given,
    )
    async with db.transaction() as session:
        async with pipeline.records_deferred(session):
            first = await pipeline.create_many(session, principal, _request(), [_row(ada.id, 1)])
            # Nothing recorded yet, even as this transaction sees it.
            for model in (AuditEvent, OutboxEvent):
                seen = await session.execute(select(func.count()).select_from(model))
                assert seen.scalar_one() == (audits if model is AuditEvent else events)
            await pipeline.create(session, principal, request, lambda: Feedback(**one.values))
            second = await pipeline.create_many(
                session, principal, _request(), [_row(grace.id, 2), _row(ada.id, 3)]
            )
        with pytest.raises(RuntimeError, match="do not nest"):
            async with pipeline.records_deferred(session), pipeline.records_deferred(session):
                pass
    async with db.session() as session:
        actions = (
            (await session.execute(select(col(AuditEvent.action)).order_by(col(AuditEvent.seq))))
            .scalars()
            .all()
        )
        published = (
            (await session.execute(select(OutboxEvent).order_by(col(OutboxEvent.position))))
            .scalars()
            .all()
        )
        broken = (await audit.verify_chain(session))[1]
    assert list(actions[audits:]) == ["feedback.import", "feedback.create", "feedback.import"]
    assert [e.record_id for e in published[events:]] == [*first, one.values["id"], *second]
    assert broken is None

    async def undone() -> None:
        async with db.transaction() as session, pipeline.records_deferred(session):
            await pipeline.create_many(session, principal, _request(), [_row(ada.id, 4)])
            raise _Undo

    with pytest.raises(_Undo):
        await undone()
    assert await count_rows(db, AuditEvent) == audits + 3
    assert await count_rows(db, Feedback) == 4
