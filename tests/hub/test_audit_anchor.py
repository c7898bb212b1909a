"""The anchored head of the audit chain (issue 15): deleting the newest events, putting
back an older copy of the table, rewriting the head, forging or deleting the anchor are
each detected and named, on both backends; normal appends (one at a time, in batches,
concurrently, the disclosure writer's) keep verification green; an append that finds the
anchor wanting records it in the chain instead of discarding it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text
from sqlmodel import col

from hub import audit, audit_anchor, disclosures
from hub.audit_anchor import Checkpoint, Head, key_for, short
from hub.audit_verify import Verification, verify_log
from hub.db import Database
from hub.models import AuditAnchor, AuditEvent, Disclosure, OrgKind
from hub.models._sealed import vault
from hub.principal import Principal
from hub.settings import SettingsError
from tests.conftest import SECRET

KEY = key_for(SECRET.encode())
_events = AuditEvent.__table__  # type: ignore[attr-defined]
_anchor = AuditAnchor.__table__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
async def empty_log(db: Database) -> None:
    """Start from an empty, never-anchored log (the session's database holds the policy
    install event and its anchor)."""
    async with db.transaction() as session:
        await session.execute(delete(Disclosure))
        await session.execute(delete(AuditEvent))
        await session.execute(delete(AuditAnchor))


def entry(i: int) -> audit.Entry:
    return audit.Entry(
        actor="operator/test", action="test.event", target=f"t:{i}", details={"i": i}
    )


async def grow(db: Database, n: int, *, batch: int = 1) -> list[AuditEvent]:
    """``n`` more events, ``batch`` to a transaction (like real writers)."""
    events: list[AuditEvent] = []
    for start in range(0, n, batch):
        async with db.transaction() as session:
            events += await audit.append_all(
                session, [entry(i) for i in range(start, min(n, start + batch))]
            )
    return events


async def check(db: Database, exported: Checkpoint | None = None) -> Verification:
    async with db.session() as session:
        return await verify_log(session, KEY, exported=exported, batch=7)


async def sql(db: Database, statement: str, **params: Any) -> None:
    async with db.transaction() as session:
        await session.execute(text(statement), params)


async def rows_of(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A copy of the event rows and the anchor row, as a backup would hold them."""
    async with db.session() as session:
        events = [dict(r._mapping) for r in await session.execute(select(_events))]
        anchor = [dict(r._mapping) for r in await session.execute(select(_anchor))]
    return events, anchor


async def put_back(
    db: Database, events: Sequence[dict[str, Any]], anchor: Sequence[dict[str, Any]] | None = None
) -> None:
    """Replace the table (and, given ``anchor``, the anchor row) with an older copy."""
    async with db.transaction() as session:
        await session.execute(delete(AuditEvent))
        await session.execute(insert(_events), list(events))
        if anchor is not None:
            await session.execute(delete(AuditAnchor))
            await session.execute(insert(_anchor), list(anchor))


async def current_anchor(db: Database) -> Checkpoint | None:
    async with db.session() as session:
        return await audit_anchor.read(session)


async def write_anchor(db: Database, checkpoint: Checkpoint) -> None:
    async with db.transaction() as session:
        await audit_anchor.write(session, checkpoint)


async def insert_raw(db: Database, after: AuditEvent, n: int) -> list[AuditEvent]:
    """``n`` events with valid hashes written straight into the table after ``after``,
    without touching the anchor: what a hub without the anchor (or a forger) writes."""
    prev, events = after, []
    for i in range(n):
        event = AuditEvent(
            seq=prev.seq + 1,
            at=prev.at,
            actor="old/replica",
            action="test.raw",
            target=f"raw:{i}",
            details={"raw": i},
            prev_hash=prev.hash,
            hash="",
        )
        event.hash = audit.event_hash(
            seq=event.seq,
            prev_hash=event.prev_hash,
            at=event.at,
            actor=event.actor,
            organization=None,
            client=None,
            action=event.action,
            target=event.target,
            details=event.details,
        )
        events.append(event)
        prev = event
    async with db.transaction() as session:
        session.add_all(events)
    return events


