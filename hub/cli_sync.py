"""``hub import`` and ``hub sync``: inbound connectors from the shell (docs/sync.md).

``hub import RESOURCE FILE --as ORG`` imports one CSV or JSONL file (gzip accepted) as an
organization; ``hub sync apply FILE`` defines connectors from YAML, ``hub sync run NAME``
runs one, ``hub sync status`` lists them with their last run, ``hub sync worker`` runs the
scheduled ones when due. Long runs show their progress on stderr; each run ends with a
summary line on stdout. Exit codes: 0 when the run succeeded (dead letters included: they
are listed), 1 when it failed or could not start, 2 for a bad command line or definition.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select
from sqlmodel import col

from hub import audit
from hub.cli_errors import fail, redacted
from hub.db import Database, make_engine
from hub.migrate import DatabaseBehindError, ensure_current
from hub.models.sync import SyncDeadLetter
from hub.settings import Settings, SettingsError, load_settings
from hub.sync import Runner, RunProgress, RunReport
from hub.sync.config import read_yaml, resource_named, save_connector, specs_from_yaml
from hub.sync.errors import ConnectorConfigError, LeaseHeldError, SyncError
from hub.sync.imports import define_import, readable_file
from hub.sync.runner import DEFAULT_BATCH
from hub.sync.runs import ConnectorStatus, statuses
from hub.sync.worker import work_forever
from hub.vault import load_data_keys

sync_app = typer.Typer(
    help="Inbound connectors: define, run, watch, and the scheduler.", no_args_is_help=True
)


def out() -> Console:
    """Standard output, measured when a command prints: a console made at import keeps
    the width it saw then (``COLUMNS`` of whatever imported it first)."""
    return Console(soft_wrap=True, highlight=False)


def err() -> Console:
    """Standard error, measured when a command prints (see :func:`out`)."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


T = TypeVar("T")
_BATCH = Annotated[
    int, typer.Option("--batch-size", min=1, max=10_000, help="Records per transaction")
]
_QUIET = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display")]
# Dead letters listed after a run; `hub sync status` counts them all.
_SHOWN_LETTERS = 10


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise fail(str(error)) from None


