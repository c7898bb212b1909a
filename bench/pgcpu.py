"""PostgreSQL's CPU time spent on one database: its backends' ``/proc/<pid>/stat``.

A server under test (the hub, PostGraphile) keeps a pool of connections to the benchmark
database; each is a PostgreSQL backend process whose user+system CPU time the kernel
counts. ``pg_stat_activity`` names the backends connected to the database; their CPU
time is read from ``/proc`` at the start and at the end of the measured window, so what
the queries cost inside PostgreSQL is known per request, apart from the machine's other
load. (``pg_stat_statements`` would give execution times, but wall time, not CPU, and it
needs ``shared_preload_libraries`` and a restart: this works on any local server.)

Not counted: background processes (WAL writer, checkpointer: the reads write little),
parallel workers that start and end inside the window, and backends that close inside
it (a warmed pool keeps its connections). A backend that opens inside the window counts
with its whole CPU time. This needs PostgreSQL on this machine (its processes visible in
``/proc``); otherwise the figures are None and the run says why.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

_BACKENDS = (
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


class PostgresCpuError(Exception):
    """The backends cannot be listed or read; the message says why."""


def _process_cpu(pid: int) -> float | None:
    """User+system CPU seconds of a ``postgres`` process, None if it is not one of ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    if name != "postgres":
        # Another machine's or container's pid that happens to exist here.
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """One measured window: the backends seen at its start and their CPU time then."""

    start: dict[int, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    backends: int = 0


class PostgresCpu:
    """Samples the CPU time of the backends connected to the database ``db_url`` names."""

    def __init__(self, db_url: str) -> None:
        # asyncpg takes a plain postgresql:// URL.
        self._dsn = make_url(db_url).set(drivername="postgresql").render_as_string(False)

    def backends(self) -> list[int]:
        return asyncio.run(self._backends())

    async def _backends(self) -> list[int]:
        import asyncpg

        try:
            connection = await asyncpg.connect(self._dsn, timeout=10)
        except (OSError, asyncpg.PostgresError) as error:
            raise PostgresCpuError(f"cannot list the PostgreSQL backends: {error}") from None
        try:
            return [int(row["pid"]) for row in await connection.fetch(_BACKENDS)]
        finally:
            await connection.close()

    def begin(self, pids: list[int]) -> Window:
        """Read the start of a window for ``pids`` (listed just before, by :meth:`backends`).

        Reading ``/proc`` is all this does, so it can run at the window's exact start.
        """
        start = {pid: cpu for pid in pids if (cpu := _process_cpu(pid)) is not None}
        if pids and not start:
            raise PostgresCpuError(
                "the PostgreSQL backends are not visible in /proc (is the server on another"
                " machine or in a container?): PostgreSQL CPU is not measured"
            )
        return Window(start=start)

    def end(self, window: Window) -> Window:
        """Close ``window``: the CPU time its backends spent since :meth:`begin`, plus the
        whole CPU time of backends that opened since."""
        ended = {pid: _process_cpu(pid) for pid in window.start}
        total = sum(now - window.start[pid] for pid, now in ended.items() if now is not None)
        counted = sum(1 for now in ended.values() if now is not None)
        for pid in self.backends():
            if pid not in window.start and (cpu := _process_cpu(pid)) is not None:
                total += cpu
                counted += 1
        return Window(start=window.start, cpu_s=total, backends=counted)
