"""Property: for random files (valid and invalid records, external ids repeated within a
batch and across runs, reruns of a changed file) and random batch sizes, importing in
bulk and importing one record at a time end in the same state: feedback, links, dead
letters, run counts and outbox events (resource, record, operation, fields); under the
default policy and under one whose check and field list refuse some records (the bulk
path then falls back). Two support departments import the same files, one each way."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import col

from hub.db import Database
from hub.models import AuditEvent, Feedback, OutboxEvent
from hub.models.sync import SyncConnector, SyncDeadLetter, SyncRecord
from hub.sync.feedback import BATCH_AUDIT
from hub.sync.runs import Counts
from tests.hub.sync_helpers import count, customers, import_file, runner, support_org
from tests.hub.test_sync_bulk import publish_checked, rules_restored

__all__ = ["rules_restored"]  # a fixture

EXAMPLES = max(2, int(os.environ.get("HUB_HYPOTHESIS_EXAMPLES", "200")) // 20)

# Mostly valid values (a record is stored only when all of its fields are), with a few
# wrong ones among them.
_OPTIONAL: dict[str, Any] = {
    "rating": st.sampled_from([("nps", 9), ("csat", 2), ("nps", "x"), ("csat", 9), (None, 3)]),
    "product": st.sampled_from(["Kettle", " Blender "]),
    "tags": st.sampled_from([["late", "box"], "late;box", 5]),
    "createdAt": st.sampled_from(
        ["2025-03-01T10:00:00", "2025-06-30T08:15:00+02:00", "2025-13-45", "2099-01-01T00:00:00"]
    ),
    "visibility": st.sampled_from(["internal", "partners", "public!"]),
}
RECORD = st.fixed_dictionaries(
    {
        "external_id": st.sampled_from(["e1", "e2", "e3", "e4", "e5", "e6", " ", "e7"]),
        "channel": st.sampled_from(["email", "chat", "email", "fax"]),
        "kind": st.sampled_from(["complaint", "praise", "question", "bug", "nonsense"]),
        "text": st.sampled_from(["Late again", "Broken lid", "", "Thanks!"]),
        "key": st.sampled_from(
            [
                ("customer_email", "person0@example.com"),
                ("customer_email", "person0@example.com"),
                ("customer_email", "PERSON1@example.com"),
                ("customer_email", "person2@Example.com"),
                ("customer_email", "stranger@example.com"),
                ("customer_email", "not-an-email"),
                ("customer_phone", "+14155552671"),
                ("customer_phone", "12"),
                ("customer_external_id", "nobody"),
                ("", ""),
            ]
        ),
    },
    optional=_OPTIONAL,
)
FILES = st.lists(RECORD, min_size=1, max_size=14)
EXAMPLE = st.tuples(FILES, FILES, st.integers(min_value=1, max_value=6))


def _line(record: dict[str, Any]) -> str:
    data = {k: v for k, v in record.items() if k not in ("key", "rating")}
    key, value = record["key"]
    if key:
        data[key] = value
    if "rating" in record:
        scale, score = record["rating"]
        data.update({"score": score} if scale is None else {"scale": scale, "score": score})
    return json.dumps(data) + "\n"


async def _snapshot(db: Database, slug: str, name: str, reports: list[Counts]) -> Any:
    """What one department's import left, without what differs by construction (ids,
    times of the run, the organization's name in reasons)."""
    async with db.session() as session:
        connector = (
            await session.execute(select(SyncConnector).where(col(SyncConnector.name) == name))
        ).scalar_one()
        feedback = (
            (
                await session.execute(
                    select(Feedback).where(
                        col(Feedback.organization_id) == connector.organization_id
                    )
                )
            )
            .scalars()
            .all()
        )
        refs = {f.id: f.external_ref for f in feedback}
        links = (
            (
                await session.execute(
                    select(SyncRecord).where(col(SyncRecord.connector_id) == connector.id)
                )
            )
            .scalars()
            .all()
        )
        letters = (
            (
                await session.execute(
                    select(SyncDeadLetter).where(col(SyncDeadLetter.connector_id) == connector.id)
                )
            )
            .scalars()
            .all()
        )
        events = (
            (
                await session.execute(
                    select(OutboxEvent).where(col(OutboxEvent.actor) == f"{slug}/connector:{name}")
                )
            )
            .scalars()
            .all()
        )
    return {
        "feedback": sorted(
            (
                f.external_ref or "",
                str(f.customer_id),
                f.channel,
                f.kind,
                f.scale or "",
                f.score or -1,
                f.text,
                f.product or "",
                tuple(f.tags),
                f.status,
                f.visibility,
                # Given in the file (2025), or the time of the write (not compared).
                f.created_at.isoformat() if f.created_at.year < 2026 else "",
            )
            for f in feedback
        ),
        "links": sorted((r.external_id, refs.get(r.record_id), r.digest) for r in links),
        "letters": sorted(
            (d.position, d.reason.replace(slug, "ORG"), d.attempts, d.resolved_at is None)
            for d in letters
        ),
        "counts": [c.as_dict() for c in reports],
        "events": sorted(
            (e.resource, refs.get(e.record_id) or "", e.operation, tuple(e.fields)) for e in events
        ),
    }


async def _compare(db: Database, tmp_path: Path, checked: bool) -> None:
    if checked:
        await publish_checked(db)
    await customers(db, 3)
    examples: list[tuple[list[dict[str, Any]], list[dict[str, Any]], int]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(EXAMPLE)
    def collect(example: tuple[list[dict[str, Any]], list[dict[str, Any]], int]) -> None:
        examples.append(example)

    collect()
    assert examples
    for number, (first, second, batch) in enumerate(examples):
        path = tmp_path / f"desk-{number}.jsonl"
        states = []
        for bulk in (False, True):
            slug = f"s{number}-{'bulk' if bulk else 'one'}-{uuid.uuid4().hex[:4]}"
            await support_org(db, slug)
            name = ""
            reports: list[Counts] = []
            for records in (first, first, second):  # a rerun, then a changed file
                path.write_text("".join(_line(r) for r in records))
                name = await import_file(db, path, org=slug)
                report = await runner(db, batch_size=batch, bulk=bulk).run(
                    name, rewind_if_done=True
                )
                assert report.status == "succeeded", report.error
                reports.append(report.counts)
            states.append(await _snapshot(db, slug, name, reports))
        one, bulk_state = states
        assert bulk_state == one, (first, second, batch)
    # The bulk path was taken (not only its fallback).
    assert await count(db, AuditEvent, col(AuditEvent.action) == BATCH_AUDIT) > 0


async def test_bulk_and_one_by_one_end_in_the_same_state(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    await support_org(db, "support")  # the default policy's subjects exist
    await _compare(db, tmp_path, checked=False)


async def test_bulk_and_one_by_one_agree_when_the_policy_refuses_records(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    await _compare(db, tmp_path, checked=True)