def _on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database, which must be initialised and current."""

    async def run() -> T:
        try:
            await ensure_current(settings.database_url, auto_upgrade=settings.is_sqlite)
        except DatabaseBehindError as error:
            raise fail(str(error), code=1) from None
        database = Database(make_engine(settings.database_url))
        try:
            async with database.session() as session:
                if await load_data_keys(session, settings.master_key) is None:
                    raise fail(
                        f"the database at {redacted(settings.database_url)} is not initialised: "
                        "run `hub init` first",
                        code=1,
                    )
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except LeaseHeldError as error:
        raise fail(str(error), code=1) from None
    except SyncError as error:
        raise fail(str(error)) from None


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[RunProgress], None] | None]:
    if quiet:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task("starting", total=None)

        def show(step: RunProgress) -> None:
            c = step.counts
            rate = c.read / step.elapsed if step.elapsed > 0 else 0.0
            progress.update(
                task,
                description=(
                    f"{step.connector}: read {c.read:,} · created {c.created:,} · "
                    f"updated {c.updated:,} · unchanged {c.unchanged:,} · "
                    f"dead letters {c.dead_lettered:,} · {rate:,.0f}/s"
                ),
            )

        yield show


def _summary(report: RunReport, label: str) -> str:
    c = report.counts
    said = (
        f"{label}: {report.status}; read {c.read}, created {c.created}, updated {c.updated}, "
        f"unchanged {c.unchanged}, queued for review {c.queued}, dead letters "
        f"{c.dead_lettered} ({report.duration:.1f} s, {report.rate:,.0f} records/s)"
    )
    return said


async def _letters_of(database: Database, report: RunReport) -> list[SyncDeadLetter]:
    async with database.session() as session:
        rows = await session.execute(
            select(SyncDeadLetter)
            .where(
                col(SyncDeadLetter.run_id) == report.run_id,
                col(SyncDeadLetter.resolved_at).is_(None),
            )
            .order_by(col(SyncDeadLetter.created_at))
            .limit(_SHOWN_LETTERS)
        )
        return list(rows.scalars())


def _report(report: RunReport, letters: list[SyncDeadLetter], label: str) -> None:
    out().print(_summary(report, label))
    for letter in letters:
        where = f" {letter.position}: {letter.reason}"
        err().print(Text.assemble(("dead letter", "yellow"), where))
    if report.counts.dead_lettered > len(letters):
        err().print(f"... {report.counts.dead_lettered - len(letters)} more (`hub sync status`)")
    if report.status != "succeeded":
        raise fail(f"the run failed: {report.error}", code=1)


async def _run(
    database: Database, settings: Settings, name: str, batch: int, quiet: bool, rewind: bool
) -> tuple[RunReport, list[SyncDeadLetter]]:
    with _progress(quiet) as show:
        runner = Runner(database, settings.master_key, batch_size=batch, progress=show)
        report = await runner.run(name, rewind_if_done=rewind)
    return report, await _letters_of(database, report)


def import_file(
    resource: Annotated[str, typer.Argument(help="feedback or customers")],
    file: Annotated[Path, typer.Argument(help="A CSV or JSONL file (gzip accepted)")],
    org: Annotated[
        str, typer.Option("--as", help="The organization writing the records (its slug)")
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(help="A YAML field mapping (default: the columns are the input names)"),
    ] = None,
    batch_size: _BATCH = DEFAULT_BATCH,
    quiet: _QUIET = False,
) -> None:
    """Import one file as an organization, through its sharing policy; an interrupted
    import of the same file resumes where it stopped, a repeated one adds nothing twice."""
    settings = _settings()
    try:
        target = resource_named(resource, "RESOURCE")
        path = readable_file(file)
        spec = None if mapping is None else _mapping_spec(mapping)
    except ConnectorConfigError as error:
        raise fail(str(error)) from None

    async def work(database: Database) -> tuple[RunReport, list[SyncDeadLetter]]:
        async with database.transaction() as session:
            try:
                name = await define_import(session, target, path, org, spec)
            except ConnectorConfigError as error:
                where = f"--mapping {mapping}: " if mapping and "mapping" in str(error) else ""
                if str(error).startswith("no organization"):
                    where = "--as: "
                raise fail(where + str(error)) from None
        return await _run(database, settings, name, batch_size, quiet, rewind=True)

    report, letters = _on_database(settings, work)
    _report(report, letters, f"import of {file.name} as {org}")


def _mapping_spec(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        data = data["mapping"]
    if not isinstance(data, dict):
        raise ConnectorConfigError(
            f"--mapping {path}: must map target fields to source fields (see docs/sync.md)"
        )
    return data


@sync_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="YAML: one connector, or connectors: [...]")],
) -> None:
    """Create or update connectors from a YAML file (their checkpoints are kept)."""
    settings = _settings()
    try:
        specs = specs_from_yaml(file)
    except ConnectorConfigError as error:
        raise fail(
            f"{file}: {error}" if not str(error).startswith(str(file)) else str(error)
        ) from None

    async def work(database: Database) -> list[str]:
        said = []
        async with database.transaction() as session:
            for spec in specs:
                try:
                    row, created = await save_connector(session, spec)
                except ConnectorConfigError as error:
                    raise fail(f"{file}: connector {spec.name}: {error}") from None
                details = {
                    "kind": spec.kind,
                    "resource": spec.resource.value,
                    "organization": spec.organization,
                }
                action = "connector.create" if created else "connector.update"
                await audit.append(
                    session, audit.shell_entry(action, f"connector:{row.name}", details)
                )
                said.append(f"{'created' if created else 'updated'} connector {row.name}")
        return said

    for line in _on_database(settings, work):
        out().print(line)


@sync_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="The connector's name")],
    batch_size: _BATCH = DEFAULT_BATCH,
    quiet: _QUIET = False,
) -> None:
    """Run a connector now, from its checkpoint to the end of its source."""
    settings = _settings()
    report, letters = _on_database(
        settings, lambda database: _run(database, settings, name, batch_size, quiet, rewind=False)
    )
    _report(report, letters, name)


def _schedule(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _status_table(rows: list[ConnectorStatus]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in (
        "connector",
        "kind",
        "writes",
        "as",
        "every",
        "last run",
        "status",
        "counts",
        "dead letters",
    ):
        table.add_column(column)
    for row in rows:
        last = row.last
        counts = (
            "-"
            if last is None
            else f"read {last.read}, +{last.created} ~{last.updated} ={last.unchanged} "
            f"review {last.queued}"
        )
        status = "-" if last is None else last.status
        if last is not None and last.error:
            status += f": {last.error[:80]}"
        table.add_row(
            row.name + ("" if row.enabled else " (disabled)"),
            row.kind,
            row.resource,
            row.organization,
            _schedule(row.schedule_seconds),
            "-" if last is None else last.started_at.isoformat(timespec="seconds"),
            status,
            counts,
            str(row.open_dead_letters),
        )
    return table


@sync_app.command("status")
def status(
    imports: Annotated[bool, typer.Option("--imports", help="Include `hub import` runs")] = False,
) -> None:
    """Every connector with its last run, its counts and its open dead letters."""
    settings = _settings()

    async def work(database: Database) -> list[ConnectorStatus]:
        async with database.session() as session:
            return await statuses(session, include_adhoc=imports)

    rows = _on_database(settings, work)
    if not rows:
        out().print("no connectors (define them with `hub sync apply FILE`)")
        return
    out().print(_status_table(rows))


@sync_app.command("worker")
def worker(
    tick: Annotated[float, typer.Option(min=0.1, help="Seconds between checks")] = 5.0,
    batch_size: _BATCH = DEFAULT_BATCH,
) -> None:
    """Run scheduled connectors when due, until stopped (Ctrl-C or SIGTERM); any number
    of workers may run, each connector runs in one place at a time."""
    settings = _settings()

    async def work(database: Database) -> None:
        runner = Runner(database, settings.master_key, batch_size=batch_size)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        err().print(f"sync worker {runner.holder} checking every {tick:g} s")
        try:
            await work_forever(
                runner, tick=tick, report=lambda r: out().print(_summary(r, r.connector))
            )
        except asyncio.CancelledError:
            err().print("sync worker stopped")

    _on_database(settings, work)


__all__ = ["import_file", "sync_app"]
