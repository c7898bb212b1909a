"""The README followed as a reader would: ``hub demo``, then paste the two printed shell
lines and get customers back from the real server; and the "Five minutes with the demo"
steps, run as written against the demo's data."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import HUB, READY_TIMEOUT, HubServer, free_port, hub_env, stop, wait_ready

pytestmark = pytest.mark.e2e

PRINT_TIMEOUT = 60.0
README = Path(__file__).resolve().parents[2] / "README.md"
README_ORIGIN = "http://127.0.0.1:8000"


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
        # Where it listens, said once it starts serving.
        served = f"Serving Partner Hub on http://127.0.0.1:{port} (GraphQL at /graphql)"
        assert served in stderr_path.read_text().splitlines(), stderr_path.read_text()

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


def readme_steps(heading: str = "## Five minutes with the demo") -> list[str]:
    """The shell commands of the first bash block under the README's ``heading``, each
    with its continuation lines joined; comment and blank lines left out."""
    parts = README.read_text().split(f"\n{heading}\n", 1)
    assert len(parts) == 2, f"no section {heading!r} in the README"
    section = parts[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, f"no bash block in the README's section {heading!r}"
    commands: list[str] = []
    current = ""
    for line in match.group(1).splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line[:-1] if line.endswith("\\") else line
        if not line.endswith("\\"):
            commands.append(current)
            current = ""
    return commands


async def run_steps(server: HubServer, workdir: Path, commands: list[str]) -> dict[str, Any]:
    """Run ``commands`` in one shell against ``server``; the JSON the last one prints."""
    script = "\n".join(commands).replace(README_ORIGIN, server.base_url)
    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-ec",
        script,
        cwd=workdir,
        env=hub_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(shell.communicate(), timeout=30)
    assert shell.returncode == 0, err.decode()
    try:
        body: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"the README command did not print JSON:\n{out.decode()}\n{err.decode()}")
    return body


async def test_the_readme_five_minutes_work_as_written(
    hub_server: HubServer, tmp_path: Path
) -> None:
    commands = readme_steps()
    assert len(commands) == 4, commands  # credentials, token, query, mutation
    assert commands[0].startswith("CREDS=") and commands[1].startswith("TOKEN="), commands
    (tmp_path / "demo-credentials.json").write_text(json.dumps(hub_server.credentials))

    # Step 2: the distributor's customers in NA, e-mail masked, and their feedback.
    listed = await run_steps(hub_server, tmp_path, commands[:3])
    assert "errors" not in listed, listed
    assert listed["data"]["me"] == {
        "organization": {"slug": "acme-distribution", "kind": "DISTRIBUTOR"}
    }
    nodes = [edge["node"] for edge in listed["data"]["customers"]["edges"]]
    assert nodes, listed
    for node in nodes:
        assert node["email"] is None or re.fullmatch(r".\*\*\*@[^@*]+", node["email"]), node

    # Step 3: feedback about one of them, with the id pasted from step 2.
    step3 = commands[3]
    assert step3.count("<customer id>") == 1, step3
    submitted = await run_steps(
        hub_server, tmp_path, [*commands[:2], step3.replace("<customer id>", nodes[0]["id"])]
    )
    assert "errors" not in submitted, (
        "the README's step 3 fails as written (a field outside the distributor's schema?)",
        submitted,
    )
    payload = submitted["data"]["submitFeedback"]
    assert payload["userErrors"] == [], payload
    assert payload["feedback"]["status"] == "NEW"
