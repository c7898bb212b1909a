"""One run per connector at a time: the lease refuses a second runner, expires, fences a
stalled holder, is taken over from a dead process at once; the worker's schedule."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlmodel import col

from hub.db import Database
from hub.models.sync import SyncCheckpoint, SyncConnector, SyncLease, SyncRun
from hub.sync import Runner, RunReport
from hub.sync.config import parse_spec, save_connector
from hub.sync.errors import LeaseHeldError, LeaseLostError
from hub.sync.lease import renew, take
from hub.sync.runs import Counts, renew_and_advance, start
from hub.sync.worker import due_connectors, run_due
from tests.hub.sync_helpers import customers, feedback_count, runner, support_org


async def desk(db: Database, tmp_path: Path, records: int, **extra: object) -> SyncConnector:
    await support_org(db)
    await customers(db, 3)
    path = tmp_path / "desk.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "external_id": f"x{n}",
                    "customer_email": f"person{n % 3}@example.com",
                    "channel": "chat",
                    "kind": "question",
                    "text": f"Question {n}",
                }
            )
            + "\n"
            for n in range(records)
        )
    )
    definition = {
        "name": "desk",
        "kind": "files",
        "resource": "feedback",
        "organization": "support",
        "config": {"path": str(path)},
        **extra,
    }
    async with db.transaction() as session:
        row, _ = await save_connector(session, parse_spec(definition))
    return row


async def test_two_concurrent_runs_one_refuses(db: Database, tmp_path: Path) -> None:
    await desk(db, tmp_path, 60)
    results = await asyncio.gather(
        runner(db, batch_size=5).run("desk"),
        runner(db, batch_size=5).run("desk"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, LeaseHeldError)]
    done = [r for r in results if isinstance(r, RunReport)]
    assert len(refused) + len(done) == 2, results
    assert sum(r.counts.created for r in done) == 60
    assert await feedback_count(db) == 60
    if db.engine.dialect.name == "postgresql":
        assert len(refused) == 1, results
        assert "the connector is running elsewhere" in str(refused[0])
    else:
        # SQLite has one writer: the second runner's lease insert may wait for the
        # first run's batches until it ends, then finds the lease free and the
        # checkpoint at the end. Either way nothing is stored twice.
        assert len(refused) == 1 or sorted(r.counts.read for r in done) == [0, 60], results
    # Released at the end: the next run may go (and finds everything stored).
    again = await runner(db).run("desk")
    assert (again.counts.read, again.counts.created) == (0, 0)


async def test_a_lease_held_elsewhere_refuses_until_it_expires(
    db: Database, tmp_path: Path
) -> None:
    connector = await desk(db, tmp_path, 5)
    async with db.transaction() as session:
        await take(session, connector.id, "replica-2:4242:abcd", seconds=0.3)
    with pytest.raises(LeaseHeldError, match="replica-2:4242:abcd"):
        await runner(db).run("desk")
    await asyncio.sleep(0.4)
    report = await runner(db).run("desk")
    assert report.status == "succeeded" and report.counts.created == 5


async def test_a_stalled_holder_is_fenced(db: Database, tmp_path: Path) -> None:
    connector = await desk(db, tmp_path, 1)
    async with db.transaction() as session:
        await take(session, connector.id, "slow:1:a", seconds=0.05)
    await asyncio.sleep(0.1)
    async with db.transaction() as session:
        await take(session, connector.id, "fast:2:b", seconds=60)
    with pytest.raises(LeaseLostError, match="another runner took over"):
        async with db.transaction() as session:
            await renew(session, connector.id, "slow:1:a")
    async with db.transaction() as session:
        await renew(session, connector.id, "fast:2:b")  # the holder renews


class _RobbedRunner(Runner):
    """A runner whose lease another holder takes once its first batch has committed,
    before its second batch is stored."""

    async def _commit(
        self, state: Any, batch: Any, prepared: Any, started: float, turn: Any
    ) -> str:
        if batch[0].position == "line 6":
            if turn.previous is not None:  # the first batch, still in flight
                await asyncio.wait([turn.previous])
            async with self.database.transaction() as session:
                await session.execute(update(SyncLease).values(holder="thief:1:x"))
        return await super()._commit(state, batch, prepared, started, turn)


async def test_a_run_whose_lease_was_taken_writes_no_further_batch(
    db: Database, tmp_path: Path
) -> None:
    connector = await desk(db, tmp_path, 15)
    robbed = _RobbedRunner(db, runner(db).master_key, batch_size=5, backoff=0.01)
    report = await robbed.run("desk")
    assert report.status == "failed"
    assert "another runner took over" in (report.error or "")
    # The first batch only: the second renewed nothing, and wrote nothing.
    assert await feedback_count(db) == 5
    async with db.session() as session:
        checkpoint = await session.get(SyncCheckpoint, connector.id)
        run = await session.get(SyncRun, report.run_id)
        lease = await session.get(SyncLease, connector.id)
    assert checkpoint is not None and json.loads(checkpoint.cursor or "")["line"] == 5
    assert run is not None and (run.read, run.created) == (5, 5)
    assert lease is not None and lease.holder == "thief:1:x"


async def test_renew_and_advance(db: Database, tmp_path: Path) -> None:
    connector = await desk(db, tmp_path, 1)
    async with db.transaction() as session:
        await take(session, connector.id, "me:1:a", seconds=1)
        run, _ = await start(session, connector.id, "me:1:a")

    async def state() -> tuple[Any, ...]:
        async with db.session() as session:
            lease = await session.get(SyncLease, connector.id)
            checkpoint = await session.get(SyncCheckpoint, connector.id)
            counts = (
                await session.execute(
                    select(
                        col(SyncRun.read), col(SyncRun.created), col(SyncRun.dead_lettered)
                    ).where(col(SyncRun.id) == run.id)
                )
            ).one()
        assert lease is not None
        cursor = None if checkpoint is None else (checkpoint.cursor, checkpoint.run_id)
        return lease.expires_at, cursor, tuple(counts)

    expires, _, _ = await state()
    async with db.transaction() as session:
        # Not the transaction's first statement, as in a batch (the driver runs it then).
        await session.execute(select(col(SyncRun.id)))
        done = Counts(read=3, created=2, dead_lettered=1)
        await renew_and_advance(
            session, run.id, connector.id, "c1", done, holder="me:1:a", seconds=600
        )
    renewed, cursor, counts = await state()
    assert renewed > expires
    assert cursor == ("c1", run.id) and counts == (3, 2, 1)
    async with db.transaction() as session:
        await renew_and_advance(
            session,
            run.id,
            connector.id,
            "c2",
            Counts(read=2, created=2),
            holder="me:1:a",
            seconds=600,
        )
    assert (await state())[1:] == (("c2", run.id), (5, 4, 1))
    # Another holder's: refused, nothing advanced.
    async with db.transaction() as session:
        await session.execute(select(col(SyncRun.id)))
        with pytest.raises(LeaseLostError, match="another runner took over"):
            await renew_and_advance(
                session, run.id, connector.id, "c3", Counts(read=1), holder="other:2:b", seconds=600
            )
        await session.rollback()
    assert (await state())[1:] == (("c2", run.id), (5, 4, 1))
    # Without a checkpoint's row the counts still advance, as advance() lets it pass.
    async with db.transaction() as session:
        await session.execute(delete(SyncCheckpoint))
    async with db.transaction() as session:
        await session.execute(select(col(SyncRun.id)))
        await renew_and_advance(
            session, run.id, connector.id, "c4", Counts(read=1), holder="me:1:a", seconds=600
        )
    assert (await state())[1:] == (None, (6, 4, 1))


async def test_the_lease_of_a_dead_process_here_is_taken_over_at_once(
    db: Database, tmp_path: Path
) -> None:
    connector = await desk(db, tmp_path, 2)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    holder = f"{socket.gethostname()[:120]}:{int(out)}:dead"
    async with db.transaction() as session:
        await take(session, connector.id, holder, seconds=600)
    report = await runner(db).run("desk")
    assert report.status == "succeeded" and report.counts.created == 2


async def test_the_worker_runs_connectors_when_due(db: Database, tmp_path: Path) -> None:
    await desk(db, tmp_path, 3, schedule="1h")
    async with db.transaction() as session:
        await save_connector(
            session,
            parse_spec(
                {
                    "name": "manual",
                    "kind": "files",
                    "resource": "feedback",
                    "organization": "support",
                    "config": {"path": str(tmp_path)},
                }
            ),
        )
        await save_connector(
            session,
            parse_spec(
                {
                    "name": "off",
                    "kind": "files",
                    "resource": "feedback",
                    "enabled": False,
                    "schedule": 60,
                    "organization": "support",
                    "config": {"path": str(tmp_path)},
                }
            ),
        )
    work = runner(db)
    assert await due_connectors(work) == ["desk"]
    reports = await run_due(work)
    assert [(r.connector, r.counts.created) for r in reports] == [("desk", 3)]
    assert await due_connectors(work) == []  # not due again for an hour
