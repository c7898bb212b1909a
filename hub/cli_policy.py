"""``hub policy``: validate, preview, publish, roll back, list, diff and export the
sharing policy (DESIGN §4). The same operations as the GraphQL admin API, for operators
at a shell; the author recorded is ``cli:<user>``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit, sharing
from hub.access.catalog import CATALOG
from hub.cli_errors import explain, fail
from hub.db import Database, make_engine
from hub.errors import HubError
from hub.models import PolicyVersion
from hub.settings import Settings, SettingsError, load_settings
from policies import Document

policy_app = typer.Typer(
    help="The sharing policy: versions and their lifecycle.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

_FILE = Annotated[Path, typer.Argument(help="Policy source (YAML or JSON); - for stdin")]
_REASON = Annotated[str, typer.Option(help="Why (kept with the version, audited)")]


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise _fail(str(error)) from None


def _read(path: Path) -> tuple[str, sharing.Format]:
    name = "stdin" if str(path) == "-" else str(path)
    try:
        source = sys.stdin.read() if name == "stdin" else path.read_text(encoding="utf-8")
    except OSError as error:
        raise _fail(f"cannot read {name}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise _fail(f"{name} is not UTF-8 text: give a policy source in YAML or JSON") from None
    if "\x00" in source:
        # Valid UTF-8 can still be a binary file; YAML would report it over several lines.
        raise _fail(
            f"{name} is a binary file (it holds NUL bytes): give a policy source in YAML or JSON"
        )
    return source, sharing.source_format(str(path), source)


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (nothing is half-written on failure)."""

    async def run() -> T:
        database = Database(make_engine(settings.database_url))
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except sharing.PolicyRejectedError as error:
        _print_problems(error.problems)
        raise _fail(str(error)) from None
    except HubError as error:
        raise _fail(str(error)) from None


def _print_problems(problems: list[sharing.Problem]) -> None:
    for problem in problems:
        err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)


@policy_app.command("validate")
def validate(path: _FILE) -> None:
    """Check a policy source: every error with its line and column (exit 1 if any).

    With a reachable database (``HUB_DATABASE_URL``) the source is checked against the
    catalog a publish would use: the hub's fields plus those of the subgraphs accepted
    there (``Customer.loyaltyTier``), and subjects naming an organization the database
    does not have are warnings. Validating needs no database: without one the source is
    checked against the hub's own fields, and a warning says what was not checked."""
    source, fmt = _read(path)
    document, problems, warnings = _check_offline(source, fmt)
    if problems:
        _print_problems(problems)
        _print_problems(warnings)
        raise typer.Exit(code=1)
    assert document is not None
    _print_problems(warnings)
    err.print(f"[green]valid[/green]: {len(document.rules)} rules")


_DATABASE_TIMEOUT = 10.0  # seconds: validating must not hang on an unreachable server


def _check_offline(
    source: str, fmt: sharing.Format
) -> tuple[Document | None, list[sharing.Problem], list[sharing.Problem]]:
    """:func:`hub.sharing.check_source` against the configured database's catalog (the
    subgraphs' fields included) and its organizations, when there is a usable one: the
    document, its problems, and warnings (unknown organizations, or what could not be
    checked and why)."""
    url, why = _usable_database()
    if url is not None:

        async def check() -> tuple[Document | None, list[sharing.Problem], list[sharing.Problem]]:
            db = Database(make_engine(url))
            try:
                async with db.session() as session:
                    catalog = await sharing.policy_catalog(session)
                    document, problems = sharing.check_source(source, fmt, catalog)
                    if document is None:
                        return None, problems, []
                    return document, [], await sharing.unknown_organizations(session, document)
            finally:
                await db.dispose()

        try:
            return asyncio.run(asyncio.wait_for(check(), _DATABASE_TIMEOUT))
        except TimeoutError:
            why = f"the database did not answer within {_DATABASE_TIMEOUT:g} seconds"
        except (SQLAlchemyError, OSError) as error:
            why = explain(error, url).message
    # No database to read: the hub's own catalog (not this process's rules in force, which
    # may hold another database's subgraphs); say what that leaves unchecked.
    document, problems = sharing.check_source(source, fmt, CATALOG)
    warnings: list[sharing.Problem] = []
    if problems:
        warnings.append(
            sharing.Problem("warning", f"fields of registered subgraphs not known: {why}")
        )
    if document is not None and sharing.named_organizations(document):
        warnings.append(sharing.Problem("warning", f"organization slugs not checked: {why}"))
    return document, problems, warnings


