"""Where the hub listens (hub/listen.py): a busy port is refused before ``hub demo`` touches
the last demo's files, and the URL served is announced."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.listen import PortInUseError, announcement, check_free, reserve, url
from tests.e2e.server import HUB, hub_env


@pytest.fixture
def busy() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_refused_naming_the_address(busy: int) -> None:
    with pytest.raises(PortInUseError, match=rf"^127\.0\.0\.1:{busy} is already in use; "):
        reserve("127.0.0.1", busy)
    with pytest.raises(PortInUseError, match="--port"):
        check_free("127.0.0.1", busy)


def test_a_reserved_port_is_held_until_served() -> None:
    listener = reserve("127.0.0.1", 0)
    try:
        port = listener.getsockname()[1]
        # Held while the demo seeds: nobody else can take it meanwhile.
        with pytest.raises(PortInUseError, match="already in use"):
            check_free("127.0.0.1", port)
    finally:
        listener.close()
    check_free("127.0.0.1", port)


def test_an_unknown_host_is_named() -> None:
    with pytest.raises(PortInUseError, match=r"unknown host 'no-such-host\.invalid'"):
        reserve("no-such-host.invalid", 8000)


def test_the_announced_url() -> None:
    assert announcement("127.0.0.1", 8000) == (
        "Serving Partner Hub on http://127.0.0.1:8000 (GraphQL at /graphql)"
    )
    assert url("0.0.0.0", 8080) == "http://127.0.0.1:8080"  # noqa: S104
    assert "every interface" in announcement("0.0.0.0", 8080)  # noqa: S104
    assert url("::1", 9000) == "http://[::1]:9000"


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args], cwd=cwd, env=hub_env(**env), capture_output=True, text=True, timeout=120
    )


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_demo_on_a_busy_port_leaves_the_last_demo_untouched(busy: int, tmp_path: Path) -> None:
    (tmp_path / "hub.db").write_bytes(b"the last demo's database")
    (tmp_path / "demo-credentials.json").write_text('[{"org": "operator"}]\n')
    (tmp_path / "hub-secret.key").write_text("k" * 48)
    before = _snapshot(tmp_path)

    result = _run(["demo", "--customers", "5", "--port", str(busy)], tmp_path)

    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{busy} is already in use" in lines[0]
    assert "Traceback" not in result.stderr
    assert _snapshot(tmp_path) == before


def test_serve_on_a_busy_port_says_so(busy: int, tmp_path: Path) -> None:
    secret = "s" * 40
    assert _run(["init"], tmp_path, HUB_SECRET_KEY=secret).returncode == 0
    result = _run(["serve", "--port", str(busy)], tmp_path, HUB_SECRET_KEY=secret)

    assert result.returncode != 0
    assert f"127.0.0.1:{busy} is already in use" in result.stderr
    assert "Serving Partner Hub" not in result.stderr
    assert "Traceback" not in result.stderr
