"""`hub audit verify` and `hub audit export`, in-process (typer's runner), on both
backends: a tampered chain fails verification naming the event; exports in CSV and JSON."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from hub import audit, disclosures
from hub.cli import app as cli
from hub.db import Database, make_engine
from hub.models import AuditEvent, Disclosure, OrgKind
from hub.principal import Principal

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
        entries = [
            audit.Entry(
                actor="operator/cli", action="test.event", target=f"t:{i}", details={"i": i}
            )
            for i in range(5)
        ]
        return await audit.append_all(session, entries)

    return run_db(database_url, build)


def invoke(database_url: str, *args: str) -> Any:
    env = {"HUB_DATABASE_URL": database_url, "HUB_LOG_JSON": "false", "COLUMNS": "200"}
    return CliRunner().invoke(cli, ["audit", *args], env=env)


def sql(database_url: str, *statements: str) -> None:
    async def go(session: AsyncSession) -> None:
        for statement in statements:
            await session.execute(text(statement))

    run_db(database_url, go)


def test_verify_an_intact_chain(events: list[AuditEvent], database_url: str) -> None:
    result = invoke(database_url, "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "5 events, chain intact"


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
    assert invoke(database_url, "verify").stdout.strip() == "6 events, chain intact"
    bad = invoke(database_url, "export", "--customer", "nope")
    assert bad.exit_code == 2
    assert "--customer must be a customer id" in bad.stderr
