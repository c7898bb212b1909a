"""The README's first command, ``hub demo``, followed as a reader would: paste the two
printed shell lines and get customers back from the real server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.e2e.server import HUB, READY_TIMEOUT, free_port, hub_env, stop, wait_ready

pytestmark = pytest.mark.e2e

PRINT_TIMEOUT = 60.0


async def _read_walkthrough(stdout: asyncio.StreamReader) -> tuple[list[str], list[str]]:
    """Every stdout line up to the query curl, and the shell lines among them."""
    seen: list[str] = []
    commands: list[str] = []
    deadline = time.monotonic() + PRINT_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail("`hub demo` printed no query curl in time:\n" + "".join(seen))
        raw = await asyncio.wait_for(stdout.readline(), timeout=remaining)
        if not raw:
            pytest.fail("`hub demo` closed stdout before the query curl:\n" + "".join(seen))
        line = raw.decode()
        seen.append(line)
        if line.startswith(("TOKEN=", "curl ")):
            commands.append(line.rstrip("\n"))
        if line.startswith("curl "):
            return seen, commands


async def test_demo_prints_commands_that_work(tmp_path: Path) -> None:
    port = free_port()
    stderr_path = tmp_path / "demo.stderr"
    with stderr_path.open("wb") as stderr:
        demo = await asyncio.create_subprocess_exec(
            HUB,
            "demo",
            "--customers",
            "50",
            "--port",
            str(port),
            cwd=tmp_path,
            env=hub_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert demo.stdout is not None
        try:
            seen, commands = await _read_walkthrough(demo.stdout)
        except TimeoutError:
            pytest.fail("`hub demo` printed no query curl in time\n" + stderr_path.read_text())
        assert len(commands) == 2, seen
        assert commands[0].startswith("TOKEN="), seen
        problem = await wait_ready(f"http://127.0.0.1:{port}/readyz", demo, READY_TIMEOUT)
        assert problem is None, f"{problem}\nstderr:\n{stderr_path.read_text()}"

        shell = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            "\n".join(commands),
            cwd=tmp_path,
            env=hub_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(shell.communicate(), timeout=30)
        assert shell.returncode == 0, err.decode()
        try:
            body = json.loads(out)
        except json.JSONDecodeError:
            pytest.fail(f"the query curl did not print JSON:\n{out.decode()}\n{err.decode()}")
        assert "errors" not in body, body
        edges = body["data"]["customers"]["edges"]
        assert edges, body
        assert all(edge["node"]["id"] and edge["node"]["name"] for edge in edges), body
    finally:
        await stop(demo)