def only(lines: Sequence[str]) -> str:
    assert len(lines) == 1, lines
    return lines[0]


# --- normal operation --------------------------------------------------------------------


async def test_appends_keep_the_anchor_on_the_head(db: Database) -> None:
    events = await grow(db, 5) + await grow(db, 12, batch=5)
    reader = Principal(
        client_id="acme-client",
        organization_id=events[0].id,
        organization_slug="acme",
        organization_kind=OrgKind.DISTRIBUTOR,
    )
    reads = []
    for n in range(3):
        collector = disclosures.ReadCollector(reader, f"Page{n}", disclosures.query_hash("{x}"))
        collector.note("Customer", 1, {"id": events[n].id}, MappingProxyType({"name": "n"}))
        reads.append(collector)
    async with db.transaction() as session:
        assert await disclosures.write_reads(session, reads) == 3
    result = await check(db)
    assert result.intact and (result.problems, result.notes) == ((), ())
    assert result.checked == 20
    anchor = await current_anchor(db)
    assert anchor is not None and anchor.authentic(KEY)
    assert (anchor.seq, anchor.hash) == (result.head.seq, result.head.hash) == (20, anchor.hash)


async def test_concurrent_appends_leave_one_anchored_head(db: Database) -> None:
    async def writer(n: int) -> None:
        async with db.transaction() as session:
            await audit.append_all(session, [entry(n * 10 + i) for i in range(3)])

    await asyncio.gather(*(writer(n) for n in range(8)))
    result = await check(db)
    assert result.intact and result.notes == ()
    assert result.checked == 24 and result.anchor is not None and result.anchor.seq == 24


async def test_an_empty_log_verifies_as_empty(db: Database) -> None:
    result = await check(db)
    assert result.intact
    assert (result.checked, result.anchor, result.notes) == (0, None, ())


# --- what the anchor detects --------------------------------------------------------------


@pytest.mark.parametrize("deleted", [1, 50])
async def test_deleting_the_newest_events_is_named(db: Database, deleted: int) -> None:
    events = await grow(db, 60, batch=7)
    await sql(db, "DELETE FROM audit_event WHERE seq > :keep", keep=60 - deleted)
    result = await check(db)
    assert result.broken is None  # the shorter chain itself checks out
    assert only(result.problems) == (
        f"audit log truncated: the anchor expects events up to seq 60 (hash "
        f"{short(events[-1].hash)}, anchored {result.anchor and result.anchor.as_json()['at']}); "
        f"the table ends at seq {60 - deleted}"
    )


async def test_emptying_an_anchored_log_is_truncation(db: Database) -> None:
    await grow(db, 3)
    await sql(db, "DELETE FROM audit_event")
    problem = only((await check(db)).problems)
    assert "truncated: the anchor expects events up to seq 3" in problem
    assert problem.endswith("the table is empty")


async def test_putting_back_an_older_copy_of_the_table_is_named(db: Database) -> None:
    await grow(db, 10)
    backup, _ = await rows_of(db)
    await grow(db, 5, batch=2)
    await put_back(db, backup)
    problem = only((await check(db)).problems)
    assert "audit log truncated: the anchor expects events up to seq 15" in problem
    assert problem.endswith("the table ends at seq 10")


async def test_an_older_copy_grown_back_to_length_is_named(db: Database) -> None:
    """Without the key, events written after the old copy cannot match the anchored hash."""
    await grow(db, 10)
    backup, _ = await rows_of(db)
    await grow(db, 3)
    await put_back(db, backup)
    tenth = (await grow_view(db))[9]
    await insert_raw(db, tenth, 3)
    problem = only((await check(db)).problems)
    assert problem.startswith("audit log replaced: the anchor expects event 13 to have hash")
    assert "older copy of the table was put back, or events were rewritten" in problem


async def grow_view(db: Database) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))
        return list(rows.scalars())


