"""Pooled PostgreSQL connections are checked at checkout without a round trip when busy
(hub.db): a connection the server closed is replaced, one idle past the quiet time is
pinged, so a restarted or failed-over database fails no request once it is back."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db import make_engine
from tests.pgcluster import Cluster
from tests.postgres import postgres_server

pytestmark = pytest.mark.db


async def _backend_pids(engine: AsyncEngine, count: int) -> set[int]:
    """The server processes of ``count`` connections held at once (so all are pooled)."""
    connections = [await engine.connect() for _ in range(count)]
    try:
        return {
            (await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() for c in connections
        }
    finally:
        for connection in connections:
            await connection.close()


def _count_pings(engine: AsyncEngine) -> list[int]:
    pings = [0]
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings[0] += 1
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="hub-liveness-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_after_a_restart_no_request_fails_on_a_dead_pooled_connection(
    cluster: Cluster, mode: str
) -> None:
    engine = make_engine(cluster.url, pool_size=3)
    try:
        before = await _backend_pids(engine, 3)
        await asyncio.to_thread(
            cluster._run, "pg_ctl", "-D", str(cluster.data), "-m", mode, "-w", "stop"
        )
        await asyncio.to_thread(cluster.start)
        # Every pooled connection died with the server; each checkout hands out a new one.
        after = await _backend_pids(engine, 3)
        assert not before & after
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_terminated_backend_is_replaced_at_checkout(cluster: Cluster) -> None:
    engine = make_engine(cluster.url, pool_size=1)
    try:
        (pid,) = await _backend_pids(engine, 1)
        admin = make_engine(cluster.url, pool_size=1)
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await admin.dispose()
        await asyncio.sleep(0.1)  # the event loop reads the end of the socket
        (new_pid,) = await _backend_pids(engine, 1)
        assert new_pid != pid
    finally:
        await engine.dispose()


class _Proxy:
    """A TCP relay to PostgreSQL that can go silent as a failed-over or partitioned host
    does: ``sever()`` drops the server side but leaves the hub's sockets open, and the
    first byte the hub then sends is answered by a reset (its peer has no such
    connection any more). Connections made afterwards are relayed again."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.epoch = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def sever(self) -> None:
        self.epoch += 1

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        epoch = self.epoch
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def to_server() -> None:
            while data := await reader.read(65536):
                if self.epoch != epoch:
                    writer.transport.abort()  # a reset: the peer has no such connection
                    break
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def to_hub() -> None:
            while data := await up_reader.read(65536):
                if self.epoch == epoch:  # severed: nothing more reaches the hub
                    writer.write(data)
                    await writer.drain()
            if self.epoch == epoch:
                writer.close()

        await asyncio.gather(to_server(), to_hub())


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[_Proxy, str]]:
    url = make_url(await postgres_server())
    relay = _Proxy(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    await relay.close()


async def test_a_connection_idle_past_the_quiet_time_is_pinged_and_replaced(
    proxy: tuple[_Proxy, str],
) -> None:
    relay, url = proxy
    engine = make_engine(url, pool_size=1, quiet_ping_seconds=0.2)
    pings = _count_pings(engine)
    try:
        (pid,) = await _backend_pids(engine, 1)
        relay.sever()  # the hub's socket stays open: only a round trip can tell
        await asyncio.sleep(0.3)
        (new_pid,) = await _backend_pids(engine, 1)
        assert new_pid != pid
        assert pings[0] == 1
    finally:
        await engine.dispose()


async def test_a_busy_connection_is_not_pinged(proxy: tuple[_Proxy, str]) -> None:
    _, url = proxy
    engine = make_engine(url, pool_size=1, quiet_ping_seconds=60)
    pings = _count_pings(engine)
    try:
        pids = set()
        for _ in range(10):
            pids |= await _backend_pids(engine, 1)
        assert len(pids) == 1
        assert pings[0] == 0
    finally:
        await engine.dispose()


async def test_a_busy_connection_gone_silent_fails_once_and_the_pool_recovers(
    proxy: tuple[_Proxy, str],
) -> None:
    """What the quiet time trades: a connection reused within it is not pinged, so a
    silent failover reaches one statement (an outage error: hub.outage answers 503);
    the pool is invalidated, and the next checkout connects again."""
    relay, url = proxy
    engine = make_engine(url, pool_size=2, quiet_ping_seconds=60)
    try:
        (first, second) = sorted(await _backend_pids(engine, 2))
        relay.sever()
        with pytest.raises(DBAPIError) as raised:
            await _backend_pids(engine, 1)
        assert raised.value.connection_invalidated
        after = await _backend_pids(engine, 2)
        assert not after & {first, second}
    finally:
        await engine.dispose()
