"""The bulk path of feedback imports: new records of a batch written together (one audit
event per batch, one outbox event per record), and the batch stored one record at a
time when the bulk insert is refused (a row failing the policy's check, a row the
database alone refuses), so only the record at fault becomes a dead letter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import col

from hub import audit, sharing
from hub.access import access
from hub.db import Database
from hub.models import AuditEvent, Feedback, OutboxEvent
from hub.sync.feedback import BATCH_AUDIT, given_fields
from tests.hub.sync_helpers import (
    count,
    customers,
    dead_letters,
    feedback_count,
    import_file,
    runner,
    support_org,
)

# The default policy with a check on created feedback (its kind) and without ``tags``
# among the fields a department may set: refusals the bulk path must meet as the
# single-record path does.
_FIELDS = (
    "[id, customer_id, customer_ref, organization_id, channel, kind, scale, score, text, "
    "product, status, visibility, external_ref, created_at, updated_at]"
)
CHECKED = sharing.default_source().replace(
    "    create: {fields: *feedback_all}\n",
    f"    create:\n      fields: {_FIELDS}\n"
    "      check: {kind: {in: [complaint, praise, question, suggestion]}}\n",
)


@pytest.fixture
async def rules_restored() -> AsyncIterator[None]:
    """A run puts the published policy in force process-wide: put back what was."""
    saved = access.rules
    yield
    access.rules = saved


async def publish_checked(db: Database) -> None:
    assert sharing.default_source() != CHECKED
    async with db.transaction() as session:
        await sharing.publish(session, CHECKED, author="tests", reason="bulk fallback")


def ticket(n: int, **overrides: Any) -> dict[str, Any]:
    return {
        "external_id": f"t{n}",
        "customer_email": f"person{n % 4}@example.com",
        "channel": "email",
        "kind": "question",
        "text": f"Question number {n}",
        **overrides,
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def audit_actions(db: Database, actor: str) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            select(col(AuditEvent.action))
            .where(col(AuditEvent.actor) == actor)
            .order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars())


async def test_new_records_are_written_in_bulk_one_audit_event_per_batch(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    await support_org(db)
    await customers(db, 4)
    path = write_jsonl(tmp_path / "desk.jsonl", [ticket(n) for n in range(10)])
    name = await import_file(db, path)
    report = await runner(db, batch_size=4).run(name, rewind_if_done=True)
    assert report.status == "succeeded", report.error
    assert (report.counts.created, report.counts.dead_lettered) == (10, 0)
    actor = f"support/connector:{name}"
    assert await audit_actions(db, actor) == [BATCH_AUDIT] * 3  # batches of 4, 4 and 2
    async with db.session() as session:
        events = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(col(AuditEvent.actor) == actor)
                    .order_by(col(AuditEvent.seq))
                )
            )
            .scalars()
            .all()
        )
        stored = {f.id: f.external_ref for f in (await session.execute(select(Feedback))).scalars()}
        _, broken = await audit.verify_chain(session)
    assert broken is None
    assert {e.target for e in events} == {f"connector:{name}"}
    assert {e.details["run"] for e in events} == {str(report.run_id)}
    listed = [r for e in events for r in e.details["records"]]
    assert [r["external_id"] for r in listed] == [f"t{n}" for n in range(10)]
    assert {r["id"]: r["values"]["external_ref"] for r in listed} == {
        str(i): ref for i, ref in stored.items()
    }
    assert await count(db, OutboxEvent, col(OutboxEvent.actor) == actor) == 10

    again = await runner(db, batch_size=4).run(name, rewind_if_done=True)
    assert (again.counts.unchanged, again.counts.created) == (10, 0)
    assert await audit_actions(db, actor) == [BATCH_AUDIT] * 3  # nothing written, nothing audited


async def test_a_batch_refused_by_the_check_is_stored_one_by_one(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    await publish_checked(db)
    await support_org(db)
    await customers(db, 4)
    records = [ticket(n) for n in range(8)]
    records[5]["kind"] = "bug"  # written, then refused by the check
    records[6]["tags"] = ["late"]  # a field the policy does not let the department set
    path = write_jsonl(tmp_path / "desk.jsonl", records)
    name = await import_file(db, path)
    report = await runner(db, batch_size=4).run(name, rewind_if_done=True)
    assert report.status == "succeeded", report.error
    assert (report.counts.created, report.counts.dead_lettered) == (6, 2)
    letters = {d.position: d.reason for d in await dead_letters(db)}
    assert letters == {
        "line 6": "the sharing policy does not let you leave this Feedback record like this",
        "line 7": "tags: the sharing policy does not let you set this field",
    }
    # The first batch in bulk; the second, refused as a whole, one record at a time.
    actions = await audit_actions(db, f"support/connector:{name}")
    assert actions == [BATCH_AUDIT, "feedback.create", "feedback.create"]
    assert await feedback_count(db) == 6
    async with db.session() as session:
        _, broken = await audit.verify_chain(session)
    assert broken is None


# Each set drops what it creates first: SQLite runs DDL outside the transaction (the
# driver begins none for it), so a trigger left by an interrupted earlier attempt in the
# session's database would otherwise make this one fail for the wrong reason.
_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS test_refuse_boom",
        "CREATE TRIGGER test_refuse_boom BEFORE INSERT ON feedback WHEN NEW.text = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS test_refuse_boom ON feedback",
        "CREATE OR REPLACE FUNCTION test_refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.text = 'boom' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '23514'; "
        "END IF; RETURN NEW; END $$",
        "CREATE TRIGGER test_refuse_boom BEFORE INSERT ON feedback "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse_boom()",
    ],
}
_DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS test_refuse_boom"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS test_refuse_boom ON feedback",
        "DROP FUNCTION IF EXISTS test_refuse_boom()",
    ],
}


async def _run_sql(db: Database, statements: list[str]) -> None:
    async with db.transaction() as session:
        for statement in statements:
            await session.execute(text(statement))


async def test_a_record_the_database_refuses_is_a_dead_letter_and_the_batch_goes_on(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    """A refusal only the database knows of (a trigger standing for any constraint our
    validation does not see): the bulk insert fails, the batch is stored one by one, and
    that record alone becomes a dead letter naming the kind of error, never its text."""
    await support_org(db)
    await customers(db, 4)
    backend = db.engine.dialect.name
    # Batches of 3 (an executemany) and of 60 (a COPY on PostgreSQL).
    records = [ticket(n) for n in range(66)]
    records[2]["text"] = "boom"
    records[40]["text"] = "boom"
    path = write_jsonl(tmp_path / "desk.jsonl", records)
    name = await import_file(db, path)
    await _run_sql(db, _TRIGGERS[backend])
    try:
        small = await runner(db, batch_size=3).run(name, rewind_if_done=True)
    finally:
        await _run_sql(db, _DROP[backend])
    assert small.status == "succeeded", small.error
    assert (small.counts.created, small.counts.dead_lettered) == (64, 2)
    code = "23514" if backend == "postgresql" else "SQLITE_CONSTRAINT_TRIGGER"
    reason = f"the database refused this record ({code})"
    assert [(d.position, d.reason) for d in await dead_letters(db)] == [
        ("line 3", reason),
        ("line 41", reason),
    ]
    actions = await audit_actions(db, f"support/connector:{name}")
    assert actions[:4] == ["feedback.create", "feedback.create", BATCH_AUDIT, BATCH_AUDIT]
    assert actions.count("feedback.create") == 4  # the two batches stored one by one

    # Again in one batch of 66: the same refusal through the bulk insert of 66 rows.
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM sync_record"))
        await session.execute(text("DELETE FROM feedback"))
    await _run_sql(db, _TRIGGERS[backend])
    try:
        big = await runner(db, batch_size=66).run(name, rewind_if_done=True)
    finally:
        await _run_sql(db, _DROP[backend])
    assert (big.counts.created, big.counts.dead_lettered) == (64, 2)
    assert await feedback_count(db) == 64


async def test_text_with_a_nul_character_is_refused_before_the_database(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    await support_org(db)
    await customers(db, 4)
    records = [ticket(1, text="bad\u0000text"), ticket(2, product="Kettle\u0000")]
    path = write_jsonl(tmp_path / "desk.jsonl", [*records, ticket(3)])
    name = await import_file(db, path)
    report = await runner(db).run(name, rewind_if_done=True)
    assert (report.counts.created, report.counts.dead_lettered) == (1, 2)
    assert [d.reason for d in await dead_letters(db)] == [
        "text: must not contain NUL characters",
        "product: must not contain NUL characters",
    ]


def test_given_fields_are_those_of_clean_submission() -> None:
    """The bulk path names the fields a record sets without validating it again."""
    import uuid

    from hub.feedback import FeedbackSubmission, clean_submission
    from hub.models._types import utcnow

    cases: list[dict[str, Any]] = [
        {},
        {"scale": "nps", "score": 7},
        {"product": "Kettle", "tags": ["a", "B"]},
        {"visibility": "partners", "created_at": utcnow()},
        {"visibility": "internal", "tags": []},
    ]
    for extra in cases:
        submission = FeedbackSubmission(
            customer_id=uuid.uuid4(),
            channel="email",
            kind="praise",
            text="Fine",
            external_ref="x1",
            **extra,
        )
        clean = clean_submission(submission)
        values = {**clean.values, "created_at": extra.get("created_at")}
        assert given_fields(values) == clean.given, extra
