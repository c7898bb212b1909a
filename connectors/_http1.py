"""A small keep-alive HTTP/1.1 client for JSON POSTs to one origin (the subgraph client's).

A remote field costs a partner's page one ``_entities`` POST, made inside the page's
request. Measured in the hub's server (docs/federation.md, "The HTTP client"), aiohttp's
request machinery cost about 0.5 ms of CPU a call there, against 0.2 ms in a loop of calls
alone: between two pages its long code path runs with cold caches. This client does only
what the subgraph client needs, in a few Python calls a request, and leaves the protocol
to httptools' C parser (the one uvicorn serves the hub with):

- ``POST`` with a ``Content-Length`` body, one request at a time per connection;
- answers sized or chunked, plain or ``gzip``/``deflate`` (never asked for: no
  ``Accept-Encoding`` is sent), read up to a byte limit (decompressed size included);
- connections kept alive and reused (most recently used first), closed after
  ``idle_seconds`` unused, at most ``limit`` open at once; a reused connection the server
  closed meanwhile is retried once on a new one (the requests are read-only queries);
- no redirects (a ``3xx`` is an answer like any other), no proxies, no cookies.

The connections come from the caller's ``dial`` (the hub's SSRF-checked one,
:func:`hub.netguard.guarded_dial`), which decides where it connects, and TLS.

Example::

    client = Http1Client("https://loyalty.example.com/graphql", dial, limit_bytes=2**24)
    answer = await client.post(b'{"query": "{ ok }"}', {"Content-Type": "application/json"})
    answer.status, answer.body
    await client.aclose()
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

Dial = Callable[
    [Callable[[], asyncio.Protocol]], Awaitable[tuple[asyncio.BaseTransport, asyncio.Protocol]]
]
"""Opens a connection to the client's origin for a protocol factory, as
``loop.create_connection(factory, ...)`` does (and with TLS for an ``https`` URL)."""


class HttpError(Exception):
    """The exchange failed: no connection, a connection lost before the whole answer, an
    answer that is not HTTP/1.1 or is too large. The message says which."""


class BodyTooLargeError(HttpError):
    """The answer is larger than the client's byte limit."""


class _StaleError(HttpError):
    """A reused connection was found closed before any byte of the answer arrived."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: its status and its body (decoded from its content encoding)."""

    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection: writes a request, parses its answer, then waits for the next."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.used_at = 0.0
        self._waiter: asyncio.Future[Answer] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._received = False
        self._encoding = b""
        self._keep_alive = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HttpError("the subgraph answered with a protocol upgrade"))
        except httptools.HttpParserError as error:
            self._fail(HttpError(f"the answer is not HTTP/1.1 ({error})"))

    def eof_received(self) -> bool:
        return False  # close the transport: a half-closed connection is of no further use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if not self._received:
                self._waiter.set_exception(_StaleError("the connection was closed"))
            else:
                self._waiter.set_exception(HttpError("the connection closed mid-answer"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-encoding":
            self._encoding = value.strip().lower()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.limit_bytes:
            self._fail(BodyTooLargeError(f"the answer is over {self.limit_bytes} bytes"))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self._keep_alive = self.parser.should_keep_alive()
        try:
            body = _decoded(b"".join(self._chunks), self._encoding, self.limit_bytes)
        except HttpError as error:
            waiter.set_exception(error)
            return
        waiter.set_result(Answer(self.parser.get_status_code(), body))

    # the client's side

    async def exchange(self, request: bytes) -> Answer:
        """Send ``request`` and wait for its whole answer."""
        assert self.transport is not None  # made by the dial before any use
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self._chunks, self._size, self._received = [], 0, False
        self._encoding, self._keep_alive = b"", False
        self.transport.write(request)
        try:
            answer: Answer = await waiter
        finally:
            self._waiter = None
        return answer

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: HttpError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()  # the rest of this answer cannot be read: never reuse


def _decoded(body: bytes, encoding: bytes, limit_bytes: int) -> bytes:
    """``body`` without its content encoding, no larger than ``limit_bytes`` decoded."""
    if encoding in (b"", b"identity"):
        return body
    if encoding not in (b"gzip", b"x-gzip", b"deflate"):
        raise HttpError(f"the answer's content encoding {encoding.decode('latin-1')!r} is unknown")
    # 47: a gzip or zlib header, detected; a compressed bomb stops at the limit.
    inflater = zlib.decompressobj(47)
    try:
        plain = inflater.decompress(body, limit_bytes + 1)
    except zlib.error as error:
        raise HttpError(f"the answer's {encoding.decode()} body is damaged ({error})") from None
    if len(plain) > limit_bytes:
        raise BodyTooLargeError(f"the answer is over {limit_bytes} bytes")
    return plain


class Http1Client:
    """Keep-alive HTTP/1.1 POSTs to ``url`` (see the module docstring).

    Extension point: ``dial`` opens every connection (where to, and TLS), so a caller can
    check addresses or add TLS settings without this client knowing."""

    def __init__(
        self,
        url: str,
        dial: Dial,
        *,
        limit_bytes: int,
        limit: int = 100,
        idle_seconds: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        default = 443 if parts.scheme == "https" else 80
        if parts.port is not None and parts.port != default:
            host += f":{parts.port}"
        _check_header("Host", host)
        self._head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\n".encode()
        self.dial = dial
        self.limit_bytes = limit_bytes
        self.idle_seconds = idle_seconds
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``body`` with ``headers`` (no ``Host`` or ``Content-Length``: the client
        sets them); raises :class:`HttpError` (or ``OSError`` from the dial)."""
        if self._closed:
            raise HttpError("the client is closed")
        request = self._request(body, headers)
        async with self._slots:
            connection = self._take()
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except _StaleError:
                    pass  # closed by the server while idle: once more on a new connection
            return await self._exchange(await self._open(), request)

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their request ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _request(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [self._head]
        for name, value in headers.items():
            _check_header(name, value)
            lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
        lines.append(body)
        return b"".join(lines)

    def _take(self) -> _Connection | None:
        """The most recently used open connection, closing those idle too long."""
        expired = time.monotonic() - self.idle_seconds
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and connection.used_at > expired:
                return connection
            connection.close()
        return None

    async def _open(self) -> _Connection:
        limit = self.limit_bytes
        _, protocol = await self.dial(lambda: _Connection(limit))
        assert isinstance(protocol, _Connection)  # the factory above made it
        return protocol

    async def _exchange(self, connection: _Connection, request: bytes) -> Answer:
        try:
            answer = await connection.exchange(request)
        except BaseException:
            connection.close()  # failed, cancelled or timed out mid-answer: never reuse
            raise
        if connection.reusable and not self._closed:
            connection.used_at = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return answer


def _check_header(name: str, value: str) -> None:
    """Refuse a header that would end the header block or start another (CR, LF, NUL)."""
    if any(c in name for c in "\r\n\0:") or any(c in value for c in "\r\n\0"):
        raise ValueError(f"the header {name.strip()[:40]!r} holds a line break or NUL")
