"""bench: outbound webhook deliveries per second to a local receiver.

A benchmark, not a test: it asserts nothing about speed. Per backend it makes a fresh
database, one distributor with ``--events`` consenting customers assigned to it, a
webhook subscription to a receiver on 127.0.0.1 (a separate process, so it does not
share the worker's CPU: it verifies every signature with ``standardwebhooks`` and
deduplicates on ``webhook-id``), writes one outbox event per customer, and times the
delivery worker from the first round until the receiver holds every event: queueing
(fan-out under the distributor's row filter), projection as the distributor,
signing, posting and recording (deliveries and read-audit disclosures).

Run from the repository root::

    .venv/bin/python -m bench.deliveries                       # both backends, 5,000 events
    .venv/bin/python -m bench.deliveries --backend sqlite --events 2000 --concurrency 32

Everything stays on loopback; the PostgreSQL database it creates on ``--pg-url`` is
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

SECRET_KEY = "bench-deliveries-" + "k" * 40
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


# --- the receiver (its own process) -------------------------------------------------------


async def _receive(secret: str) -> None:
    from standardwebhooks import Webhook, WebhookVerificationError

    hook = Webhook(secret)
    seen: set[str] = set()
    counts = {"requests": 0, "accepted": 0, "duplicates": 0, "bad_signatures": 0}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if not await reader.readline():
                    return
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                counts["requests"] += 1
                try:
                    hook.verify(body, headers, json_parse=False)
                    status = 204
                except WebhookVerificationError:
                    counts["bad_signatures"] += 1
                    status = 400
                if status == 204:
                    message = headers["webhook-id"]
                    if message in seen:
                        counts["duplicates"] += 1
                    else:
                        seen.add(message)
                        counts["accepted"] += 1
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Connections still open at exit are cancelled: nothing to report about them.
    loop.set_exception_handler(lambda _loop, _context: None)

    async def report() -> None:
        # The parent reads one line of counts per request on stdin.
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            print(json.dumps(counts), flush=True)
        stop.set()

    task = asyncio.create_task(report())
    await stop.wait()
    task.cancel()
    server.close()


class Receiver:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    async def counts(self) -> dict[str, int]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"?\n")
        await self.process.stdin.drain()
        counts: dict[str, int] = json.loads(await self.process.stdout.readline())
        return counts


@contextlib.asynccontextmanager
async def receiver(secret: str) -> AsyncIterator[Receiver]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.deliveries",
        "--receiver",
        secret,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield Receiver(process, json.loads(line)["port"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


# --- the database -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database_url(backend: str, pg_url: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'hub.db'}"
        return
    if make_url(pg_url).host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("--pg-url must name a loopback host")
    name = f"hub_bench_deliveries_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def seed(url: str, events: int) -> tuple[Any, Any]:
    """A migrated database with keys, the default policy, a distributor and its client,
    ``events`` consenting customers assigned to it; returns (database, principal)."""
    from hub.db import Database, make_engine
    from hub.migrate import upgrade
    from hub.models import Customer, CustomerPartner, Organization, OrgKind
    from hub.oauth.clients import create_client
    from hub.principal import Principal
    from hub.sharing import install_defaults
    from hub.vault import email_index, ensure_data_key, load_data_keys, phone_index

    await upgrade(url)
    database = Database(make_engine(url))
    master = SECRET_KEY.encode()
    async with database.transaction() as session:
        await ensure_data_key(session, master)
        await install_defaults(session, author="bench")
    async with database.session() as session:
        await load_data_keys(session, master)
    async with database.transaction() as session:
        org = Organization(slug="acme", name="Acme", kind=OrgKind.DISTRIBUTOR)
        session.add(org)
        session.add(Organization(slug="operator", name="Operator", kind=OrgKind.OPERATOR))
        await session.flush()
        client, _ = await create_client(
            session, organization=org, name="bench", scopes=["customers:read"]
        )
    for start in range(0, events, 1000):
        async with database.transaction() as session:
            batch = []
            for n in range(start, min(events, start + 1000)):
                email = f"c{n}@example.com"
                batch.append(
                    Customer(
                        name=f"Customer {n}",
                        email=email,
                        email_index=email_index(email),
                        phone="+14155552671",
                        phone_index=phone_index("+14155552671"),
                        city="Lyon",
                        country="FR",
                        consent_share_with_partners=True,
                    )
                )
            session.add_all(batch)
            await session.flush()
            session.add_all(
                CustomerPartner(customer_id=c.id, organization_id=org.id, role="reseller")
                for c in batch
            )
    principal = Principal(
        client_id=client.client_id,
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind.DISTRIBUTOR,
        scopes=frozenset({"customers:read", "webhooks:manage"}),
    )
    return database, principal


async def emit_events(database: Any) -> int:
    """One Customer update event per customer, in batches (the outbox is the input)."""
    from sqlalchemy import select

    from hub import outbox
    from hub.models import Customer
    from hub.outbox import Change, Operation

    async with database.session() as session:
        ids = list((await session.execute(select(Customer.id))).scalars())  # type: ignore[call-overload]
    for start in range(0, len(ids), 2000):
        async with database.transaction() as session:
            await outbox.emit_all(
                session,
                [
                    Change("Customer", i, Operation.UPDATE, ("city",))
                    for i in ids[start : start + 2000]
                ],
                actor="bench",
            )
    return len(ids)


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    from hub import delivery
    from hub.access import access
    from hub.delivery import DeliveryWorker, PolicyFollower, guarded_client

    settings = delivery.DeliverySettings(
        allow_loopback=True, concurrency=args.concurrency, batch=args.batch
    )
    async with database_url(backend, args.pg_url) as url:
        started = time.perf_counter()
        database, principal = await seed(url, args.events)
        seeded = time.perf_counter() - started
        try:
            async with database.transaction() as session:
                made = await delivery.create(
                    session,
                    principal,
                    delivery.SubscriptionRequest("http://127.0.0.1:1/placeholder", ["Customer"]),
                    settings,
                )
            async with receiver(made.secret) as peer:
                async with database.transaction() as session:
                    row = await delivery.owned(session, principal, made.subscription.id)
                    row.url = f"http://127.0.0.1:{peer.port}/hooks"
                emitted = await emit_events(database)
                http = guarded_client(settings)
                worker = DeliveryWorker(
                    database,
                    access,
                    settings,
                    http,
                    follow=PolicyFollower(database, access, SECRET_KEY.encode()),
                )
                begin = time.perf_counter()
                deadline = begin + args.timeout
                while time.perf_counter() < deadline:
                    await worker.run_once()
                    if worker.totals.delivered >= emitted:
                        break
                elapsed = time.perf_counter() - begin
                await http.aclose()
                counts = await peer.counts()
        finally:
            await database.dispose()
    return {
        "backend": backend,
        "events": emitted,
        "delivered": worker.totals.delivered,
        "seconds": round(elapsed, 2),
        "deliveries_per_second": round(worker.totals.delivered / elapsed, 1),
        "rounds": worker.totals.rounds,
        "receiver": counts,
        "seed_seconds": round(seeded, 1),
        "concurrency": args.concurrency,
        "batch": args.batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(_receive(args.receiver))
        return
    os.environ.setdefault("HUB_LOG_LEVEL", "WARNING")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        result = asyncio.run(run_backend(backend, args))
        print(json.dumps(result), flush=True)
        print(
            f"{backend}: {result['delivered']} of {result['events']} events delivered in "
            f"{result['seconds']} s: {result['deliveries_per_second']} deliveries/s "
            f"(receiver: {result['receiver']})",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
