"""Drive one scenario: start the load processes together, time the window, merge reports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.load import REQUEST_TIMEOUT, LoadReport, LoadSpec
from bench.pgcpu import PostgresCpu, PostgresCpuError, Window
from bench.procs import machine_cpu_seconds, tree_cpu_seconds
from bench.results import ScenarioResult, merge

REPO_ROOT = Path(__file__).resolve().parent.parent
# Time for the load processes to start Python and import httpx before the shared start.
START_DELAY = 2.0
# PostgreSQL's backends are listed (a query) this long before the window opens; only
# /proc is read at its edges.
LIST_AHEAD = 0.5


class LoadError(Exception):
    """A load process failed; the message carries its stderr."""


@dataclass(frozen=True)
class LoadOptions:
    concurrency: int
    processes: int
    warmup: float
    duration: float
    client: str


def drive(
    scenario: str,
    *,
    url: str,
    headers: dict[str, str],
    bodies: list[str],
    options: LoadOptions,
    server_pid: int,
    workdir: Path,
    server: str = "hub",
    postgres: PostgresCpu | None = None,
) -> ScenarioResult:
    """Load ``url`` with ``options`` and measure; ``server_pid``'s CPU time is sampled, and
    with ``postgres`` the CPU time of the database's backends."""
    start_at = time.time() + START_DELAY
    shares = [
        options.concurrency // options.processes + (i < options.concurrency % options.processes)
        for i in range(options.processes)
    ]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index, concurrency in enumerate(shares):
            spec = LoadSpec(
                url=url,
                headers=headers,
                bodies=bodies,
                concurrency=concurrency,
                start_at=start_at,
                warmup=options.warmup,
                duration=options.duration,
                seed=index,
                client=options.client,
            )
            path = workdir / f"load-{scenario}-{index}.json"
            path.write_text(json.dumps(asdict(spec)))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.load", str(path)],
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        measure_from = start_at + options.warmup
        pg_error: str | None = None
        pg_window: Window | None = None
        pids: list[int] = []
        if postgres is not None:
            time.sleep(max(0.0, measure_from - LIST_AHEAD - time.time()))
            try:
                pids = postgres.backends()
            except PostgresCpuError as error:
                pg_error = str(error)
        time.sleep(max(0.0, measure_from - time.time()))
        cpu_before, machine_before = tree_cpu_seconds(server_pid), machine_cpu_seconds()
        if postgres is not None and pg_error is None:
            try:
                pg_window = postgres.begin(pids)
            except PostgresCpuError as error:
                pg_error = str(error)
        time.sleep(max(0.0, measure_from + options.duration - time.time()))
        cpu_after, machine_after = tree_cpu_seconds(server_pid), machine_cpu_seconds()
        if postgres is not None and pg_window is not None:
            try:
                pg_window = postgres.end(pg_window)
            except PostgresCpuError as error:
                pg_window, pg_error = None, str(error)
        reports = [_collect(process) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    machine_cpu = (
        None if machine_before is None or machine_after is None else machine_after - machine_before
    )
    return merge(
        scenario,
        reports,
        server_cpu,
        machine_cpu,
        server=server,
        pg_cpu_s=None if pg_window is None else pg_window.cpu_s,
        pg_backends=None if pg_window is None else pg_window.backends,
        pg_error=pg_error,
    )


def _collect(process: subprocess.Popen[bytes]) -> LoadReport:
    # In-flight requests finish within REQUEST_TIMEOUT after the window ends.
    stdout, stderr = process.communicate(timeout=REQUEST_TIMEOUT + 30)
    if process.returncode != 0:
        raise LoadError(f"a load process exited with {process.returncode}:\n{stderr.decode()}")
    return LoadReport(**json.loads(stdout))
