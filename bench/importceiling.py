"""bench: the ceiling of ``hub import feedback`` on PostgreSQL: what storing exactly the
rows an import stores costs, with nothing else done.

A benchmark, not a test. It makes a fresh database as :mod:`bench.importing` does
(migrated, seeded with ``--customers`` customers, analyzed), clones it (``CREATE DATABASE
... TEMPLATE``), and runs the real ``hub import feedback FILE --as support`` into the
first. It then reads back what that run stored (the feedback rows, their links in
``sync_record``, their outbox events and the run's ``feedback.import`` audit events, one
a batch) and stores them again into the clone, batch by batch as the import committed
them (the records each audit event lists), each batch in one transaction: ``COPY`` of
the rows, the links and the outbox events, and an ``INSERT`` of the audit event. No file
is read, nothing validated, no customer looked up, no statement built: a client doing
only that cannot store the import's data faster on this server, and the database's CPU
per record for it is a floor of the import's own.

Run from the repository root::

    .venv/bin/python -m bench.importceiling                    # 100,000 records, 3 rounds
    .venv/bin/python -m bench.importceiling --records 20000 --rounds 1

Columns: records/s (the import: over its run, as ``hub import`` reports it; the ceiling:
over its replay), the client's CPU (the ``hub import`` process with its reading child,
less the CPU of an import of one record, its start-up; the replaying process) and
PostgreSQL's (the backends serving the database, read from ``/proc``), each per record,
and both together. The last line says how much CPU per record the machine's cores give
at 20,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.databases import DatabaseSetupError, _admin, analyze, check_pg_url, database_url
from bench.importing import PG_URL, DatabaseCPU, run_import, seed, write_feedback

_GOAL = 20_000
"""Records per second the import aims at (issue: connectors and sync)."""


@dataclass(frozen=True)
class Cost:
    what: str
    records: int
    seconds: float
    client_cpu: float
    db_cpu: float

    def row(self) -> str:
        per = 1e6 / self.records
        return (
            f"{self.what:<28} {self.records / self.seconds:>9,.0f} "
            f"{self.client_cpu * per:>11.1f} {self.db_cpu * per:>8.1f} "
            f"{(self.client_cpu + self.db_cpu) * per:>8.1f}"
        )


@dataclass(frozen=True)
class Batch:
    feedback: list[tuple[Any, ...]]
    links: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    audit: tuple[Any, ...]


Columns = tuple[list[str], list[str], list[str], list[str]]
"""The column names of feedback, sync_record, outbox_event and audit_event."""


async def stored(url: str, clone_url: str) -> tuple[Columns, list[Batch]]:
    """What the import stored, batch by batch (the records each of its audit events lists):
    the tables' column names and the batches' rows. The connector the import made is
    copied into the clone (the links' foreign key), outside any measure."""
    connection = await asyncpg.connect(_plain(url))
    try:
        connectors = await connection.fetch("SELECT * FROM sync_connector")
        target = await asyncpg.connect(_plain(clone_url))
        try:
            await target.copy_records_to_table(
                "sync_connector",
                records=[tuple(row) for row in connectors],
                columns=list(connectors[0].keys()),
            )
        finally:
            await target.close()
        audit = await connection.fetch(
            "SELECT * FROM audit_event WHERE action = 'feedback.import' ORDER BY seq"
        )
        feedback = {row["id"]: row for row in await connection.fetch("SELECT * FROM feedback")}
        links = {
            row["record_id"]: row for row in await connection.fetch("SELECT * FROM sync_record")
        }
        events = {
            row["record_id"]: row
            for row in await connection.fetch(
                "SELECT * FROM outbox_event WHERE resource = 'Feedback' ORDER BY position"
            )
        }
    finally:
        await connection.close()
    batches = []
    for event in audit:
        ids = [uuid.UUID(record["id"]) for record in json.loads(event["details"])["records"]]
        batches.append(
            Batch(
                [tuple(feedback[i]) for i in ids],
                [tuple(links[i]) for i in ids],
                [tuple(events[i]) for i in ids],
                tuple(event),
            )
        )
    columns = (
        list(next(iter(feedback.values())).keys()),
        list(next(iter(links.values())).keys()),
        list(next(iter(events.values())).keys()),
        list(audit[0].keys()),
    )
    return columns, batches


async def replay(url: str, names: Columns, batches: list[Batch]) -> tuple[float, float]:
    """Store ``batches`` into the database at ``url``, one transaction each: wall seconds
    and this process's CPU seconds."""
    feedback, links, events, audit = names
    # The column names are the database's own (the rows read back), not input.
    insert_audit = (
        f"INSERT INTO audit_event ({', '.join(audit)}) "  # noqa: S608
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(audit) + 1))})"
    )
    connection = await asyncpg.connect(_plain(url))
    try:
        wall, cpu = time.monotonic(), time.process_time()
        for batch in batches:
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "feedback", records=batch.feedback, columns=feedback
                )
                await connection.copy_records_to_table(
                    "sync_record", records=batch.links, columns=links
                )
                await connection.copy_records_to_table(
                    "outbox_event", records=batch.events, columns=events
                )
                await connection.execute(insert_audit, *batch.audit)
        return time.monotonic() - wall, time.process_time() - cpu
    finally:
        await connection.close()


