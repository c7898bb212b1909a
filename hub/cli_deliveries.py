"""``hub deliveries``: outbound webhook deliveries, for operators (docs/deliveries.md).

``list`` shows the newest deliveries (filter by ``--subscription`` and ``--status``);
``subscriptions`` lists every subscription with its state; ``replay`` sends again one
delivery (by id or ``webhook-id``), every dead letter (``--dead``), or everything after
an outbox position for one subscription (``--from N --subscription ID``); ``worker``
runs the delivery worker (``--once``: one round, for cron or a check).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import delivery
from hub.access import access
from hub.cli_errors import fail, redacted
from hub.db import Database, make_engine
from hub.delivery import DeliverySettings, DeliveryStatus, DeliveryWorker, PolicyFollower
from hub.delivery.worker import Totals
from hub.errors import HubError
from hub.migrate import current_revision, head_revision
from hub.models import Organization
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from hub.settings import Settings, SettingsError, load_settings
from hub.vault import load_data_keys

deliveries_app = typer.Typer(
    help="Outbound webhook deliveries: list, replay, run the worker.", no_args_is_help=True
)
# Piped output is not cut at 80 columns: ids are copied from it into other commands.
out = Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, soft_wrap=True, highlight=False)
T = TypeVar("T")


def _settings() -> tuple[Settings, DeliverySettings]:
    try:
        return load_settings(), delivery.load_delivery_settings()
    except SettingsError as error:
        raise fail(str(error)) from None


async def _open(settings: Settings) -> Database:
    url = settings.database_url
    current = await current_revision(url)
    if current != head_revision():
        state = "not initialised" if current is None else f"at migration {current}"
        raise fail(f"the database at {redacted(url)} is {state}: run `hub migrate` first")
    database = Database(make_engine(url))
    async with database.session() as session:
        await load_data_keys(session, settings.master_key)
    return database


def _on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work``; a hub error (unknown id, bad option) ends as one line, exit 2."""

    async def run() -> T:
        database = await _open(settings)
        try:
            return await work(database)
        except HubError as error:
            raise fail(str(error)) from None
        finally:
            await database.dispose()

    return asyncio.run(run())


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run(database: Database) -> T:
        async with database.transaction() as session:
            return await work(session)

    return _on_database(settings, run)


