"""Peers: other GraphQL servers measured beside the hub on the same database.

One peer so far: PostGraphile v4 (bench/postgraphile: ``package.json`` pins it,
``package-lock.json`` pins its dependencies, ``server.js`` serves it). It reads the
PostgreSQL benchmark database directly, with no sharing policy, so the hub's figures
beside it show what the hub's layers and its policy cost. It is installed with ``npm ci``
on first use (the only step that needs the network) and runs offline afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

POSTGRAPHILE = "postgraphile"
PEERS = (POSTGRAPHILE,)
POSTGRAPHILE_DIR = Path(__file__).resolve().parent / "postgraphile"
NPM_TIMEOUT = 600.0
MIN_NODE = 20  # as package.json's engines say: the version it is run and tested with
# The hub's default database pool size (HUB_DB_POOL_SIZE): PostGraphile gets as many
# connections, so neither waits for one where the other would not.
POOL_SIZE = 20


class PeerError(Exception):
    """A peer cannot be installed or started; the message says why, in one line."""


def _pinned() -> str:
    manifest = json.loads((POSTGRAPHILE_DIR / "package.json").read_text())
    version: str = manifest["dependencies"]["postgraphile"]
    return version


def postgraphile_version() -> str:
    """The pinned PostGraphile version."""
    return _pinned()


def _installed() -> bool:
    path = POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json"
    try:
        return bool(json.loads(path.read_text())["version"] == _pinned())
    except (OSError, ValueError, KeyError):
        return False


def node_missing() -> str | None:
    """Why PostGraphile cannot run here (no node or npm, or a too old node), or None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        return f"{missing} not found on PATH (install Node {MIN_NODE}+)"
    try:
        done = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
        major = int(done.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return f"`{node} --version` failed"
    if major < MIN_NODE:
        return f"node {done.stdout.strip()} is too old (PostGraphile needs Node {MIN_NODE}+)"
    return None


def ensure_postgraphile(say: Callable[[str], None]) -> str:
    """The ``node`` executable, with the pinned PostGraphile installed in bench/postgraphile
    (``npm ci`` from the lock file on first use, or when the pinned version changed)."""
    reason = node_missing()
    if reason is not None:
        raise PeerError(f"PostGraphile cannot run: {reason}")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:  # node_missing() said they were there
        raise PeerError("PostGraphile cannot run: node or npm vanished from PATH")
    if not _installed():
        say(
            f"installing PostGraphile {_pinned()} in {POSTGRAPHILE_DIR} with `npm ci` (first"
            " use; needs the npm registry, then runs offline) ..."
        )
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=POSTGRAPHILE_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PeerError(
                f"`npm ci` in {POSTGRAPHILE_DIR} did not finish within {NPM_TIMEOUT:.0f} s"
                " (offline? pass --peers none)"
            ) from None
        if done.returncode != 0 or not _installed():
            lines = (done.stderr or done.stdout).strip().splitlines()
            last = next((line for line in reversed(lines) if line.strip()), "no output")
            raise PeerError(
                f"`npm ci` in {POSTGRAPHILE_DIR} failed ({done.returncode}): {last.strip()}"
                " (offline? pass --peers none)"
            )
    return node


def postgraphile_command(
    node: str, *, port: int, db_url: str, workers: int
) -> tuple[list[str], dict[str, str]]:
    """The command and environment serving ``db_url`` (a SQLAlchemy URL) on loopback."""
    # node-postgres takes a plain postgresql:// URL; in the environment, not on the
    # command line, where `ps` would show a password.
    url = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "PG", "BENCH_", "NODE_"))
    }
    env.update(
        NODE_ENV="production",
        BENCH_PG_URL=url,
        BENCH_PORT=str(port),
        BENCH_WORKERS=str(workers),
        BENCH_POOL_SIZE=str(POOL_SIZE),
    )
    return [node, str(POSTGRAPHILE_DIR / "server.js")], env
