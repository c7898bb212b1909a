"""How the ``hub`` command reports a failure: one line on stderr, never a traceback.

:func:`run` wraps the whole command line. A failure it recognises (a bad setting, an
unreachable or uninitialised database, a file it cannot use, a bad option) becomes one
line naming what is wrong and what to do; anything else is an ``internal error`` naming
only the exception's type. ``HUB_DEBUG=1`` (or ``hub --debug``) shows the traceback.

Exit codes: 2 for bad input or configuration (fix the command line, a file or a
``HUB_*`` setting), 1 when the work could not be done (the database is unreachable, an
internal error), 130 when interrupted.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from hub.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# soft_wrap: Rich would otherwise wrap a long message at 80 columns when stderr is a pipe.
err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_error(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr (no markup is read in ``message``)."""
    err.print(Text.assemble(("error:", "red"), " ", " ".join(message.split())))


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` and return the exit to raise: ``raise fail("...") from None``."""
    print_error(message)
    return typer.Exit(code=code)


def debugging() -> bool:
    return os.environ.get("HUB_DEBUG", "").lower() in {"1", "true", "yes", "on"}


def redacted(url: str) -> str:
    """The database URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


@dataclass(frozen=True)
class Failure:
    message: str
    code: int = EXIT_FAILED


def run(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run the command line (``args``, default ``sys.argv``) and exit with its code;
    failures end as one line."""
    if not debugging():
        threading.excepthook = _thread_failed
    try:
        code = app(args=args, standalone_mode=False)
    except typer.TyperException as error:  # typer's own click: bad options, missing values
        code = error.exit_code
        # Typer printed the help when it made a NoArgsIsHelpError (as its own handler knows).
        if type(error).__name__ != "NoArgsIsHelpError":
            context: Any = getattr(error, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            print_error(error.format_message().rstrip(".") + hint)
    except typer.Abort:
        print_error("aborted")
        code = EXIT_FAILED
    except Exception as error:
        if debugging():
            raise
        failure = explain(error, _configured_database_url())
        print_error(failure.message)
        code = failure.code
    sys.exit(code if isinstance(code, int) else 0)


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    # aiosqlite's worker thread answers a failed connection after asyncio.run closed the
    # loop; the failure itself is reported by the main thread.
    if isinstance(args.exc_value, RuntimeError) and "Event loop is closed" in str(args.exc_value):
        return
    print_error(
        f"internal error in a background thread: {args.exc_type.__name__}; "
        "rerun with HUB_DEBUG=1 for the traceback"
    )


def _configured_database_url() -> str:
    # The commands read the same environment: what they connected to is what it names.
    try:
        return load_settings().database_url
    except SettingsError:
        return os.environ.get("HUB_DATABASE_URL", DEFAULT_DATABASE_URL)


def explain(error: BaseException, database_url: str) -> Failure:
    """The one-line message and exit code for ``error``, raised while working on the
    database at ``database_url``."""
    if isinstance(error, SettingsError):
        return Failure(str(error), EXIT_USAGE)
    causes = list(_causes(error))
    database = _database_failure(causes, database_url)
    if database is not None:
        return database
    for cause in causes:
        if isinstance(cause, OSError) and cause.filename is not None:
            name = os.fsdecode(cause.filename)
            reason = cause.strerror or type(cause).__name__
            return Failure(
                f"cannot use the file {name} ({reason}): check the path and its permissions",
                EXIT_USAGE,
            )
    return Failure(
        f"internal error: {type(error).__name__}; "
        "rerun with HUB_DEBUG=1 (or `hub --debug ...`) for the traceback"
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it wraps: the driver's error of a SQLAlchemy error, and the
    exceptions it was raised from or while handling."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        for nested in (orig, current.__cause__, current.__context__):
            if isinstance(nested, BaseException):
                pending.append(nested)


# Socket errors of a connection attempt (ConnectionError covers refused, reset, aborted).
_NETWORK_ERRNOS = {
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTUNREACH,
    errno.EHOSTDOWN,
    errno.ETIMEDOUT,
    errno.EADDRNOTAVAIL,
}
# asyncpg's error classes by name: asyncpg is imported only when PostgreSQL is used.
_ASYNCPG_UNREACHABLE = {
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "TooManyConnectionsError",
    "ConnectionFailureError",
}


def _database_failure(causes: list[BaseException], url: str) -> Failure | None:
    """A message for a database that cannot be reached, opened or used; None if no cause
    in the chain comes from the database."""
    where = redacted(url)
    if url.startswith("sqlite"):
        for cause in causes:
            if isinstance(cause, sqlite3.Error):
                return _sqlite_failure(str(cause), url, where)
    for cause in causes:
        names = {cls.__name__ for cls in type(cause).__mro__}
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        if isinstance(cause, socket.gaierror):
            host = _host(url)
            return Failure(
                f"cannot reach the database at {where} (unknown host {host}): "
                "check the host in HUB_DATABASE_URL"
            )
        if isinstance(cause, ConnectionRefusedError):
            return Failure(
                f"cannot reach the database at {where} (connection refused): "
                "is it running? check HUB_DATABASE_URL"
            )
        if _unreachable(cause) or names & _ASYNCPG_UNREACHABLE:
            reason = "timed out" if isinstance(cause, TimeoutError) else first_line
            return Failure(
                f"cannot reach the database at {where} ({reason or type(cause).__name__}): "
                "is it running? check HUB_DATABASE_URL"
            )
        if "InvalidCatalogNameError" in names:
            return Failure(
                f"the database at {where} does not exist ({first_line}): "
                "create it or change HUB_DATABASE_URL",
                EXIT_USAGE,
            )
        if "InvalidAuthorizationSpecificationError" in names:
            return Failure(
                f"the database at {where} refused the login ({first_line}): "
                "check the user and password in HUB_DATABASE_URL",
                EXIT_USAGE,
            )
        if "UndefinedTableError" in names:
            return _not_initialised(where, first_line)
    for cause in causes:
        if isinstance(cause, SQLAlchemyError):
            driver = getattr(cause, "orig", None)
            detail = str(driver if driver is not None else cause).strip().splitlines()
            return Failure(
                f"the database at {where} failed: {detail[0] if detail else type(cause).__name__}; "
                "rerun with HUB_DEBUG=1 for the traceback"
            )
    return None


def _unreachable(cause: BaseException) -> bool:
    if isinstance(cause, BrokenPipeError) or not isinstance(cause, OSError):
        return False  # a closed stdout (`hub ... | head`) is no database problem
    if isinstance(cause, ConnectionError | TimeoutError) or cause.errno in _NETWORK_ERRNOS:
        return True
    # asyncio's error when every address of a host failed (IPv6 and IPv4 of localhost).
    return cause.filename is None and str(cause).startswith("Multiple exceptions")


def _sqlite_failure(message: str, url: str, where: str) -> Failure:
    path = _sqlite_path(url)
    if "no such table" in message:
        return _not_initialised(where, message)
    if path is not None and "unable to open database file" in message:
        folder = path.parent.absolute()
        if not folder.is_dir():
            return Failure(
                f"the folder {folder} of HUB_DATABASE_URL does not exist: "
                "create it or change HUB_DATABASE_URL",
                EXIT_USAGE,
            )
        return Failure(
            f"cannot open the SQLite database {path}: check that it and its folder "
            "are readable and writable, or change HUB_DATABASE_URL",
            EXIT_USAGE,
        )
    if "file is not a database" in message:
        return Failure(
            f"{path or where} is not a SQLite database: change HUB_DATABASE_URL", EXIT_USAGE
        )
    if "database is locked" in message:
        return Failure(
            f"the SQLite database {path or where} is locked by another process: "
            "retry when it is done"
        )
    return Failure(
        f"the SQLite database {path or where} failed: {message}; "
        "rerun with HUB_DEBUG=1 for the traceback"
    )


def _not_initialised(where: str, detail: str) -> Failure:
    return Failure(
        f"the database at {where} is not initialised ({detail}): run `hub init` "
        "(or `hub migrate`) first",
        EXIT_USAGE,
    )


def _sqlite_path(url: str) -> Path | None:
    try:
        database = make_url(url).database
    except (ArgumentError, ValueError):
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _host(url: str) -> str:
    try:
        return make_url(url).host or "localhost"
    except (ArgumentError, ValueError):
        return re.sub(r".*@", "", url.partition("://")[2]).split("/")[0]