async def test_rewriting_the_newest_event_with_its_hash_is_named(db: Database) -> None:
    events = await grow(db, 4)
    last = events[-1]
    forged = audit.event_hash(
        seq=last.seq,
        prev_hash=last.prev_hash,
        at=last.at,
        actor=last.actor,
        organization=None,
        client=None,
        action=last.action,
        target=last.target,
        details={"i": 99},
    )
    await sql(
        db, "UPDATE audit_event SET details = :d, hash = :h WHERE seq = 4", d='{"i": 99}', h=forged
    )
    result = await check(db)
    assert result.broken is None
    assert only(result.problems).startswith(
        f"audit log replaced: the anchor expects event 4 to have hash {short(last.hash)}"
    )


@pytest.mark.parametrize("how", ["signed with another key", "seq edited"])
async def test_a_forged_anchor_is_named(db: Database, how: str) -> None:
    events = await grow(db, 6)
    await sql(db, "DELETE FROM audit_event WHERE seq > 3")
    if how == "signed with another key":
        forged = Checkpoint.sign(key_for(b"not the hub's secret"), Head(3, events[2].hash))
        await write_anchor(db, forged)
    else:
        await sql(db, "UPDATE audit_anchor SET seq = 3, hash = :h", h=events[2].hash)
    problem = only((await check(db)).problems)
    assert problem.startswith("the anchor is tampered: its MAC does not verify")
    assert "it claims seq 3" in problem


# --- appends that find the anchor wanting record it -----------------------------------------


async def test_an_append_after_truncation_records_it_and_goes_on(db: Database) -> None:
    events = await grow(db, 10)
    await sql(db, "DELETE FROM audit_event WHERE seq > 5")
    more = await grow(db, 2, batch=2)
    # The caller gets its own events; the finding went first, as event 6.
    assert [e.seq for e in more] == [7, 8]
    async with db.session() as session:
        sixth = (await session.execute(select(AuditEvent).where(col(AuditEvent.seq) == 6))).one()[0]
    assert (sixth.action, sixth.actor, sixth.details["found"]) == (
        "audit.anchor",
        "hub",
        "truncated",
    )
    result = await check(db)
    assert result.anchor is not None and result.anchor.seq == 8  # anchored again
    problem = only(result.problems)
    assert problem.startswith("event 6 (")
    assert (
        f"recorded: audit log truncated: the anchor expects events up to seq 10 (hash "
        f"{short(events[-1].hash)}" in problem
    )
    assert problem.endswith("the table ends at seq 5")


async def test_the_disclosure_writer_counts_only_its_reads_after_a_finding(db: Database) -> None:
    await grow(db, 4)
    await sql(db, "DELETE FROM audit_event WHERE seq = 4")
    reader = Principal(
        client_id="c",
        organization_id=(await grow_view(db))[0].id,
        organization_slug="acme",
        organization_kind=OrgKind.SUPPLIER,
    )
    collector = disclosures.ReadCollector(reader, "Page", disclosures.query_hash("{x}"))
    collector.note("Customer", 1, {"id": reader.organization_id}, MappingProxyType({"n": 1}))
    async with db.transaction() as session:
        assert await disclosures.write_reads(session, [collector]) == 1
        assert await disclosures.index_pending(session) == 1
    async with db.session() as session:
        [row] = (await session.execute(select(Disclosure))).scalars().all()
    assert row.event_seq == 5  # the read, after the finding (event 4)
    assert "truncated" in only((await check(db)).problems)


async def test_a_log_without_anchor_is_adopted_once(db: Database) -> None:
    """A log from before the anchor: verify says so; the next append anchors it and
    records that the events before it had none. Losing the anchor again is a problem."""
    await grow(db, 4)
    await sql(db, "DELETE FROM audit_anchor")
    result = await check(db)
    assert result.intact
    assert only(result.notes).startswith("not anchored yet: the next append anchors the 4 events")
    await grow(db, 1)
    result = await check(db)
    assert result.intact and result.anchor is not None and result.anchor.seq == 6
    assert only(result.notes).startswith("the log is anchored since event 5 (")
    assert "the 4 events before it had no anchor" in result.notes[0]

    await sql(db, "DELETE FROM audit_anchor")
    assert only((await check(db)).problems).startswith(
        "the audit anchor is missing (deleted?) though the chain records anchoring"
    )
    await grow(db, 1)
    problem = only((await check(db)).problems)
    assert problem.startswith("event 7 (")
    assert "the anchor was gone though the log had been anchored since event 5" in problem


