"""Batches stored at once (each in its own transaction, committed in order) and records
read and prepared in a child process (hub.sync.apart): the same feedback, links, dead
letters, audit events and outbox events as one batch at a time, read in this process."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import col

from hub import audit
from hub.access import access
from hub.db import Database
from hub.models import Feedback, OutboxEvent
from hub.models.sync import SyncCheckpoint, SyncDeadLetter, SyncRecord
from hub.sync import apart
from hub.sync import runner as runner_module
from hub.sync.feedback import FeedbackTarget
from tests.hub.sync_helpers import count, customers, import_file, runner, support_org


def ticket(n: int, **overrides: Any) -> dict[str, Any]:
    return {
        "external_id": f"t{n}",
        "customer_email": f"person{n % 4}@example.com",
        "channel": "email",
        "kind": "question",
        "text": f"Question number {n}",
        "createdAt": f"2025-0{1 + n % 9}-1{n % 10}T10:00:0{n % 10}.{n:06d}+02:00",
        **overrides,
    }


def lines(tickets: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(t) + "\n" for t in tickets)


def mixed(count_: int) -> str:
    """Tickets with dead letters of every kind (not JSON, no customer, a bad date), a
    non-ASCII text and external ids repeated across batches (updates)."""
    out: list[str] = []
    for n in range(count_):
        if n % 17 == 5:
            out.append("{not json\n")
        elif n % 13 == 3:
            out.append(json.dumps(ticket(n, customer_email="nobody@example.com")) + "\n")
        elif n % 11 == 7:
            out.append(json.dumps(ticket(n, createdAt="2025-13-45")) + "\n")
        elif n % 9 == 4:
            # The same ticket as three records earlier, changed: across a batch boundary
            # of the runs below at times.
            out.append(json.dumps(ticket(n - 3, text=f"Changed {n} — ünïcode")) + "\n")
        else:
            out.append(json.dumps(ticket(n, tags="a;B", scale="nps", score=n % 11)) + "\n")
    return "".join(out)


@pytest.fixture
async def rules_restored() -> AsyncIterator[None]:
    saved = access.rules
    yield
    access.rules = saved


@pytest.fixture(autouse=True)
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner forks a reading child only from a process without other threads; the
    test runner has some (pytest-xdist's, SQLite's driver's), idle in what the child
    does: let these tests fork anyway."""
    monkeypatch.setattr(runner_module, "_may_fork", lambda: True)


