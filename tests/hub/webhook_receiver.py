"""A real webhook receiver on 127.0.0.1 for the delivery tests.

A small HTTP/1.1 server on asyncio streams (keep-alive, ``Content-Length`` bodies) that
verifies every request's Standard Webhooks signature with the ``standardwebhooks``
library, deduplicates on ``webhook-id`` as a careful receiver does, and answers with the
status the test sets (``statuses`` is consumed first, then ``status``). ``stop()``
closes the port (connections are refused: the receiver is down) and ``start()`` opens
the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    message_id: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    secrets: list[str] = field(default_factory=list)
    status: int = 200
    statuses: list[int] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    port: int = 0
    accepted: dict[str, Received] = field(default_factory=dict)
    """First accepted request per ``webhook-id`` (what a deduplicating receiver keeps)."""
    attempts: Counter[str] = field(default_factory=Counter)
    """Requests per ``webhook-id``, whatever was answered."""
    duplicates: int = 0
    """Requests for a ``webhook-id`` already accepted (dropped by deduplication)."""
    bad_signatures: int = 0
    hosts: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        for secret in self.secrets:
            try:
                parsed: dict[str, Any] = Webhook(secret).verify(body, headers)
                return parsed
            except WebhookVerificationError:
                continue
        return None

    def answer(self) -> int:
        return self.statuses.pop(0) if self.statuses else self.status

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self._handle(body, headers)
                extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers.items())
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}\r\n".encode("latin-1")
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()

    def _handle(self, body: bytes, headers: dict[str, str]) -> int:
        self.hosts.append(headers.get("host", ""))
        message_id = headers.get("webhook-id", "")
        self.attempts[message_id] += 1
        parsed = self.verify(body, headers)
        if parsed is None:
            self.bad_signatures += 1
            return 400
        status = self.answer()
        if 200 <= status < 300:
            if message_id in self.accepted:
                self.duplicates += 1
            else:
                self.accepted[message_id] = Received(message_id, headers, parsed)
        return status

    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.accepted.values()]

    def dump(self) -> str:
        return json.dumps([r.body for r in self.accepted.values()], indent=1)