def _table(*headers: str) -> Table:
    """Columns fold rather than cut: ids are copied from here into other commands."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _subscription(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"--subscription: {value!r} is not a subscription id (a UUID)") from None


@deliveries_app.command("list")
def list_command(
    subscription: Annotated[
        str | None, typer.Option(help="Only this subscription's deliveries (its id).")
    ] = None,
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only deliveries in this state.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
) -> None:
    """The newest deliveries first: webhook-id, event, state, attempts, last answer."""
    settings, _ = _settings()
    sub_id = _subscription(subscription)

    async def work(session: AsyncSession) -> list[WebhookDelivery]:
        return await delivery.list_deliveries(
            session, subscription_id=sub_id, status=status, limit=limit
        )

    rows = _in_transaction(settings, work)
    if not rows:
        err.print("no deliveries match")
        return
    table = _table(
        "webhook-id",
        "subscription",
        "event",
        "record",
        "status",
        "tries",
        "last answer",
        "next / delivered",
    )
    for row in rows:
        answer = row.last_error or ("" if row.response_status is None else str(row.response_status))
        timing = (
            _when(row.delivered_at)
            if row.delivered_at
            else (_when(row.next_attempt_at) if row.status == DeliveryStatus.PENDING else "")
        )
        table.add_row(
            row.message_id,
            str(row.subscription_id)[:8],
            f"#{row.position} {row.resource}.{row.operation}",
            str(row.record_id),
            row.status,
            str(row.attempts),
            answer,
            timing,
        )
    out.print(table)


@deliveries_app.command("subscriptions")
def subscriptions_command() -> None:
    """Every subscription: id, organization, URL, resources, state (and why disabled)."""
    settings, _ = _settings()

    async def work(session: AsyncSession) -> list[tuple[WebhookSubscription, str]]:
        found = await session.execute(
            select(WebhookSubscription, col(Organization.slug))
            .join(Organization, col(Organization.id) == WebhookSubscription.organization_id)
            .order_by(col(WebhookSubscription.created_at))
        )
        return [(row, str(slug)) for row, slug in found.all()]

    rows = _in_transaction(settings, work)
    if not rows:
        err.print("no subscriptions")
        return
    table = _table("id", "organization", "url", "resources", "status")
    for row, slug in rows:
        state = (
            row.status if row.disabled_reason is None else f"{row.status}: {row.disabled_reason}"
        )
        table.add_row(str(row.id), slug, row.url, ", ".join(row.resources), state)
    out.print(table)


@deliveries_app.command("replay")
def replay_command(
    reference: Annotated[
        str | None, typer.Argument(help="A delivery's id or webhook-id.", show_default=False)
    ] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Every dead letter.")] = False,
    from_position: Annotated[
        int | None,
        typer.Option(
            "--from",
            min=0,
            # A position is a 64-bit integer: past it the database (or SQLite's driver,
            # an OverflowError) refused the statement, an internal error.
            max=2**63 - 1,
            help="Every outbox event after this position (needs --subscription).",
        ),
    ] = None,
    subscription: Annotated[
        str | None, typer.Option(help="Limit --dead to, or replay --from for, this subscription.")
    ] = None,
) -> None:
    """Send deliveries again, with the same webhook-id (receivers deduplicate on it)."""
    chosen = [reference is not None, dead, from_position is not None]
    if sum(chosen) != 1:
        raise fail("give one of: a delivery id or webhook-id, --dead, or --from POSITION")
    if reference is not None and subscription is not None:
        raise fail("--subscription goes with --dead or --from, not with a delivery id")
    settings, _ = _settings()
    sub_id = _subscription(subscription)
    if reference is not None:
        row = _in_transaction(settings, lambda s: delivery.replay(s, reference))
        out.print(f"delivery {row.message_id} queued again ({row.resource}.{row.operation})")
    elif dead:
        count = _in_transaction(settings, lambda s: delivery.replay_dead(s, sub_id))
        scope = f" of subscription {sub_id}" if sub_id else ""
        out.print(f"{count} dead letter{'s' if count != 1 else ''}{scope} queued again")
    else:
        if sub_id is None or from_position is None:
            raise fail("--from needs --subscription ID")
        position = from_position
        count = _in_transaction(settings, lambda s: delivery.replay_from(s, sub_id, position))
        out.print(
            f"subscription {sub_id} reads the outbox again after position {position}; "
            f"{count} deliver{'ies' if count != 1 else 'y'} already made queued again"
        )
    err.print("a running `hub deliveries worker` sends them within a poll interval")


@deliveries_app.command("worker")
def worker_command(
    once: Annotated[bool, typer.Option("--once", help="Run one round and exit.")] = False,
) -> None:
    """Queue outbox events for every subscription and send what is due, until stopped
    (Ctrl-C or SIGTERM); each round follows the sharing policy in force."""
    settings, delivery_settings = _settings()

    async def work(database: Database) -> Totals:
        http = delivery.guarded_client(delivery_settings)
        worker = DeliveryWorker(
            database,
            access,
            delivery_settings,
            http,
            follow=PolicyFollower(database, access, settings.master_key),
        )
        try:
            if once:
                await worker.run_once()
                return worker.totals
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            err.print(
                f"delivering webhooks from {redacted(settings.database_url)} "
                f"(every {delivery_settings.poll_interval:g} s when idle; Ctrl-C stops)"
            )
            reporter = asyncio.create_task(_report(worker, stop))
            await worker.run_forever(stop)
            await reporter
            return worker.totals
        finally:
            await http.aclose()

    totals = _on_database(settings, work)
    out.print(
        f"{_count(totals.rounds, 'round')}: {totals.queued} queued, "
        f"{totals.delivered} delivered, {totals.failed} to retry, {totals.dead} dead, "
        f"{totals.dropped} dropped (no longer visible), "
        f"{_count(totals.disabled, 'subscription')} disabled"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


async def _report(worker: DeliveryWorker, stop: asyncio.Event, every: float = 10.0) -> None:
    """A progress line every ``every`` seconds while something happened."""
    last = (-1, -1)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        t = worker.totals
        if (t.queued, t.delivered + t.failed + t.dead) != last:
            last = (t.queued, t.delivered + t.failed + t.dead)
            err.print(
                f"{t.queued} queued, {t.delivered} delivered, {t.failed} to retry, {t.dead} dead"
            )


@deliveries_app.command("receive")
def receive_command(
    secret: Annotated[
        str, typer.Option(help="The subscription's signing secret (whsec_...).", show_default=False)
    ],
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1.")] = 8001,
) -> None:
    """A local receiver for trying webhooks out: verifies each request's signature,
    drops repeated webhook-ids, prints one line per event (until Ctrl-C)."""
    from standardwebhooks import Webhook, WebhookVerificationError

    try:
        hook = Webhook(secret)
    except Exception:  # noqa: BLE001 - the library raises several kinds for a bad secret
        raise fail("--secret: not a signing secret (whsec_ followed by base64)") from None
    seen: set[str] = set()

    def handle(body: bytes, headers: dict[str, str]) -> int:
        try:
            event = hook.verify(body, headers)
        except WebhookVerificationError as error:
            err.print(f"refused a request: {error}")
            return 400
        message = headers.get("webhook-id", "")
        if message in seen:
            err.print(f"{message}: seen before, dropped")
            return 200
        seen.add(message)
        data = event.get("data", {}) if isinstance(event, dict) else {}
        record = data.get("record", {}) if isinstance(data, dict) else {}
        out.print(
            f"{message} {event.get('type')} {data.get('id')} changed={data.get('changed')} "
            f"fields={sorted(record)}"
        )
        return 200

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = min(int(headers.get("content-length", "0") or 0), 1 << 20)
                status = handle(await reader.readexactly(length), headers)
                writer.write(f"HTTP/1.1 {status} -\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        err.print(f"receiving webhooks at http://127.0.0.1:{port}/ (Ctrl-C stops)")
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(run())
    except OSError as error:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {error.strerror}", code=1) from None
    except KeyboardInterrupt:
        pass