def _usable_database() -> tuple[str | None, str]:
    """The configured database URL, or ``None`` and why it cannot be read."""
    try:
        url = load_settings().database_url
    except SettingsError as error:
        return None, " ".join(str(error).split())
    try:
        database = make_url(url).database
    except (ArgumentError, ValueError):
        return None, "HUB_DATABASE_URL is not a database URL"
    if url.startswith("sqlite") and database and not Path(database).exists():
        # Connecting would create an empty database file.
        return None, f"no database at {database}"
    return url, ""


@policy_app.command("preview")
def preview(
    path: _FILE,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """What publishing the source would change, per organization, on the current data."""
    settings = _settings()
    source, fmt = _read(path)
    problems, impacts = _run(
        settings, lambda s: sharing.preview(s, source, fmt, settings.master_key)
    )
    if as_json:
        payload = {
            "problems": [dataclasses.asdict(p) for p in problems],
            "organizations": [dataclasses.asdict(i) for i in impacts],
        }
        out.print_json(json.dumps(payload))
    else:
        table = Table(
            "organization", "resource", "fields gained", "fields lost", "rows +", "rows -"
        )
        for impact in impacts:
            for r in impact.resources:
                if r.changed:
                    table.add_row(
                        f"{impact.organization} ({impact.kind})",
                        r.resource,
                        ", ".join(r.fields_gained),
                        ", ".join(r.fields_lost),
                        str(r.rows_gained),
                        str(r.rows_lost),
                    )
        out.print(table if table.row_count else "no change for any organization")
        if problems:
            err.print("[yellow]a publish would be refused:[/yellow]")
            _print_problems(problems)
    if problems:
        raise typer.Exit(code=1)


@policy_app.command("publish")
def publish(path: _FILE, reason: _REASON) -> None:
    """Publish the source as the next version (refused, with reasons, if it is invalid or
    breaks a guardrail or an expectation)."""
    settings = _settings()
    source, fmt = _read(path)

    async def work(session: AsyncSession) -> tuple[PolicyVersion, list[sharing.Problem]]:
        version = await sharing.publish(
            session, source, author=audit.shell_actor(), reason=reason, fmt=fmt
        )
        document = sharing.parse_stored(source, fmt)
        return version, await sharing.unknown_organizations(session, document)

    version, warnings = _run(settings, work)
    _print_problems(warnings)
    err.print(f"[green]published[/green] version {version.number}")


@policy_app.command("rollback")
def rollback(
    version: Annotated[int, typer.Argument(help="The version whose behaviour to restore")],
    reason: _REASON,
) -> None:
    """Publish a copy of an earlier version, restoring exactly its behaviour."""
    settings = _settings()
    new = _run(
        settings, lambda s: sharing.rollback(s, version, author=audit.shell_actor(), reason=reason)
    )
    err.print(f"[green]rolled back[/green]: version {new.number} restores version {version}")


@policy_app.command("list")
def list_versions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Every version, newest (in force) first."""
    settings = _settings()
    versions = _run(settings, sharing.list_versions)
    rows: list[dict[str, Any]] = [
        {
            "number": v.number,
            "action": v.action,
            "restores": v.restores,
            "author": v.author,
            "reason": v.reason,
            "created_at": v.created_at.isoformat(),
            "sha256": v.sha256,
        }
        for v in versions
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("version", "action", "author", "when", "reason")
    for row in rows:
        action = row["action"] + (f" of {row['restores']}" if row["restores"] else "")
        table.add_row(str(row["number"]), action, row["author"], row["created_at"], row["reason"])
    out.print(table)


@policy_app.command("diff")
def diff(
    old: Annotated[int, typer.Argument(help="Older version")],
    new: Annotated[int, typer.Argument(help="Newer version")],
) -> None:
    """Rule-by-rule changes between two versions, then the source diff."""
    settings = _settings()
    result = _run(settings, lambda s: sharing.diff_versions(s, old, new))
    # Plain writes: Rich would wrap long lines and the diff would no longer apply.
    for change in result.rules:
        sys.stdout.write(f"{change['change']:8} {change['name']}\n")
        for detail in change["details"]:
            sys.stdout.write(f"         {detail}\n")
    sys.stdout.write(result.text or "(identical sources)\n")


@policy_app.command("export")
def export(
    version: Annotated[
        int | None, typer.Argument(help="Version (default: the one in force)")
    ] = None,
) -> None:
    """Print a version's source exactly as published."""
    settings = _settings()

    async def get(session: AsyncSession) -> str:
        if version is None:
            current = await sharing.current_version(session)
            if current is None:
                raise _fail("no policy version is installed; run `hub init`")
            return current.source
        return (await sharing.get_version(session, version)).source

    sys.stdout.write(_run(settings, get))