def forks_noted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children forked from now on (in the parent: a child returns 0)."""
    children: list[int] = []
    fork = os.fork

    def fork_noted() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork_noted)
    return children


async def _state(db: Database) -> dict[str, Any]:
    """What an import left, without the ids and times that differ from run to run."""
    async with db.session() as session:
        feedback = (await session.execute(select(Feedback))).scalars().all()
        links = (await session.execute(select(SyncRecord))).scalars().all()
        letters = (await session.execute(select(SyncDeadLetter))).scalars().all()
        events = (
            (await session.execute(select(OutboxEvent).order_by(col(OutboxEvent.position))))
            .scalars()
            .all()
        )
        checkpoint = (await session.execute(select(col(SyncCheckpoint.cursor)))).scalar_one()
        broken = (await audit.verify_chain(session))[1]
    ref_of = {row.id: row.external_ref for row in feedback}
    return {
        "feedback": sorted(
            (
                row.external_ref,
                row.channel,
                row.kind,
                row.text,
                row.scale,
                row.score,
                tuple(row.tags),
                row.created_at,
            )
            for row in feedback
        ),
        "links": sorted((link.external_id, ref_of[link.record_id], link.digest) for link in links),
        "letters": sorted((d.position, d.reason, d.record, d.resolved_at is None) for d in letters),
        "events": [(e.position, ref_of[e.record_id], e.operation, e.fields) for e in events],
        "checkpoint": checkpoint,
        "chain broken": broken,
    }


async def _import(db: Database, path: Path, records: int, **options: Any) -> dict[str, Any]:
    await support_org(db)
    await customers(db, 4)
    name = await import_file(db, path)
    report = await runner(db, batch_size=7, **options).run(name, rewind_if_done=True)
    assert report.status == "succeeded", report.error
    assert report.counts.read == records
    return await _state(db)


async def _empty(db: Database) -> None:
    async with db.transaction() as session:
        for table in ("outbox_event", "sync_record", "sync_dead_letter", "feedback"):
            await session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 — fixed names
        for table in ("sync_run", "sync_checkpoint", "sync_lease", "sync_connector"):
            await session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 — fixed names
        await session.execute(text("DELETE FROM customer"))
        await session.execute(text("DELETE FROM organization"))


async def test_overlapping_batches_and_a_reading_child_store_what_one_batch_at_a_time_does(
    db: Database, tmp_path: Path, rules_restored: None
) -> None:
    path = tmp_path / "desk.jsonl"
    path.write_text(mixed(80))
    reference = await _import(db, path, 80, in_flight=1, apart=False)
    assert reference["chain broken"] is None
    assert len(reference["letters"]) > 10 and len(reference["feedback"]) > 40
    for options in ({"in_flight": 3, "apart": False}, {"in_flight": 2, "apart": True}):
        await _empty(db)
        assert await _import(db, path, 80, **options) == reference, options


async def test_a_batch_failing_in_flight_stops_the_ones_after_it_uncommitted(
    db: Database, tmp_path: Path, rules_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await support_org(db)
    await customers(db, 4)
    path = tmp_path / "desk.jsonl"
    path.write_text(lines([ticket(n) for n in range(40)]))
    name = await import_file(db, path)
    store = FeedbackTarget.store

    async def failing_third(self: FeedbackTarget, session: Any, run: Any, items: Any) -> Any:
        if any(item.external_id == "t10" for item in items):  # the third batch of five
            raise RuntimeError("the third batch breaks")
        return await store(self, session, run, items)

    monkeypatch.setattr(FeedbackTarget, "store", failing_third)
    report = await runner(db, batch_size=5, in_flight=3).run(name)
    assert report.status == "failed"
    assert "the third batch breaks" in (report.error or "")
    # The two batches before it committed, none after it (each waited for its turn).
    assert await count(db, Feedback) == 10
    async with db.session() as session:
        cursor = (await session.execute(select(col(SyncCheckpoint.cursor)))).scalar_one()
    assert json.loads(cursor or "{}").get("line") == 10

    monkeypatch.setattr(FeedbackTarget, "store", store)
    resumed = await runner(db, batch_size=5, in_flight=3).run(name)
    assert resumed.status == "succeeded", resumed.error
    assert (resumed.counts.read, resumed.counts.created) == (30, 30)
    assert await count(db, Feedback) == await count(db, SyncRecord) == 40


async def test_the_reading_child_stores_what_was_read_before_a_damaged_file_and_ends(
    db: Database, tmp_path: Path, rules_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gzip file cut short: the batches read before the damage are stored, the run
    fails naming it, and no child process is left behind."""
    await support_org(db)
    await customers(db, 4)
    whole = gzip.compress(lines([ticket(n) for n in range(300)]).encode())
    path = tmp_path / "desk.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    name = await import_file(db, path)
    children = forks_noted(monkeypatch)
    report = await runner(db, batch_size=20).run(name)
    assert report.status == "failed"
    assert "gzip" in (report.error or "")
    assert 0 < report.counts.created < 300
    assert await count(db, Feedback) == report.counts.created
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # noqa: ASYNC222 — reaped already


async def test_a_run_stopped_early_ends_its_reading_child(
    db: Database, tmp_path: Path, rules_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await support_org(db)
    await customers(db, 4)
    path = tmp_path / "desk.jsonl"
    path.write_text(lines([ticket(n) for n in range(20_000)]))
    name = await import_file(db, path)
    children = forks_noted(monkeypatch)

    async def broken(self: FeedbackTarget, *args: Any) -> Any:
        raise RuntimeError("storing fails")

    monkeypatch.setattr(FeedbackTarget, "store", broken)
    report = await runner(db, batch_size=10).run(name)
    assert report.status == "failed"
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # noqa: ASYNC222 — killed and reaped


def test_raw_data_is_the_dead_letters_text() -> None:
    from connectors import Record
    from hub.sync.runner import raw_record

    data = {"external_id": "t1", "text": "ünï", "n": 1.5, "list": [1, None]}
    here = raw_record(Record(data, "line 1", "c"))
    raw = apart.RawData(here)
    assert raw_record(Record(raw, "line 1", "c")) == here
    assert dict(raw) == data and len(raw) == 4 and raw["n"] == 1.5


def test_a_process_with_other_threads_reads_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real check
    import threading

    from hub.sync.runner import _may_fork

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not _may_fork()
    finally:
        stop.set()
        other.join()