def one_round(args: argparse.Namespace, path: Path, workdir: Path) -> list[Cost]:
    with database_url("postgresql", workdir, args.pg_url) as url:
        asyncio.run(seed(url, args.customers))
        analyze(url)
        clone = f"{make_url(url).database}_ceiling"
        asyncio.run(
            _admin(args.pg_url, f'CREATE DATABASE "{clone}" TEMPLATE "{make_url(url).database}"')
        )
        clone_url = make_url(url).set(database=clone).render_as_string(hide_password=False)
        try:
            with DatabaseCPU(url) as database_cpu:
                _, duration, cpu, _, summary = run_import(url, path, None, None, "ceiling")
            print(f"  import: {summary}", file=sys.stderr)
            names, batches = asyncio.run(stored(url, clone_url))
            records = sum(len(batch.feedback) for batch in batches)
            with DatabaseCPU(clone_url) as replay_cpu:
                seconds, client = asyncio.run(replay(clone_url, names, batches))
            print(f"  replay: {records:,} records in {seconds:.1f} s", file=sys.stderr)
            # The process's start-up, to take off its CPU: an import of one record.
            one = workdir / "one.jsonl"
            one.write_text(path.read_text().split("\n", 1)[0] + "\n")
            _, _, start_up, _, _ = run_import(url, one, None, None, "ceiling-one")
        finally:
            asyncio.run(_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{clone}" WITH (FORCE)'))
    return [
        Cost(
            "hub import (run)",
            records,
            duration or float("nan"),
            cpu - start_up,
            database_cpu.seconds or 0.0,
        ),
        Cost("ceiling: the same rows, COPY", records, seconds, client, replay_cpu.seconds or 0.0),
    ]


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    try:
        check_pg_url(args.pg_url)
        rounds: list[list[Cost]] = []
        with tempfile.TemporaryDirectory(prefix="hub-bench-ceiling-") as tmp:
            path = Path(tmp) / "feedback.jsonl"
            write_feedback(path, args.records, args.customers)
            for n in range(args.rounds):
                print(f"round {n + 1} of {args.rounds}", file=sys.stderr)
                rounds.append(one_round(args, path, Path(tmp)))
    except DatabaseSetupError as error:
        raise SystemExit(str(error)) from None
    print(
        f"{'PostgreSQL, ' + format(args.records, ',') + ' records':<28} {'rec/s':>9} "
        f"{'client µs':>11} {'db µs':>8} {'both µs':>8}"
    )
    for i in range(len(rounds[0])):
        costs = [r[i] for r in rounds]
        print(
            Cost(
                costs[0].what,
                costs[0].records,
                statistics.median(c.seconds for c in costs),
                statistics.median(c.client_cpu for c in costs),
                statistics.median(c.db_cpu for c in costs),
            ).row()
        )
    cores = os.cpu_count() or 1
    print(
        f"\n{_GOAL:,} records/s on {cores} cores leaves at most {cores * 1e6 / _GOAL:.0f} µs "
        f"of CPU per record for every process together (each busy all the time). Medians of "
        f"{args.rounds} rounds; the import's client CPU is the process's and its reading "
        "child's, with the CPU of an import of one record (the start-up) taken off."
    )


if __name__ == "__main__":
    main()
