"""``hub audit``: verify the audit log, export its anchor, export the log (DESIGN §3).

``verify`` exits 0 with "N events, chain intact, ..." (notes, if any, on stderr), or 1
with one line per problem: the first event that does not check out (modified, deleted or
reordered), or a head that does not match the signed anchor (the newest events deleted,
an older copy of the table put back, the anchor tampered with); ``--anchor FILE`` also
checks the head against a checkpoint exported earlier. ``anchor`` prints that checkpoint
(``--output FILE`` writes it) for keeping outside the database. ``export`` writes the
log, or one customer's disclosure report (``--customer``), as CSV or JSON. A running
server writes partner reads in batches: the newest reads (one
``HUB_AUDIT_FLUSH_INTERVAL``) may not be in the database yet when these commands run.
"""

from __future__ import annotations

import asyncio
import enum
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit, audit_anchor, disclosures
from hub.audit_anchor import AnchorFileError, Checkpoint
from hub.audit_verify import Verification, verify_log
from hub.cli_errors import fail, print_error, redacted
from hub.db import Database, make_engine
from hub.migrate import current_revision, head_revision
from hub.settings import Settings, SettingsError, load_settings

audit_app = typer.Typer(
    help="The audit log: verify it, export its signed head, export it.", no_args_is_help=True
)
out = Console(soft_wrap=True, highlight=False)
# soft_wrap: a message is one line even when stderr is a pipe (Rich wraps at 80 otherwise).
err = Console(stderr=True, soft_wrap=True, highlight=False)
T = TypeVar("T")

# Below this many events a check is instant: no progress bar.
_PROGRESS_FROM = 20_000


class Format(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


def _say(label: str, style: str, message: str) -> None:
    err.print(Text.assemble((label, style), " ", " ".join(message.split())))


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise fail(str(error)) from None


def _on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the database of ``settings``, which must be initialised and
    current; a database failure ends as one line (exit 1), never a traceback."""
    url = settings.database_url

    async def run() -> T:
        current = await current_revision(url)
        if current is None:
            raise fail(
                f"the database at {redacted(url)} is not initialised (it has no audit log): "
                "run `hub init` (or `hub migrate`) first"
            )
        if current != head_revision():
            raise fail(
                f"the database at {redacted(url)} is at migration {current}, older than this "
                f"hub's {head_revision()}: run `hub migrate` first"
            )
        database = Database(make_engine(url))
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        reason = detail[0] if detail else type(error).__name__
        raise fail(f"cannot read the audit log at {redacted(url)}: {reason}", code=1) from None


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except OSError as error:
        raise fail(f"--anchor: cannot read {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise fail(f"--anchor: {path} is not a JSON file written by `hub audit anchor`") from None
    except AnchorFileError as error:
        raise fail(f"--anchor: {path} is {error}") from None


async def _verify(
    database: Database, key: bytes, exported: Checkpoint | None, show_progress: bool
) -> Verification:
    async with database.session() as session:
        total = await audit.count_events(session)
        if not show_progress or total < _PROGRESS_FROM:
            return await verify_log(session, key, exported=exported)
        columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("verify", total=total)
            return await verify_log(
                session,
                key,
                exported=exported,
                progress=lambda done: progress.update(task, completed=done),
            )


def _summary(result: Verification, exported: Checkpoint | None) -> str:
    if result.checked == 0 and result.anchor is None:
        return "the audit log is empty (never written)"
    said = f"{result.checked} events, chain intact"
    if result.anchor is not None:
        said += f", head anchored at seq {result.anchor.seq}"
    if exported is not None:
        said += f", the exported anchor (seq {exported.seq}) is in the chain"
    return said


@audit_app.command("verify")
def verify(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    anchor: Annotated[
        Path | None,
        typer.Option(help="A checkpoint saved by `hub audit anchor`: the log must still reach it"),
    ] = None,
) -> None:
    """Walk the whole chain and check its head against the anchor; exit 1 naming what
    does not check out."""
    settings = _settings()
    exported = None if anchor is None else _read_checkpoint(anchor)
    key = _master_key(settings)
    result = _on_database(
        settings, lambda database: _verify(database, key, exported, show_progress=not quiet)
    )
    if result.broken is not None:
        broken = result.broken
        raise fail(
            f"chain broken at event {broken.seq} (id {broken.event_id}): {broken.reason}; "
            f"{result.checked} events before it check out",
            code=1,
        )
    for note in result.notes:
        _say("note:", "yellow", note)
    if result.problems:
        for problem in result.problems:
            print_error(problem)
        raise typer.Exit(code=1)
    out.print(_summary(result, exported))


def _master_key(settings: Settings) -> bytes:
    try:
        return audit_anchor.key_for(settings.master_key)
    except SettingsError as error:
        raise fail(str(error)) from None


@audit_app.command("anchor")
def anchor(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout)")
    ] = None,
) -> None:
    """Print the signed checkpoint of the log's head (JSON), to keep outside the
    database; `hub audit verify --anchor FILE` checks the log still reaches it."""
    settings = _settings()
    key = _master_key(settings)

    async def work(database: Database) -> tuple[Checkpoint, audit_anchor.Finding | None]:
        async with database.transaction() as session:
            return await _anchor(session, key)

    checkpoint, finding = _on_database(settings, work)
    if finding is not None:
        label = ("error:", "red") if finding.tampering else ("note:", "yellow")
        _say(*label, f"{finding.describe()}; recorded in the log before anchoring it")
    text = json.dumps(checkpoint.as_json(), indent=2) + "\n"
    _write(output, text, f"anchor of seq {checkpoint.seq}")


async def _anchor(
    session: AsyncSession, key: bytes
) -> tuple[Checkpoint, audit_anchor.Finding | None]:
    return await audit.anchor_head(session, key, actor=audit.shell_actor())


async def _export_rows(database: Database, customer: uuid.UUID | None) -> list[dict[str, Any]]:
    async with database.session() as session:
        if customer is not None:
            views = await disclosures.disclosures_of(session, customer)
            return [view.as_json() for view in views]
        return [event.as_json() async for event in audit.iter_events(session)]


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
            raise fail(f"--customer must be a customer id (a UUID), got {customer!r}") from None
    rows = _on_database(settings, lambda database: _export_rows(database, customer_id))
    columns = disclosures.EXPORT_COLUMNS if customer_id is not None else audit.EVENT_COLUMNS
    text = audit.render(rows, columns, "csv" if format is Format.CSV else "json")
    _write(output, text, f"{len(rows)} rows")


def _write(output: Path | None, text: str, what: str) -> None:
    """``text`` to stdout, or to ``output`` saying ``what`` was written there."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise fail(f"cannot write {output}: {error.strerror}") from None
    err.print(f"{what} written to {output}")
