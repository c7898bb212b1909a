"""Importing feedback files: bad rows become dead letters naming their line, the rest is
stored through the write pipeline, reruns create nothing twice; JSONL, gzip, mappings;
resuming from the checkpoint."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from hub.access import Resource
from hub.db import Database
from hub.models import AuditEvent, Feedback, OutboxEvent
from hub.models.sync import SyncRun
from hub.sync.config import mapping_of, parse_spec, read_yaml, save_connector, specs_from_yaml
from hub.sync.demo import register_demo_connector
from tests.hub.factories import make_customer
from tests.hub.sync_helpers import (
    count,
    customers,
    dead_letters,
    feedback_count,
    import_file,
    runner,
    support_org,
)

BAD_ROWS = (
    "external_id,customer_email,channel,kind,text,scale,score,createdAt\n"
    "t1,person0@example.com,email,complaint,Late delivery,csat,2,2026-01-05\n"
    "t2,person1@example.com,phone,praise,,csat,5,2026-01-06\n"  # missing required text
    "t3,not-an-email,chat,bug,Crash on login,,,2026-01-07\n"  # bad email
    "t4,person2@example.com,chat,bug,Crash again,,,2026-13-45\n"  # bad date
    "t5,person3@example.com,website,question,Where is my order?,nps,9,\n"
    "t6,stranger@example.com,email,praise,Thanks,,,\n"  # no such customer
)


async def test_bad_rows_are_dead_letters_naming_their_line_and_reruns_add_nothing(
    db: Database, tmp_path: Path
) -> None:
    await support_org(db)
    await customers(db, 4)
    path = tmp_path / "desk.csv"
    path.write_text(BAD_ROWS)
    name = await import_file(db, path)

    first = await runner(db, batch_size=2).run(name, rewind_if_done=True)
    assert first.status == "succeeded", first.error
    assert first.counts.as_dict() == {
        "read": 6,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "queued": 0,
        "dead_lettered": 4,
    }
    letters = {d.position: d for d in await dead_letters(db)}
    assert sorted(letters) == ["line 3", "line 4", "line 5", "line 7"]
    assert letters["line 3"].reason == "text: must not be empty"
    assert letters["line 4"].reason.startswith("customer_email: is not a valid email address")
    assert letters["line 5"].reason == "createdAt: '2026-13-45' is not an ISO 8601 date and time"
    assert letters["line 7"].reason == (
        "no customer matches customer_email among the customers support may see"
    )
    assert json.loads(letters["line 4"].record)["customer_email"] == "not-an-email"
    assert "stranger" not in letters["line 7"].reason  # the reason never holds the value

    async with db.session() as session:
        stored = (
            (await session.execute(select(Feedback).order_by(col(Feedback.external_ref))))
            .scalars()
            .all()
        )
    assert [(f.external_ref, f.kind, f.score) for f in stored] == [
        ("t1", "complaint", 2),
        ("t5", "question", 9),
    ]
    assert stored[0].created_at.date().isoformat() == "2026-01-05"
    # Through the write pipeline: audited and published, as the connector.
    assert await count(db, OutboxEvent, col(OutboxEvent.resource) == "Feedback") == 2
    actors = await count(db, AuditEvent, col(AuditEvent.actor) == f"support/connector:{name}")
    assert actors == 2

    again = await runner(db, batch_size=4).run(name, rewind_if_done=True)
    assert again.counts.as_dict() == {
        "read": 6,
        "created": 0,
        "updated": 0,
        "unchanged": 2,
        "queued": 0,
        "dead_lettered": 4,
    }
    assert await feedback_count(db) == 2
    assert [d.attempts for d in await dead_letters(db)] == [2, 2, 2, 2]

    # The bad date fixed, the customer added: their dead letters resolve, one update.
    await make_customer(db, email="stranger@example.com")
    path.write_text(
        BAD_ROWS.replace("2026-13-45", "2026-01-08").replace("Late delivery", "Very late")
    )
    third = await runner(db).run(name, rewind_if_done=True)
    assert (third.counts.created, third.counts.updated, third.counts.unchanged) == (2, 0, 1)
    # Feedback text is not the support department's to change (its policy writes
    # status only): the changed record is a dead letter saying so.
    assert third.counts.dead_lettered == 3
    letters = {d.position: d for d in await dead_letters(db)}
    assert letters["line 2"].reason == "text: the sharing policy does not let you set this field"
    assert letters["line 5"].resolved_at is not None and letters["line 7"].resolved_at is not None
    assert letters["line 3"].resolved_at is None
    assert await feedback_count(db) == 4


async def test_jsonl_gzip_with_a_mapping(db: Database, tmp_path: Path) -> None:
    await support_org(db)
    await customers(db, 3)
    lines = [
        {
            "ticket": 101,
            "requester": {"email": " PERSON0@example.com "},
            "type": "Incident",
            "body": "It broke",
            "opened": "05/01/2026 10:30",
        },
        {
            "ticket": 102,
            "requester": {"email": "person1@example.com"},
            "type": "kudos",
            "body": "Lovely",
            "opened": "06/01/2026 09:00",
            "tags": ["delivery", "speed"],
        },
        {
            "ticket": 103,
            "requester": {"email": "person2@example.com"},
            "type": "other",
            "body": "Hmm",
            "opened": "yesterday",
        },
    ]
    path = tmp_path / "desk.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(json.dumps(line) for line in lines) + "\n{broken\n")
    mapping = {
        "external_id": "ticket",
        "customer_email": {"from": "requester.email", "transforms": ["trim", "lower"]},
        "kind": {
            "from": "type",
            "transforms": ["lower"],
            "map": {"incident": "complaint", "kudos": "praise"},
        },
        "text": {"from": "body", "required": True},
        "channel": {"from": "via", "default": "email"},
        "createdAt": {"from": "opened", "date": "%d/%m/%Y %H:%M"},
        "tags": "tags",
    }
    name = await import_file(db, path, mapping=mapping)
    report = await runner(db).run(name)
    assert (report.counts.read, report.counts.created, report.counts.dead_lettered) == (4, 2, 2)
    letters = {d.position: d.reason for d in await dead_letters(db)}
    assert letters["line 3"] == "createdAt: 'yesterday' is not a date as %d/%m/%Y %H:%M"
    assert letters["line 4"].startswith("not valid JSON")
    async with db.session() as session:
        stored = (
            (await session.execute(select(Feedback).order_by(col(Feedback.external_ref))))
            .scalars()
            .all()
        )
    assert [(f.external_ref, f.kind, f.channel, f.tags) for f in stored] == [
        ("101", "complaint", "email", []),
        ("102", "praise", "email", ["delivery", "speed"]),
    ]
    assert stored[0].created_at.isoformat() == "2026-01-05T10:30:00+00:00"


async def test_a_run_resumes_after_its_checkpoint(db: Database, tmp_path: Path) -> None:
    """A folder connector: a damaged file fails the run after the records before it
    were committed; the next run reads only what comes after the checkpoint."""
    await support_org(db)
    await customers(db, 1)
    folder = tmp_path / "desk"
    folder.mkdir()

    def line(n: int) -> str:
        return json.dumps(
            {
                "external_id": f"f{n}",
                "customer_email": "person0@example.com",
                "channel": "chat",
                "kind": "question",
                "text": f"Question {n}",
            }
        )

    (folder / "2026-01-01.jsonl").write_text("".join(line(n) + "\n" for n in range(5)))
    (folder / "2026-01-02.jsonl.gz").write_bytes(
        gzip.compress("".join(line(n) + "\n" for n in range(5, 40)).encode())[:-20]
    )
    async with db.transaction() as session:
        await save_connector(
            session,
            parse_spec(
                {
                    "name": "desk",
                    "kind": "files",
                    "resource": "feedback",
                    "organization": "support",
                    "config": {"path": str(folder)},
                }
            ),
        )
    failed = await runner(db, batch_size=3).run("desk")
    assert failed.status == "failed"
    assert (
        failed.error is not None
        and "2026-01-02.jsonl.gz: truncated or damaged gzip" in failed.error
    )
    stored_before = await feedback_count(db)
    assert stored_before >= 5  # the first file, and what was read of the second

    (folder / "2026-01-02.jsonl.gz").write_bytes(
        gzip.compress("".join(line(n) + "\n" for n in range(5, 40)).encode())
    )
    resumed = await runner(db, batch_size=7).run("desk")
    assert resumed.status == "succeeded"
    assert resumed.counts.read == 40 - stored_before  # nothing before the checkpoint again
    assert resumed.counts.created == 40 - stored_before
    assert await feedback_count(db) == 40

    (folder / "2026-01-03.jsonl").write_text(line(40) + "\n")
    later = await runner(db).run("desk")
    assert (later.counts.read, later.counts.created) == (1, 1)
    assert await runner(db).run("desk") is not None
    async with db.session() as session:
        statuses = (
            (await session.execute(select(col(SyncRun.status)).order_by(col(SyncRun.started_at))))
            .scalars()
            .all()
        )
    assert statuses == ["failed", "succeeded", "succeeded", "succeeded"]


def test_the_examples_are_valid_definitions(repo_root: Path) -> None:
    examples = repo_root / "connectors" / "examples"
    specs = [
        spec
        for name in ("support-desk.yaml", "crm-customers.yaml")
        for spec in specs_from_yaml(examples / name)
    ]
    assert [(s.name, s.resource.value, s.schedule_seconds) for s in specs] == [
        ("support-desk", "Feedback", 900),
        ("sales-crm", "Customer", 3600),
    ]
    mapping = read_yaml(examples / "feedback-mapping.yaml")["mapping"]
    mapped = mapping_of(Resource.FEEDBACK, mapping).apply(
        {
            "response_id": "r1",
            "Email Address": " A@B.org ",
            "Answer type": "Good",
            "Comment": "Nice",
            "score": "9",
            "Submitted": "02/03/2026 10:00",
        }
    )
    assert mapped.problems == ()
    assert mapped.values["kind"] == "praise" and mapped.values["scale"] == "nps"
    assert mapped.values["customer_email"] == "a@b.org"


async def test_the_demo_connector_reads_its_sample_export(db: Database, tmp_path: Path) -> None:
    await support_org(db)
    await customers(db, 5)
    async with db.transaction() as session:
        name = await register_demo_connector(session, tmp_path / "desk", count=12)
    report = await runner(db).run(name)
    assert (report.counts.read, report.counts.created, report.counts.dead_lettered) == (13, 12, 1)
    assert [d.position for d in await dead_letters(db)] == ["2026-11-export.jsonl line 13"]
