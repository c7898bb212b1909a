"""A real hub server process for end-to-end and conformance tests.

``hub demo --no-serve`` seeds a temporary directory (its ``hub.db`` and ``hub-secret.key``,
or the PostgreSQL database named by ``HUB_DATABASE_URL``), then ``hub serve`` runs there as
a subprocess until the session ends. Shared by ``tests/e2e`` and ``tests/conformance``:
each conftest imports the :func:`hub_server` fixture and calls :func:`attach_server_log`
from its ``pytest_runtest_makereport`` hook.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.postgres import DEFAULT_PG, _in_ci, _pg_reachable

READY_TIMEOUT = 30.0
DEMO_CUSTOMERS = 60
HUB = shutil.which("hub", path=str(Path(sys.executable).parent)) or "hub"


def free_port() -> int:
    """A TCP port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any ``HUB_*`` variable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HUB_")}
    env.update(extra)
    return env


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode id and secret before joining them for Basic.
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class HubServer:
    """A running ``hub serve``: where it listens, the demo credentials, and its stderr."""

    backend: str
    base_url: str
    workdir: Path
    credentials: list[dict[str, Any]] = field(repr=False)
    process: Process
    stderr_path: Path
    env: dict[str, str] = field(repr=False)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    def credential(self, kind: str) -> dict[str, Any]:
        """The first demo client whose organization has this kind (``operator``...)."""
        for row in self.credentials:
            if row["kind"] == kind:
                return row
        raise LookupError(f"no demo client for an organization of kind {kind!r}")

    async def token(self, kind: str, scope: str | None = None) -> str:
        """A client_credentials access token (HTTP Basic at ``/oauth/token``) for ``kind``."""
        key = f"{kind} {scope}"
        if key not in self._tokens:
            row = self.credential(kind)
            data = {"grant_type": "client_credentials"}
            if scope is not None:
                data["scope"] = scope
            async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
                response = await http.post(
                    "/oauth/token",
                    data=data,
                    headers={"Authorization": basic_auth(row["client_id"], row["client_secret"])},
                )
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    async def post(
        self, kind: str, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        """POST an operation as a client of ``kind``; the raw response."""
        token = await self.token(kind)
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(
                self.graphql_url,
                json={"query": query, "variables": variables or {}},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/graphql-response+json",
                },
            )

    async def gql(
        self, kind: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST an operation as a client of ``kind``; fails on any GraphQL error."""
        response = await self.post(kind, query, variables)
        body: dict[str, Any] = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


async def wait_ready(url: str, process: Process, seconds: float) -> str | None:
    """Poll ``url`` until 200; the problem as text if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                return f"the server exited with status {process.returncode}"
            try:
                response = await http.get(url)
            except httpx.TransportError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    return None
                last = f"{response.status_code} {response.text}"
            await asyncio.sleep(0.1)
    return f"{url} not ready after {seconds:.0f} s ({last})"


async def stop(process: Process) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL after 10 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run_demo_seed(workdir: Path, port: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """``hub demo --no-serve`` in ``workdir``; the credentials it wrote."""
    seeding = await asyncio.create_subprocess_exec(
        HUB,
        "demo",
        "--customers",
        str(DEMO_CUSTOMERS),
        "--no-serve",
        "--port",
        str(port),
        "--credentials-out",
        "creds.json",
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(seeding.communicate(), timeout=120)
    except TimeoutError:
        seeding.kill()
        await seeding.wait()
        pytest.fail("`hub demo --no-serve` did not finish within 120 s")
    if seeding.returncode != 0:
        pytest.fail(
            f"`hub demo --no-serve` exited with {seeding.returncode}\n"
            f"stdout:\n{out.decode(errors='replace')}\nstderr:\n{err.decode(errors='replace')}"
        )
    credentials: list[dict[str, Any]] = json.loads((workdir / "creds.json").read_text())
    return credentials


async def start_server(workdir: Path, backend: str, env: dict[str, str]) -> HubServer:
    port = free_port()
    credentials = await run_demo_seed(workdir, port, env)
    stderr_path = workdir / "serve.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            HUB, "serve", "--port", str(port), cwd=workdir, env=env, stdout=stderr, stderr=stderr
        )
    server = HubServer(
        backend=backend,
        base_url=f"http://127.0.0.1:{port}",
        workdir=workdir,
        credentials=credentials,
        process=process,
        stderr_path=stderr_path,
        env=env,
    )
    problem = await wait_ready(f"{server.base_url}/readyz", process, READY_TIMEOUT)
    if problem is not None:
        await stop(process)
        pytest.fail(f"`hub serve` ({backend}): {problem}\nstderr:\n{server.stderr_text()}")
    return server


async def _admin(server_url: str, statement: str) -> None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


async def postgres_database() -> tuple[str, str, str]:
    """A fresh database on the test server: (its URL, the server URL, its name)."""
    server = os.environ.get("HUB_TEST_DATABASE_URL", DEFAULT_PG)
    problem = await _pg_reachable(server)
    if problem is not None:
        message = f"PostgreSQL at {make_url(server).render_as_string()} unreachable ({problem})"
        if _in_ci():
            pytest.fail(f"{message}; CI=true requires the PostgreSQL e2e tests to run")
        pytest.skip(f"{message}; set HUB_TEST_DATABASE_URL to run the PostgreSQL e2e cases")
    name = f"hub_e2e_{uuid.uuid4().hex[:12]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    return url, server, name


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def hub_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HubServer]:
    """A seeded ``hub serve`` process on each backend, for the whole session."""
    workdir = tmp_path_factory.mktemp(f"hub-{request.param}")
    dropped: tuple[str, str] | None = None
    env = hub_env()
    if request.param == "postgresql":
        url, admin_url, name = await postgres_database()
        dropped = (admin_url, name)
        env["HUB_DATABASE_URL"] = url
    try:
        server = await start_server(workdir, request.param, env)
        try:
            yield server
        finally:
            await stop(server.process)
    finally:
        if dropped is not None:
            await _admin(dropped[0], f'DROP DATABASE IF EXISTS "{dropped[1]}" WITH (FORCE)')


def attach_server_log(item: pytest.Item, report: pytest.TestReport) -> None:
    """On a failed test, add the server's stderr to its report (``pytest_runtest_makereport``)."""
    if not report.failed:
        return
    server = getattr(item, "funcargs", {}).get("hub_server")
    if isinstance(server, HubServer):
        status = server.process.returncode
        state = "running" if status is None else f"exited with {status}"
        report.sections.append(
            (f"hub serve ({server.backend}, {state}) stderr", server.stderr_text()[-20_000:])
        )
