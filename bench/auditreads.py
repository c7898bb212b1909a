"""The cost of recording partner reads: ``python -m bench.auditreads``.

Scenario (b) of ``bench.run`` (a distributor's page of 50 customers with their feedback)
served with ``HUB_AUDIT_READS=true`` and ``=false``, alternately, ``--rounds`` times each on
one seeded database per backend (alternating spreads drift of a shared machine over
both). Prints per round and the medians of requests/s and server CPU per request, and the
ratio on/off (goal >= 0.9). With reads audited, every page request also leaves one
``read`` event, and the disclosure index (hub.disclosures.index) names the customers it
returned; the run checks they were written.

On PostgreSQL it also measures the database's CPU per request (bench/pgcpu.py), and what
the read audit costs it per page: the in-window difference on - off (the events, and the
indexing the writer did in the window), plus the indexing left when the server stopped
(the index lags by design), done then in a measured backend with the GIN index's pending
list cleaned (work autovacuum would do later; the test servers run without it), per
request of the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select, text
from sqlmodel import col

from bench.databases import BACKENDS, analyze, check_pg_url, database_url
from bench.drive import LoadOptions, drive
from bench.hubapi import PARTNER_PAGE_QUERY, HubClient, credentials, request_body
from bench.pgcpu import PostgresCpu, _process_cpu
from bench.procs import HOST, free_port, server
from bench.results import ScenarioResult
from bench.run import DEFAULT_PG_URL, _hub_env, _hub_executable, _seed

GOAL = 0.9


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.auditreads", description=__doc__)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    return parser.parse_args(argv)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _catch_up(db_url: str) -> tuple[float, int]:
    """Index the events the server left unindexed and clean the GIN pending lists of the
    disclosure table, in one backend; returns (its CPU seconds, events indexed)."""
    from hub.db import Database, make_engine
    from hub.disclosures import index_pending

    async def run() -> tuple[float, int]:
        database = Database(make_engine(db_url))
        try:
            async with database.session() as session:
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                gin = list(
                    (
                        await session.execute(
                            text(
                                "SELECT indexname FROM pg_indexes WHERE tablename = 'disclosure'"
                                " AND indexdef LIKE '%USING gin%'"
                            )
                        )
                    ).scalars()
                )
            async with database.session() as session:
                before = _process_cpu(pid) or 0.0
                async with session.begin():
                    events = await index_pending(session)
                for name in gin:
                    await session.execute(text(f"SELECT gin_clean_pending_list('{name}')"))
                await session.commit()
                return (_process_cpu(pid) or 0.0) - before, events
        finally:
            await database.dispose()

    return asyncio.run(run())


def _counts(db_url: str) -> tuple[int, int]:
    """(read events, customers named by the disclosure index) in the benchmark database."""
    from hub.db import Database, make_engine
    from hub.disclosures import customer_count
    from hub.models import AuditEvent, Disclosure

    async def count() -> tuple[int, int]:
        database = Database(make_engine(db_url))
        try:
            async with database.session() as session:
                events = await session.execute(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "read")  # type: ignore[arg-type]
                )
                rows = await session.execute(
                    select(func.coalesce(func.sum(customer_count(col(Disclosure.customer_ids))), 0))
                )
                return int(events.scalar_one()), int(rows.scalar_one())
        finally:
            await database.dispose()

    return asyncio.run(count())


def run_backend(
    backend: str, args: argparse.Namespace
) -> tuple[dict[str, list[ScenarioResult]], list[float]]:
    """The rounds' results per mode, and per "on" round the PostgreSQL CPU (ms) of the
    indexing left at the server's stop, per request of its window."""
    hub = _hub_executable()
    options = LoadOptions(
        concurrency=args.concurrency,
        processes=1,
        warmup=args.warmup,
        duration=args.duration,
        client="raw",
    )
    results: dict[str, list[ScenarioResult]] = {"on": [], "off": []}
    catch_up: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="pbench-audit-") as tmp,
        database_url(backend, Path(tmp), args.pg_url) as db_url,
    ):
        workdir = Path(tmp)
        port = free_port()
        base_env = _hub_env(db_url)
        _say(f"[{backend}] seeding {args.customers} customers ...")
        _say(f"[{backend}] seeded in {_seed(hub, args.customers, port, workdir, base_env):.1f} s")
        if backend == "postgresql":
            analyze(db_url)
        partner = credentials(json.loads((workdir / "creds.json").read_text()), "distributor")
        body = [request_body(PARTNER_PAGE_QUERY)]
        for round_ in range(args.rounds):
            for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                env = {**base_env, "HUB_AUDIT_READS": "true" if mode == "on" else "false"}
                argv = [hub, "serve", "--host", HOST, "--port", str(port), "--workers", "1"]
                before = _counts(db_url)
                log = workdir / f"hub-{mode}-{round_}.log"
                with server(argv, cwd=workdir, env=env, port=port, log=log) as process:
                    client = HubClient(f"http://{HOST}:{port}")
                    try:
                        token = client.token(partner)
                    finally:
                        client.close()
                    _say(f"[{backend}] round {round_ + 1} reads audited {mode} ...")
                    result = drive(
                        f"b-{mode}-{round_}",
                        url=f"http://{HOST}:{port}/graphql",
                        headers={"Authorization": f"Bearer {token}"},
                        bodies=body,
                        options=options,
                        server_pid=process.pid,
                        workdir=workdir,
                        postgres=PostgresCpu(db_url) if backend == "postgresql" else None,
                    )
                # The server has stopped (and flushed): what did it record?
                late = ""
                if backend == "postgresql":
                    cpu_s, left = _catch_up(db_url)
                    if mode == "on":
                        catch_up.append(cpu_s * 1000 / max(result.requests, 1))
                        late = f"; {left} events indexed after it, {catch_up[-1]:.3f} ms/req"
                events, rows = (a - b for a, b in zip(_counts(db_url), before, strict=True))
                pg = result.pg_cpu_ms_per_request
                _say(
                    f"[{backend}]   {result.requests_per_s:8.1f} req/s, "
                    f"{result.server_cpu_ms_per_request or 0:.2f} ms CPU/req"
                    + (f" + PostgreSQL {pg:.3f}" if pg is not None else "")
                    + f", {result.errors} errors; {events} read events, {rows} customers"
                    f" indexed{late}"
                )
                if mode == "off" and events:
                    _say(f"[{backend}]   WARNING: reads recorded with auditing off")
                if mode == "on" and events < result.requests:
                    _say(f"[{backend}]   WARNING: fewer read events than requests")
                results[mode].append(result)
    return results, catch_up


