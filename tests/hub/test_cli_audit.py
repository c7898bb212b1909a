"""`hub audit verify`, `anchor` and `export`, in-process (typer's runner), on both
backends: a tampered chain, a truncated log, an older copy of the table and a forged
anchor fail verification in one line naming what is wrong; exports in CSV and JSON."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from hub import audit, disclosures
from hub.cli import app as cli
from hub.db import Database, make_engine
from hub.models import AuditAnchor, AuditEvent, Disclosure, OrgKind
from hub.principal import Principal
from tests.conftest import SECRET
from tests.postgres import scratch_database

EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
ANCHOR = AuditAnchor.__table__  # type: ignore[attr-defined]

T = TypeVar("T")


def run_db(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on a fresh engine (the test body is synchronous)."""

    async def go() -> T:
        database = Database(make_engine(url))
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(go())


@pytest.fixture
def events(db: Database, database_url: str) -> list[AuditEvent]:
    """Five events on an otherwise empty log."""

    async def build(session: AsyncSession) -> list[AuditEvent]:
        await session.execute(delete(Disclosure))
        await session.execute(delete(AuditEvent))
        await session.execute(delete(AuditAnchor))
        entries = [
            audit.Entry(
                actor="operator/cli", action="test.event", target=f"t:{i}", details={"i": i}
            )
            for i in range(5)
        ]
        return await audit.append_all(session, entries)

    return run_db(database_url, build)


def invoke(database_url: str, *args: str) -> Any:
    env = {
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_LOG_JSON": "false",
        "COLUMNS": "200",
    }
    return CliRunner().invoke(cli, ["audit", *args], env=env)


def sql(database_url: str, *statements: str, **params: Any) -> None:
    async def go(session: AsyncSession) -> None:
        for statement in statements:
            await session.execute(text(statement), params)

    run_db(database_url, go)


