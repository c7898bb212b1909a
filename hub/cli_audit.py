"""``hub audit``: verify the hash chain of the audit log and export it (DESIGN §3).

``verify`` exits 0 with "N events, chain intact", or 1 naming the first event that does
not check out (modified, deleted or reordered). ``export`` writes the log, or one
customer's disclosure report (``--customer``), as CSV or JSON. A running server writes
partner reads in batches: the newest reads (one ``HUB_AUDIT_FLUSH_INTERVAL``) may not be
in the database yet when these commands run.
"""

from __future__ import annotations

import asyncio
import enum
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import SQLAlchemyError

from hub import audit, disclosures
from hub.db import Database, make_engine
from hub.settings import Settings, SettingsError, load_settings

audit_app = typer.Typer(
    help="The audit log: verify its hash chain, export it.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

# Below this many events a check is instant: no progress bar.
_PROGRESS_FROM = 20_000


class Format(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=code)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise _fail(str(error)) from None


async def _verify(settings: Settings, show_progress: bool) -> tuple[int, audit.ChainBreak | None]:
    database = Database(make_engine(settings.database_url))
    try:
        async with database.session() as session:
            total = await audit.count_events(session)
            if not show_progress or total < _PROGRESS_FROM:
                return await audit.verify_chain(session)
            columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task("verify", total=total)
                return await audit.verify_chain(
                    session, progress=lambda done: progress.update(task, completed=done)
                )
    finally:
        await database.dispose()


@audit_app.command("verify")
def verify(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Walk the whole chain; exit 1 naming the first broken event."""
    settings = _settings()
    try:
        checked, broken = asyncio.run(_verify(settings, show_progress=not quiet))
    except SQLAlchemyError as error:
        raise _fail(f"cannot read the audit log: {error}") from None
    if broken is not None:
        raise _fail(
            f"chain broken at event {broken.seq} (id {broken.event_id}): {broken.reason}; "
            f"{checked} events before it check out",
            code=1,
        )
    out.print(f"{checked} events, chain intact", highlight=False)


async def _export_rows(settings: Settings, customer: uuid.UUID | None) -> list[dict[str, Any]]:
    database = Database(make_engine(settings.database_url))
    try:
        async with database.session() as session:
            if customer is not None:
                views = await disclosures.disclosures_of(session, customer)
                return [view.as_json() for view in views]
            return [event.as_json() async for event in audit.iter_events(session)]
    finally:
        await database.dispose()


@audit_app.command("export")
def export(
    format: Annotated[Format, typer.Option("--format", "-f", help="csv or json")] = Format.JSON,
    customer: Annotated[
        str | None,
        typer.Option(help="A customer's id: export its disclosure report instead of the log"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout)")
    ] = None,
) -> None:
    """Export the audit log, or which organizations received which fields of a customer."""
    settings = _settings()
    customer_id = None
    if customer is not None:
        try:
            customer_id = uuid.UUID(customer)
        except ValueError:
            raise _fail(f"--customer must be a customer id (a UUID), got {customer!r}") from None
    try:
        rows = asyncio.run(_export_rows(settings, customer_id))
    except SQLAlchemyError as error:
        raise _fail(f"cannot read the audit log: {error}") from None
    columns = disclosures.EXPORT_COLUMNS if customer_id is not None else audit.EVENT_COLUMNS
    text = audit.render(rows, columns, "csv" if format is Format.CSV else "json")
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise _fail(f"cannot write {output}: {error.strerror}") from None
    err.print(f"{len(rows)} rows written to {output}", highlight=False)
