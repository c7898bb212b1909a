"""The subgraph client's HTTP/1.1 client (:mod:`connectors._http1`) against a real socket
server on 127.0.0.1 that answers with bytes each test writes: keep-alive and its limits,
framing (sized, chunked), content encodings and their limits, a server that closes an
idle connection, timeouts, malformed answers and header injection."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from connectors._http1 import Answer, BodyTooLargeError, Dial, Http1Client, HttpError

Reply = Callable[[bytes], bytes | None]
"""What the server writes for a request (its head and body); ``None``: close instead."""


@dataclass
class Server:
    """A local server: one reply function, every request received, per connection."""

    port: int = 0
    reply: Reply = lambda _: ok(b'{"data": {}}')
    close_after_reply: bool = False
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql?x=1"


def ok(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


def chunked(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    parts = [body[i : i + 7] for i in range(0, len(body), 7)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return f"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode() + chunks


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    found = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        number = found.connections
        found.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                found.requests.append((number, request))
                answer = found.reply(request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if found.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    found.port = listening.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        listening.close()
        for writer in found.writers:
            writer.close()


def plain_dial(port: int) -> Dial:
    async def dial(
        factory: Callable[[], asyncio.Protocol],
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        return await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port)

    return dial


async def post(server: Server, client: Http1Client | None = None) -> Answer:
    http = client or Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        return await http.post(b'{"query": "{ ok }"}', {"Content-Type": "application/json"})
    finally:
        if client is None:
            await http.aclose()


async def test_a_request_is_a_post_with_host_length_and_the_callers_headers(
    server: Server,
) -> None:
    answer = await post(server)
    assert answer == Answer(200, b'{"data": {}}')
    ((_, request),) = server.requests
    head, body = request.split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /graphql?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: %d" % len(body) in lines
    assert not any(line.lower().startswith(b"accept-encoding") for line in lines)


async def test_connections_are_kept_and_reused(server: Server) -> None:
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        for _ in range(3):
            assert (await post(server, http)).status == 200
    finally:
        await http.aclose()
    assert [number for number, _ in server.requests] == [1, 1, 1]


async def test_concurrent_requests_open_no_more_connections_than_the_limit(
    server: Server,
) -> None:
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000, limit=2)
    try:
        answers = await asyncio.gather(*(post(server, http) for _ in range(6)))
    finally:
        await http.aclose()
    assert [a.status for a in answers] == [200] * 6
    assert len(server.requests) == 6
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced_once(
    server: Server,
) -> None:
    # The server closes after each answer without saying so (no "Connection: close"):
    # the next request finds the kept connection closed and goes out on a new one.
    server.close_after_reply = True
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        assert (await post(server, http)).status == 200
        await asyncio.sleep(0.05)  # the close reaches the client
        assert (await post(server, http)).status == 200
    finally:
        await http.aclose()
    assert [number for number, _ in server.requests] == [1, 2]


async def test_connection_close_is_honoured(server: Server) -> None:
    server.reply = lambda _: ok(b"{}", "Connection: close")
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        await post(server, http)
        await post(server, http)
    finally:
        await http.aclose()
    assert server.connections == 2


async def test_a_connection_idle_past_its_time_is_not_reused(server: Server) -> None:
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000, idle_seconds=0.01)
    try:
        await post(server, http)
        await asyncio.sleep(0.05)
        await post(server, http)
    finally:
        await http.aclose()
    assert server.connections == 2


async def test_a_chunked_answer_is_read_whole(server: Server) -> None:
    body = b'{"data": {"text": "' + b"abcdefghij" * 20 + b'"}}'
    server.reply = lambda _: chunked(body)
    assert (await post(server)).body == body


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_answer_is_decoded(server: Server, encoding: str) -> None:
    body = b'{"data": {"ok": true}}'
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    server.reply = lambda _: ok(packed, f"Content-Encoding: {encoding}")
    assert (await post(server)).body == body


@pytest.mark.parametrize("chunks", [False, True])
async def test_an_answer_over_the_limit_fails_and_its_connection_is_dropped(
    server: Server, chunks: bool
) -> None:
    big = b"x" * 5000
    server.reply = lambda _: chunked(big) if chunks else ok(big)
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        with pytest.raises(BodyTooLargeError, match="over 1000 bytes"):
            await post(server, http)
        server.reply = lambda _: ok(b"{}")
        assert (await post(server, http)).status == 200
    finally:
        await http.aclose()
    assert server.connections == 2


async def test_a_compressed_bomb_stops_at_the_limit(server: Server) -> None:
    bomb = gzip.compress(b"0" * 1_000_000)  # about 1 KB that inflates to 1 MB
    server.reply = lambda _: ok(bomb, "Content-Encoding: gzip")
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=len(bomb) + 10)
    try:
        with pytest.raises(BodyTooLargeError):
            await post(server, http)
    finally:
        await http.aclose()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "not HTTP/1.1"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"data"', "closed mid-answer"),
        (ok(b"{}", "Content-Encoding: br"), "content encoding 'br' is unknown"),
        (ok(b"garbage", "Content-Encoding: gzip"), "gzip body is damaged"),
    ],
)
async def test_a_bad_answer_is_an_error_naming_what_is_wrong(
    server: Server, answer: bytes, message: str
) -> None:
    server.reply = lambda _: answer
    server.close_after_reply = True
    with pytest.raises(HttpError, match=message):
        await post(server)


async def test_a_server_closing_without_answering_a_new_connection_is_an_error(
    server: Server,
) -> None:
    server.reply = lambda _: None
    with pytest.raises(HttpError, match="closed"):
        await post(server)
    assert server.connections == 1  # no retry loop on a fresh connection


async def test_a_timed_out_request_drops_its_connection(server: Server) -> None:
    server.reply = lambda _: b""  # the first request is never answered
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await post(server, http)
        server.reply = lambda _: ok(b"{}")
        assert (await post(server, http)).status == 200  # on a new connection
    finally:
        await http.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    "header", [("X-Key", "a\r\nX-Injected: 1"), ("X-Key\r\nX", "v"), ("X-Key", "a\0b")]
)
async def test_a_header_with_a_line_break_is_refused_before_sending(
    server: Server, header: tuple[str, str]
) -> None:
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    try:
        with pytest.raises(ValueError, match="line break or NUL"):
            await http.post(b"{}", dict([header]))
    finally:
        await http.aclose()
    assert server.requests == []


async def test_redirects_are_answers_not_followed(server: Server) -> None:
    server.reply = lambda _: ok(b"", "Location: http://169.254.169.254/", status="302 Found")
    assert (await post(server)).status == 302
    assert len(server.requests) == 1


async def test_a_closed_client_refuses_requests(server: Server) -> None:
    http = Http1Client(server.url, plain_dial(server.port), limit_bytes=1000)
    await http.aclose()
    with pytest.raises(HttpError, match="closed"):
        await post(server, http)
