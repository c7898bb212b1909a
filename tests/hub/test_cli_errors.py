"""The real ``hub`` command, run as a user runs it: bad input and unreachable services end
in one line on stderr naming what is wrong, a non-zero exit, and never a traceback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from hub import cli_errors
from tests.postgres import postgres_server

HUB = shutil.which("hub", path=str(Path(sys.executable).parent)) or "hub"
# A port nothing listens on: connecting to it is refused at once.
REFUSED = "postgresql+asyncpg://postgres:hunter2-secret@127.0.0.1:1/hub"
UNKNOWN_HOST = "postgresql+asyncpg://postgres@no-such-host.invalid/hub"


def hub(tmp_path: Path, *args: str, timeout: float = 60, **env: str) -> tuple[int, str]:
    """Run ``hub args`` in ``tmp_path``; its exit code and stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    environment.update(
        HUB_SECRET_KEY="k" * 40,
        HUB_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        COLUMNS="80",  # messages must stay on one line however narrow the terminal
    )
    environment.update(env)
    done = subprocess.run(
        [HUB, *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stderr


def one_line(code: int, stderr: str) -> str:
    """The single error line, after checking the exit code and that nothing else showed."""
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def initialised(tmp_path: Path) -> Path:
    code, stderr = hub(tmp_path, "init")
    assert code == 0, stderr
    return tmp_path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "1"], ["migrate"]])
def test_refused_database_connection(tmp_path: Path, command: list[str]) -> None:
    # serve checks the database before it binds: the port (1) is never reached.
    line = one_line(*hub(tmp_path, *command, HUB_DATABASE_URL=REFUSED))

    assert "cannot reach the database at postgresql+asyncpg://postgres:***@127.0.0.1:1/hub" in line
    assert "connection refused" in line
    assert "HUB_DATABASE_URL" in line
    assert "hunter2-secret" not in line


@pytest.mark.parametrize("command", ["init", "serve"])
def test_unknown_database_host(tmp_path: Path, command: str) -> None:
    line = one_line(*hub(tmp_path, command, HUB_DATABASE_URL=UNKNOWN_HOST))

    assert "unknown host no-such-host.invalid" in line
    assert "HUB_DATABASE_URL" in line


@pytest.mark.parametrize("command", ["init", "serve", "migrate"])
def test_sqlite_file_in_a_missing_folder(tmp_path: Path, command: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'absent' / 'dir' / 'hub.db'}"

    code, stderr = hub(tmp_path, command, HUB_DATABASE_URL=url)

    assert code == 2
    line = one_line(code, stderr)
    assert f"the folder {tmp_path / 'absent' / 'dir'} of HUB_DATABASE_URL does not exist" in line
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("port", ["notaport", "99999"])
def test_database_url_with_a_bad_port(tmp_path: Path, port: str) -> None:
    url = f"postgresql+asyncpg://hub:hunter2-secret@db.internal:{port}/hub"

    code, stderr = hub(tmp_path, "migrate", HUB_DATABASE_URL=url)

    assert code == 2
    line = one_line(code, stderr)
    assert "HUB_DATABASE_URL: has a port that is not a number from 1 to 65535" in line
    assert "hunter2-secret" not in line


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{not json", "HUB_SOURCE_PRECEDENCE: not valid JSON"),
        ('["operator"]', "HUB_SOURCE_PRECEDENCE: Input should be a valid dictionary"),
        ('{"*": ["nobody"]}', "'nobody' is neither a tier"),
    ],
)
def test_malformed_source_precedence(tmp_path: Path, value: str, expected: str) -> None:
    code, stderr = hub(tmp_path, "init", HUB_SOURCE_PRECEDENCE=value)

    assert code == 2
    line = one_line(code, stderr)
    assert "invalid setting HUB_SOURCE_PRECEDENCE" in line
    assert expected in line
    assert not (tmp_path / "hub.db").exists()  # refused before touching anything


def test_several_bad_settings_are_named_on_one_line(tmp_path: Path) -> None:
    line = one_line(*hub(tmp_path, "migrate", HUB_MAX_DEPTH="0", HUB_LOG_LEVEL="LOUD"))

    assert "HUB_MAX_DEPTH" in line
    assert "HUB_LOG_LEVEL" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(128, 256)), "is not UTF-8 text"),
        (b"rules:\x00\x01\x02", "is a binary file (it holds NUL bytes)"),
    ],
)
@pytest.mark.parametrize("command", [["validate"], ["publish", "--reason", "test"]])
def test_binary_policy_file(
    initialised: Path, command: list[str], content: bytes, expected: str
) -> None:
    policy = initialised / "policy.bin"
    policy.write_bytes(content)

    code, stderr = hub(initialised, "policy", command[0], str(policy), *command[1:])

    assert code == 2
    line = one_line(code, stderr)
    assert f"{policy} {expected}" in line


def test_missing_policy_file(tmp_path: Path) -> None:
    line = one_line(*hub(tmp_path, "policy", "validate", "absent.yaml"))

    assert "cannot read absent.yaml: No such file or directory" in line


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
@pytest.mark.parametrize("command", [["serve"], ["demo", "--no-serve"]])
def test_port_out_of_range(tmp_path: Path, command: list[str], port: str) -> None:
    code, stderr = hub(tmp_path, *command, "--port", port)

    assert code == 2
    line = one_line(code, stderr)
    assert "Invalid value for '--port'" in line
    assert f"(see `hub {command[0]} --help`)" in line
    assert not (tmp_path / "hub.db").exists()  # nothing was seeded or served


