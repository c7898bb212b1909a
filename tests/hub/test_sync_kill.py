"""A real `hub import` process killed with SIGKILL mid-run: the rerun resumes from the
checkpoint and ends with exactly the expected records, links and dead letters."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from hub.db import Database
from hub.models import Feedback
from hub.models.sync import SyncDeadLetter, SyncRecord, SyncRun
from tests.conftest import SECRET
from tests.hub.sync_helpers import count, customers, support_org

RECORDS = 1200  # the bulk path stores a batch of 25 in milliseconds: enough to kill it mid-way
BAD_EVERY = 50  # every 50th record names no customer: a dead letter
BATCH = 25


def _line(n: int) -> str:
    email = "nobody@example.com" if n % BAD_EVERY == 0 else f"person{n % 20}@example.com"
    return json.dumps(
        {
            "external_id": f"k{n}",
            "customer_email": email,
            "channel": "email",
            "kind": "suggestion",
            "text": f"Suggestion number {n}",
            "scale": "nps",
            "score": n % 11,
        }
    )


def _hub(database_url: str, path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_LOG_JSON": "false",
    }
    hub = Path(sys.executable).parent / "hub"
    return subprocess.Popen(
        [
            str(hub),
            "import",
            "feedback",
            str(path),
            "--as",
            "support",
            "--batch-size",
            str(BATCH),
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _created_so_far(db: Database) -> int:
    async with db.session() as session:
        total = await session.execute(select(func.coalesce(func.sum(col(SyncRun.created)), 0)))
        return int(total.scalar_one())


async def test_a_run_killed_mid_way_resumes_with_exactly_the_expected_counts(
    db: Database, tmp_path: Path
) -> None:
    await support_org(db)
    await customers(db, 20)
    path = tmp_path / "desk.jsonl"
    path.write_text("".join(_line(n) + "\n" for n in range(1, RECORDS + 1)))
    bad = RECORDS // BAD_EVERY

    process = _hub(db.engine.url.render_as_string(hide_password=False), path)
    deadline = time.monotonic() + 60
    try:
        while await _created_so_far(db) < 3 * BATCH:  # some batches committed
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the import made no progress"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    stored = await count(db, Feedback)
    assert 3 * BATCH <= stored < RECORDS - bad, "killed too late to test anything"

    rerun = _hub(db.engine.url.render_as_string(hide_password=False), path)
    out, errors = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, errors.decode()
    summary = out.decode()
    assert "succeeded" in summary

    assert await count(db, Feedback) == RECORDS - bad
    async with db.session() as session:
        refs = (await session.execute(select(col(Feedback.external_ref)))).scalars().all()
        runs = (
            (await session.execute(select(SyncRun).order_by(col(SyncRun.started_at))))
            .scalars()
            .all()
        )
    assert len(set(refs)) == len(refs) == RECORDS - bad  # nothing twice
    assert await count(db, SyncRecord) == RECORDS - bad
    assert await count(db, SyncDeadLetter) == bad
    # The killed run is marked interrupted; the two runs together read every record once,
    # except the batch in flight when it was killed (rolled back, read again).
    assert [r.status for r in runs] == ["interrupted", "succeeded"]
    first, second = runs
    assert first.created + second.created == RECORDS - bad
    assert first.dead_lettered + second.dead_lettered == bad
    assert first.read + second.read == RECORDS
    assert second.unchanged == 0