async def test_events_appended_without_the_anchor_are_noted_not_failed(db: Database) -> None:
    """A hub older than the anchor, during a rollout, appends without moving it."""
    events = await grow(db, 3)
    await insert_raw(db, events[-1], 2)
    result = await check(db)
    assert result.intact
    assert only(result.notes) == (
        "events 4 to 5 were appended without updating the anchor (at seq 3): by a hub older "
        "than the anchor during a rollout, or written straight into the database; the next "
        "append covers them"
    )
    await grow(db, 1)
    result = await check(db)
    assert result.intact and result.anchor is not None and result.anchor.seq == 7
    assert only(result.notes).startswith("event 6 (")


# --- exported checkpoints -----------------------------------------------------------------


async def test_an_exported_anchor_catches_a_whole_database_restore(db: Database) -> None:
    await grow(db, 5)
    backup, anchor_row = await rows_of(db)
    await grow(db, 5)
    async with db.transaction() as session:
        exported, finding = await audit.anchor_head(session, KEY, actor="cli:test")
    assert finding is None and exported.seq == 10
    await put_back(db, backup, anchor_row)
    # The database alone holds a consistent older state: only the export shows it.
    assert (await check(db)).intact
    problem = only((await check(db, exported)).problems)
    assert problem.startswith(
        "audit log truncated: the exported anchor expects events up to seq 10"
    )
    assert problem.endswith("the table ends at seq 5")


async def test_an_exported_anchor_round_trips_and_must_be_authentic(
    db: Database, tmp_path: Path
) -> None:
    await grow(db, 3)
    async with db.transaction() as session:
        exported, _ = await audit.anchor_head(session, KEY, actor="cli:test")
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(exported.as_json()))
    read = Checkpoint.from_json(json.loads(path.read_text()))
    assert read == exported
    await grow(db, 2)
    assert (await check(db, read)).intact  # the log went on past the export
    edited = Checkpoint(read.seq + 1, read.hash, read.at, read.mac)
    assert only((await check(db, edited)).problems).startswith(
        "the exported anchor is tampered: its MAC does not verify"
    )
    for bad in ({"format": "x"}, {**exported.as_json(), "seq": -1}, [1]):
        with pytest.raises(audit_anchor.AnchorFileError):
            Checkpoint.from_json(bad)


async def test_anchoring_an_empty_log_gives_seq_zero(db: Database) -> None:
    async with db.transaction() as session:
        checkpoint, finding = await audit.anchor_head(session, KEY, actor="cli:test")
    assert (checkpoint.seq, checkpoint.hash, finding) == (0, audit.GENESIS, None)
    assert checkpoint.authentic(KEY)
    assert (await check(db)).intact
    await grow(db, 2)
    assert (await check(db, checkpoint)).intact


# --- the key --------------------------------------------------------------------------------


async def test_appends_without_loaded_keys_sign_with_the_settings_key(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CLI commands that append without loading the data keys sign with HUB_SECRET_KEY."""
    monkeypatch.setattr(vault, "anchor_key", None)
    monkeypatch.setenv("HUB_SECRET_KEY", SECRET)
    await grow(db, 2)
    assert (await check(db)).intact
    monkeypatch.delenv("HUB_SECRET_KEY")
    monkeypatch.setenv("HUB_SECRET_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(SettingsError, match="HUB_SECRET_KEY is not set"):
        await grow(db, 1)
    result = await check(db)
    assert result.intact and result.checked == 2  # nothing was written without a key