def test_busy_port_for_serve(initialised: Path, busy_port: int) -> None:
    line = one_line(*hub(initialised, "serve", "--port", str(busy_port)))

    assert f"127.0.0.1:{busy_port} is already in use" in line


def test_serve_on_a_database_never_initialised(tmp_path: Path) -> None:
    # SQLite is migrated by serve; the signing key only `hub init` makes is missing.
    line = one_line(*hub(tmp_path, "serve", "--port", "1"))

    assert "has no token signing key: run `hub init` first" in line


def test_command_on_an_uninitialised_sqlite_database(tmp_path: Path) -> None:
    (tmp_path / "hub.db").touch()

    line = one_line(*hub(tmp_path, "clients", "disable", "hub_x"))

    assert "is not initialised (no such table: client): run `hub init`" in line


def test_audit_verify_on_an_empty_database(tmp_path: Path) -> None:
    line = one_line(*hub(tmp_path, "audit", "verify"))

    assert "is not initialised" in line
    assert "run `hub init`" in line


def test_unknown_command_and_missing_value_are_one_line(tmp_path: Path) -> None:
    assert "No such command 'nosuch'" in one_line(*hub(tmp_path, "nosuch"))
    line = one_line(*hub(tmp_path, "clients", "create", "--org"))
    assert "Option '--org' requires an argument" in line


async def test_postgresql_database_missing_then_uninitialised(tmp_path: Path) -> None:
    server = make_url(await postgres_server())
    name = f"hub_cli_errors_{uuid.uuid4().hex[:8]}"
    url = server.set(database=name).render_as_string(hide_password=False)

    line = one_line(*hub(tmp_path, "serve", "--port", "1", HUB_DATABASE_URL=url))
    assert f'database "{name}" does not exist' in line
    assert "create it or change HUB_DATABASE_URL" in line

    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        line = one_line(*hub(tmp_path, "clients", "disable", "hub_x", HUB_DATABASE_URL=url))
        assert 'is not initialised (relation "client" does not exist)' in line
        line = one_line(*hub(tmp_path, "serve", "--port", "1", HUB_DATABASE_URL=url))
        assert "run `hub migrate`" in line
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    role = server.set(username="no_such_role", database="postgres")
    line = one_line(
        *hub(tmp_path, "init", HUB_DATABASE_URL=role.render_as_string(hide_password=False))
    )
    assert 'refused the login (role "no_such_role" does not exist)' in line


# In process: what no real command can be made to raise.


def _app_raising(error: Exception) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise error

    return app


def test_unexpected_error_names_only_its_type(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_DEBUG", raising=False)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # run() replaces it

    with pytest.raises(SystemExit) as exited:
        cli_errors.run(_app_raising(KeyError("customer secret")), [])

    assert exited.value.code == cli_errors.EXIT_FAILED
    stderr = capsys.readouterr().err
    assert stderr.strip() == (
        "error: internal error: KeyError; rerun with HUB_DEBUG=1 (or `hub --debug ...`) "
        "for the traceback"
    )


def test_hub_debug_lets_the_exception_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DEBUG", "1")

    with pytest.raises(KeyError):
        cli_errors.run(_app_raising(KeyError("x")), [])


def test_sqlalchemy_error_without_a_known_cause_shows_the_driver_message() -> None:
    error = OperationalError("SELECT 1", {}, Exception("disk I/O error\nmore detail"))

    failure = cli_errors.explain(error, "postgresql+asyncpg://u:pw@db/hub")

    assert failure.message == (
        "the database at postgresql+asyncpg://u:***@db/hub failed: disk I/O error; "
        "rerun with HUB_DEBUG=1 for the traceback"
    )


def test_file_error_names_the_file() -> None:
    error = PermissionError(13, "Permission denied", "/etc/creds.json")

    failure = cli_errors.explain(error, "sqlite+aiosqlite:///./hub.db")

    assert failure.code == cli_errors.EXIT_USAGE
    assert failure.message == (
        "cannot use the file /etc/creds.json (Permission denied): "
        "check the path and its permissions"
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TimeoutError(), "timed out"),
        (OSError(113, "No route to host"), "[Errno 113] No route to host"),
        (
            OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0)"),
            "Multiple exceptions: [Errno 111] Connect call failed",
        ),
    ],
)
def test_other_connection_failures_are_unreachable(error: OSError, reason: str) -> None:
    failure = cli_errors.explain(error, "postgresql+asyncpg://hub:pw@db/hub")

    assert failure.message.startswith(
        f"cannot reach the database at postgresql+asyncpg://hub:***@db/hub ({reason}"
    )
    assert failure.message.endswith("is it running? check HUB_DATABASE_URL")


def test_a_closed_stdout_is_not_a_database_failure() -> None:
    failure = cli_errors.explain(BrokenPipeError(32, "Broken pipe"), "sqlite+aiosqlite://")

    assert failure.message.startswith("internal error: BrokenPipeError")
