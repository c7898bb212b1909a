"""Conformance fixtures: the real server from ``tests/e2e`` and the Node tools that drive it.

The Node packages are pinned in ``package.json`` and ``package-lock.json`` here; when
``node_modules`` is missing (a fresh clone), the first test runs ``npm ci`` itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import _in_ci

__all__ = ["NodeTools"]

HERE = Path(__file__).resolve().parent
REQUIRED = (
    "graphql-http",
    "@apollo/composition",
    "@apollo/gateway",
    "@apollo/server",
    "@apollo/subgraph",
    "graphql",
    "openid-client",
    "oauth4webapi",
)
NPM_TIMEOUT = 300
NODE_TIMEOUT = 120


def _missing_tool(name: str) -> None:
    message = f"`{name}` is not on PATH; the conformance tests drive the hub with Node tools"
    if _in_ci():
        pytest.fail(f"{message}; CI=true requires them to run")
    pytest.skip(f"{message}; install Node 20+ to run them")


async def _run(
    *command: str, stdin: bytes | None = None, env: dict[str, str] | None = None, seconds: float
) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=HERE,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"`{' '.join(command)}` did not finish within {seconds:.0f} s")
    assert process.returncode is not None
    return process.returncode, out, err


class NodeTools:
    """Runs the ``.mjs`` scripts of this folder; each prints one JSON document."""

    def __init__(self, node: str) -> None:
        self.node = node

    async def run(
        self, script: str, *args: str, stdin: Any = None, env: dict[str, str] | None = None
    ) -> Any:
        data = None if stdin is None else json.dumps(stdin).encode()
        full_env = {**os.environ, **(env or {})}
        status, out, err = await _run(
            self.node, str(HERE / script), *args, stdin=data, env=full_env, seconds=NODE_TIMEOUT
        )
        if status != 0:
            pytest.fail(f"node {script} exited with {status}\nstderr:\n{err.decode()}")
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            pytest.fail(f"node {script} printed no JSON:\n{out.decode()}\n{err.decode()}")


@pytest.fixture(scope="session")
async def node_tools() -> NodeTools:
    """Node with this folder's pinned packages installed (``npm ci`` when missing)."""
    node = shutil.which("node")
    if node is None:
        _missing_tool("node")
    assert node is not None
    if not all((HERE / "node_modules" / name / "package.json").exists() for name in REQUIRED):
        npm = shutil.which("npm")
        if npm is None:
            _missing_tool("npm")
        assert npm is not None
        status, out, err = await _run(npm, "ci", "--no-audit", "--no-fund", seconds=NPM_TIMEOUT)
        if status != 0:
            pytest.fail(f"`npm ci` in {HERE} failed ({status}):\n{out.decode()}\n{err.decode()}")
    return NodeTools(node)