def summary(backend: str, results: dict[str, list[ScenarioResult]], catch_up: list[float]) -> str:
    on = statistics.median(r.requests_per_s for r in results["on"])
    off = statistics.median(r.requests_per_s for r in results["off"])
    cpu_on = statistics.median(r.server_cpu_ms_per_request or 0 for r in results["on"])
    cpu_off = statistics.median(r.server_cpu_ms_per_request or 0 for r in results["off"])
    p50_on = statistics.median(r.p50_ms for r in results["on"])
    p50_off = statistics.median(r.p50_ms for r in results["off"])
    ratio = on / off if off else 0.0
    verdict = "met" if ratio >= GOAL else "NOT met"
    line = (
        f"{backend:<10} audit off {off:8.1f} req/s (p50 {p50_off:6.1f} ms, {cpu_off:5.2f} ms "
        f"CPU/req) | on {on:8.1f} req/s (p50 {p50_on:6.1f} ms, {cpu_on:5.2f} ms CPU/req) | "
        f"on/off {ratio:.3f} (goal >= {GOAL}: {verdict})"
    )
    pg_on = [r.pg_cpu_ms_per_request for r in results["on"]]
    pg_off = [r.pg_cpu_ms_per_request for r in results["off"]]
    on_ms = [ms for ms in pg_on if ms is not None]
    off_ms = [ms for ms in pg_off if ms is not None]
    if catch_up and len(on_ms) == len(pg_on) and len(off_ms) == len(pg_off):
        # Rounds alternate off/on: each on round paired with the off round beside it.
        audit = [a - b + c for a, b, c in zip(on_ms, off_ms, catch_up, strict=True)]
        line += (
            f"\n{backend:<10} PostgreSQL CPU/req: off {statistics.median(off_ms):.3f} ms"
            f" | on {statistics.median(on_ms):.3f} ms + index left at stop "
            f"{statistics.median(catch_up):.3f} ms | read audit per page (medians of rounds): "
            f"{statistics.median(audit):.3f} ms ({', '.join(f'{a:.3f}' for a in audit)})"
        )
    return line


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        check_pg_url(args.pg_url)
    lines = []
    for backend in backends:
        results, catch_up = run_backend(backend, args)
        for mode in ("off", "on"):
            rates = ", ".join(f"{r.requests_per_s:.1f}" for r in results[mode])
            lines.append(f"{backend:<10} {mode:<3} req/s per round: {rates}")
        lines.append(summary(backend, results, catch_up))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