def test_verify_an_intact_chain(events: list[AuditEvent], database_url: str) -> None:
    result = invoke(database_url, "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "5 events, chain intact, head anchored at seq 5"


# (statements, the seq named, the index of the event whose id is named, reason)
TAMPERING: dict[str, tuple[tuple[str, ...], int, int, str]] = {
    "change": (
        ("UPDATE audit_event SET details = '{\"i\": 42}' WHERE seq = 3",),
        3,
        2,
        "modified",
    ),
    "delete": (("DELETE FROM audit_event WHERE seq = 4",), 4, 4, "missing"),
    "swap": (
        (
            "UPDATE audit_event SET seq = -1 WHERE seq = 2",
            "UPDATE audit_event SET seq = 2 WHERE seq = 3",
            "UPDATE audit_event SET seq = 3 WHERE seq = -1",
        ),
        2,
        2,  # event 3's row, now numbered 2
        "prev_hash",
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_verify_names_the_tampered_event(
    events: list[AuditEvent], database_url: str, kind: str
) -> None:
    statements, seq, index, reason = TAMPERING[kind]
    sql(database_url, *statements)
    result = invoke(database_url, "verify")
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert f"chain broken at event {seq} (id {events[index].id})" in said
    assert reason in said
    assert "chain intact" not in result.stdout


def test_export_the_log_as_json_and_csv(
    events: list[AuditEvent], database_url: str, tmp_path: Path
) -> None:
    as_json = invoke(database_url, "export", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [(r["seq"], r["target"], r["details"]) for r in rows] == [
        (i + 1, f"t:{i}", {"i": i}) for i in range(5)
    ]
    assert [r["hash"] for r in rows] == [e.hash for e in events]
    out = tmp_path / "log.csv"
    as_csv = invoke(database_url, "export", "--format", "csv", "--output", str(out))
    assert as_csv.exit_code == 0, as_csv.output
    assert "5 rows written" in as_csv.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["seq"] for r in table] == ["1", "2", "3", "4", "5"]
    assert json.loads(table[0]["details"]) == {"i": 0}


def test_export_a_customer_disclosure_report(events: list[AuditEvent], database_url: str) -> None:
    customer, other = uuid.uuid4(), uuid.uuid4()
    reader = Principal(
        client_id="acme-client",
        organization_id=uuid.uuid4(),
        organization_slug="acme",
        organization_kind=OrgKind.DISTRIBUTOR,
    )
    reads = disclosures.ReadCollector(reader, "Page", disclosures.query_hash("{ page }"))
    for customer_id in (customer, other):
        raw = {"id": customer_id}
        reads.note("Customer", 1, raw, MappingProxyType({"id": customer_id, "name": "n"}))

    async def write(session: AsyncSession) -> int:
        return await disclosures.write_reads(session, [reads])

    assert run_db(database_url, write) == 1
    result = invoke(database_url, "export", "--format", "csv", "--customer", str(customer))
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["customer_id"] == row["record_id"] == str(customer)
    assert (row["organization"], row["resource"], row["fields"]) == ("acme", "Customer", "id name")
    assert (row["event_seq"], row["operation"]) == ("6", "Page")
    # The chain with the read event in it still verifies.
    assert (
        invoke(database_url, "verify").stdout.strip()
        == "6 events, chain intact, head anchored at seq 6"
    )
    bad = invoke(database_url, "export", "--customer", "nope")
    assert bad.exit_code == 2
    assert "--customer must be a customer id" in bad.stderr


# --- the anchored head (issue 15) ---------------------------------------------------------


def one_line_error(result: Any, code: int) -> str:
    """The command failed with ``code`` and said why in one line, without a traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return str(line)


@pytest.fixture
def log(db: Database, database_url: str) -> list[AuditEvent]:
    """60 events, appended in batches of 7 on an otherwise empty, unanchored log."""

    async def build(session: AsyncSession) -> list[AuditEvent]:
        await session.execute(delete(Disclosure))
        await session.execute(delete(AuditEvent))
        await session.execute(delete(AuditAnchor))
        return []

    run_db(database_url, build)
    events: list[AuditEvent] = []
    for start in range(0, 60, 7):
        entries = [
            audit.Entry(actor="operator/cli", action="test.event", target=f"t:{i}", details={})
            for i in range(start, min(60, start + 7))
        ]

        async def append(session: AsyncSession, batch: list[audit.Entry] = entries) -> Any:
            return await audit.append_all(session, batch)

        events += run_db(database_url, append)
    return events


def copy_of_log(database_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async def read(session: AsyncSession) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        events = [dict(r._mapping) for r in await session.execute(select(EVENTS))]
        anchor = [dict(r._mapping) for r in await session.execute(select(ANCHOR))]
        return events, anchor

    return run_db(database_url, read)


def put_back(
    database_url: str, events: list[dict[str, Any]], anchor: list[dict[str, Any]] | None = None
) -> None:
    async def write(session: AsyncSession) -> None:
        await session.execute(delete(AuditEvent))
        await session.execute(insert(EVENTS), events)
        if anchor is not None:
            await session.execute(delete(AuditAnchor))
            await session.execute(insert(ANCHOR), anchor)

    run_db(database_url, write)


def more_events(database_url: str, n: int) -> None:
    entries = [audit.Entry(actor="a/b", action="x", target=f"m:{i}", details={}) for i in range(n)]
    run_db(database_url, lambda s: audit.append_all(s, entries))


@pytest.mark.parametrize("deleted", [1, 50])
def test_verify_names_the_newest_events_deleted(
    log: list[AuditEvent], database_url: str, deleted: int
) -> None:
    sql(database_url, "DELETE FROM audit_event WHERE seq > :keep", keep=60 - deleted)
    line = one_line_error(invoke(database_url, "verify"), 1)
    assert line.startswith(
        "error: audit log truncated: the anchor expects events up to seq 60 "
        f"(hash {log[-1].hash[:16]}…, anchored "
    )
    assert line.endswith(f"the table ends at seq {60 - deleted}")


def test_verify_names_an_older_copy_of_the_table_put_back(
    log: list[AuditEvent], database_url: str
) -> None:
    backup, _ = copy_of_log(database_url)
    more_events(database_url, 4)
    put_back(database_url, backup)
    line = one_line_error(invoke(database_url, "verify"), 1)
    assert "audit log truncated: the anchor expects events up to seq 64" in line
    assert line.endswith("the table ends at seq 60")
    # Writes go on, and the finding stays in the chain.
    more_events(database_url, 1)
    line = one_line_error(invoke(database_url, "verify"), 1)
    assert line.startswith("error: event 61 (")
    assert "recorded: audit log truncated: the anchor expects events up to seq 64" in line


def test_verify_names_a_forged_anchor(log: list[AuditEvent], database_url: str) -> None:
    sql(
        database_url,
        "DELETE FROM audit_event WHERE seq > 10",
        "UPDATE audit_anchor SET seq = 10, hash = :tenth",
        tenth=log[9].hash,
    )
    line = one_line_error(invoke(database_url, "verify"), 1)
    assert line.startswith("error: the anchor is tampered: its MAC does not verify")


def test_verify_an_empty_log(db: Database, database_url: str) -> None:
    sql(
        database_url,
        "DELETE FROM disclosure",
        "DELETE FROM audit_event",
        "DELETE FROM audit_anchor",
    )
    result = invoke(database_url, "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "the audit log is empty (never written)"
    assert result.stderr == ""


def test_verify_an_emptied_log_whose_anchor_says_events_existed(
    events: list[AuditEvent], database_url: str
) -> None:
    sql(database_url, "DELETE FROM audit_event")
    line = one_line_error(invoke(database_url, "verify"), 1)
    assert "audit log truncated: the anchor expects events up to seq 5" in line
    assert line.endswith("the table is empty")


@pytest.fixture
async def blank_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database on the same backend that nothing ever initialised."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    async with scratch_database("hub_blank") as url:
        yield url


@pytest.mark.parametrize("command", [("verify",), ("anchor",), ("export",)])
def test_an_uninitialised_database_gets_one_line(blank_url: str, command: tuple[str, ...]) -> None:
    line = one_line_error(invoke(blank_url, *command), 2)
    assert "is not initialised (it has no audit log): run `hub init` (or `hub migrate`)" in line


def test_an_unreachable_database_gets_one_line() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"
    line = one_line_error(invoke(url, "verify"), 1)
    assert line.startswith("error: cannot read the audit log at postgresql+asyncpg://")


def test_anchor_export_catches_a_whole_database_restore(
    events: list[AuditEvent], database_url: str, tmp_path: Path
) -> None:
    backup = copy_of_log(database_url)
    more_events(database_url, 3)
    saved = tmp_path / "anchor.json"
    result = invoke(database_url, "anchor", "--output", str(saved))
    assert result.exit_code == 0, result.output
    exported = json.loads(saved.read_text())
    assert (exported["format"], exported["seq"]) == ("hub-audit-anchor/1", 8)
    printed = invoke(database_url, "anchor")
    assert json.loads(printed.stdout) == exported  # nothing appended since: the same head
    ok = invoke(database_url, "verify", "--anchor", str(saved))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == (
        "8 events, chain intact, head anchored at seq 8, the exported anchor (seq 8) is in the chain"
    )
    put_back(database_url, *backup)  # table and anchor row from the older copy
    assert invoke(database_url, "verify").exit_code == 0  # consistent: the database can't tell
    line = one_line_error(invoke(database_url, "verify", "--anchor", str(saved)), 1)
    assert "truncated: the exported anchor expects events up to seq 8" in line
    assert line.endswith("the table ends at seq 5")


def test_anchor_records_what_it_found_before_anchoring(
    events: list[AuditEvent], database_url: str
) -> None:
    sql(database_url, "DELETE FROM audit_event WHERE seq = 5")
    result = invoke(database_url, "anchor")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["seq"] == 5  # the finding, now event 5
    [said] = result.stderr.strip().splitlines()
    assert said.startswith("error: audit log truncated: the anchor expects events up to seq 5")
    assert said.endswith("recorded in the log before anchoring it")
    line = one_line_error(invoke(database_url, "verify"), 1)
    assert line.startswith("error: event 5 (") and "expects events up to seq 5" in line


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("not json", "is not a JSON file written by `hub audit anchor`"),
        ('{"format": "other"}', "is not an audit anchor"),
        ('{"format": "hub-audit-anchor/1", "seq": 1}', "its hash is not 64 hexadecimal digits"),
    ],
)
def test_a_bad_anchor_file_gets_one_line(
    events: list[AuditEvent], database_url: str, tmp_path: Path, content: str, said: str
) -> None:
    path = tmp_path / "anchor.json"
    path.write_text(content)
    line = one_line_error(invoke(database_url, "verify", "--anchor", str(path)), 2)
    assert said in line
    missing = one_line_error(invoke(database_url, "verify", "--anchor", str(tmp_path / "no")), 2)
    assert "cannot read" in missing
