"""The load generator, run in its own process: ``python -m bench.load SPEC.json``.

A closed loop: ``concurrency`` tasks, each on its own keep-alive connection, each sending
its next request as soon as the previous one is answered. Requests started during the
warm-up are not measured; no request starts after the window ends, and one still without
a reply ``REQUEST_TIMEOUT`` seconds later counts as an error. The process prints one JSON
object (a :class:`LoadReport`) on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
REQUEST_TIMEOUT = 30.0
CLIENTS = ("raw", "httpx")


@dataclass(frozen=True)
class LoadSpec:
    """What one load process does; written as JSON by the driver."""

    url: str
    headers: dict[str, str]
    bodies: list[str]  # one is picked at random for each request
    concurrency: int
    start_at: float  # wall-clock time (time.time()) when every process starts sending
    warmup: float
    duration: float
    seed: int
    client: str = "raw"  # one of CLIENTS

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadSpec:
        return cls(**data)


@dataclass
class LoadReport:
    """What one load process measured inside the window."""

    latencies_ms: list[float] = field(default_factory=list)
    sql_statements: dict[str, int] = field(default_factory=dict)  # count -> requests
    errors: int = 0
    error_sample: str | None = None
    window_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time inside the window


class _Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.sql: Counter[str] = Counter()
        self.errors = 0
        self.error_sample: str | None = None

    def error(self, message: str) -> None:
        self.errors += 1
        if self.error_sample is None:
            self.error_sample = message[:500]


@dataclass(frozen=True)
class _Reply:
    status: int
    sql_statements: str | None
    content: bytes


class _Sender(Protocol):
    """Sends request ``index`` (of the spec's bodies) and returns the whole reply."""

    async def send(self, index: int) -> _Reply: ...

    async def close(self) -> None: ...


class HttpxSender:
    """One task's view of a shared keep-alive ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, url: str, bodies: list[bytes]) -> None:
        self._client, self._url, self._bodies = client, url, bodies

    async def send(self, index: int) -> _Reply:
        response = await self._client.post(self._url, content=self._bodies[index])
        return _Reply(
            response.status_code, response.headers.get("x-sql-statements"), response.content
        )

    async def close(self) -> None:
        pass


class RawSender:
    """A minimal HTTP/1.1 keep-alive client on one connection, for little client CPU.

    The requests are serialised once up front; a reply is read by ``Content-Length`` or
    chunked, which is all uvicorn sends. httpx spends milliseconds of CPU per request in
    Python, which on a small machine would be taken from the server being measured.
    """

    def __init__(self, url: str, headers: dict[str, str], bodies: list[bytes]) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "", parts.port or 80
        head = f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._requests = [
            f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body for body in bodies
        ]
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, index: int) -> _Reply:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        try:
            writer.write(self._requests[index])
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            fields = {}
            for line in lines:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "content-length" in fields:
                content = await reader.readexactly(int(fields["content-length"]))
            else:
                content = await self._chunked(reader)
            if fields.get("connection", "").lower() == "close":
                await self.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            raise
        return _Reply(int(status_line.split()[1]), fields.get("x-sql-statements"), content)

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        return b"".join(chunks)

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _worker(
    sender: _Sender,
    count: int,
    rng: random.Random,
    window: tuple[float, float],
    recorder: _Recorder,
) -> None:
    measure_from, stop_at = window
    try:
        while (started := time.perf_counter()) < stop_at:
            index = 0 if count == 1 else rng.randrange(count)
            try:
                reply = await sender.send(index)
            except (OSError, httpx.HTTPError, asyncio.IncompleteReadError) as error:
                if started >= measure_from:
                    recorder.error(f"{type(error).__name__}: {error}")
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
                continue
            elapsed = time.perf_counter() - started
            if started < measure_from:
                continue
            recorder.latencies.append(round(elapsed * 1000, 3))
            recorder.sql[reply.sql_statements or "-"] += 1
            if reply.status != 200 or b'"errors"' in reply.content:
                recorder.error(f"HTTP {reply.status}: {reply.content[:300]!r}")
    finally:
        await sender.close()


async def _cpu_in_window(window: tuple[float, float], out: list[float]) -> None:
    measure_from, stop_at = window
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    begin = time.process_time()
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    out.append(time.process_time() - begin)


async def run(spec: LoadSpec) -> LoadReport:
    host = urlsplit(spec.url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")
    if spec.client not in CLIENTS:
        raise ValueError(f"client must be one of {', '.join(CLIENTS)}, not {spec.client!r}")
    bodies = [body.encode() for body in spec.bodies]
    headers = {"Content-Type": "application/json", "Accept": "application/json", **spec.headers}
    # perf_counter is per process; map the shared wall-clock start onto it.
    offset = time.perf_counter() - time.time()
    begin = spec.start_at + offset
    window = (begin + spec.warmup, begin + spec.warmup + spec.duration)
    recorder = _Recorder()
    cpu: list[float] = []
    limits = httpx.Limits(
        max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
    )
    async with httpx.AsyncClient(
        headers=headers, limits=limits, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:
        senders: list[_Sender] = [
            HttpxSender(client, spec.url, bodies)
            if spec.client == "httpx"
            else RawSender(spec.url, headers, bodies)
            for _ in range(spec.concurrency)
        ]
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        rngs = [random.Random(spec.seed * 1000 + i) for i in range(spec.concurrency)]
        tasks = [
            asyncio.create_task(_worker(sender, len(bodies), rng, window, recorder))
            for sender, rng in zip(senders, rngs, strict=True)
        ]
        await _cpu_in_window(window, cpu)
        # No request starts after the window; one that has not come back in time never will.
        _, late = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT)
        for task in late:
            task.cancel()
            recorder.error(f"no reply within {REQUEST_TIMEOUT:g} s of the window's end")
        await asyncio.gather(*late, return_exceptions=True)
    return LoadReport(
        latencies_ms=recorder.latencies,
        sql_statements=dict(recorder.sql),
        errors=recorder.errors,
        error_sample=recorder.error_sample,
        window_s=spec.duration,
        cpu_s=cpu[0] if cpu else 0.0,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.load SPEC.json", file=sys.stderr)
        return 2
    spec = LoadSpec.from_json(json.loads(Path(argv[1]).read_text()))
    try:
        import uvloop
    except ImportError:
        report = asyncio.run(run(spec))
    else:
        report = uvloop.run(run(spec))
    json.dump(asdict(report), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
