"""A receiver that trickles its answer a byte at a time cannot hold the sender past the
total timeout: httpx's timeouts bound each read, not the exchange, so a receiver sending
a byte every few seconds held one delivery (and with it the worker's whole round: every
other subscriber's events) for as long as it liked: 70 s for a 3 s "total" here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.base import ChangeEvent
from connectors.outbound import DeliveryError, Timeouts, WebhookSink

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


async def trickling(head_delay: float, body_delay: float) -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(head_delay)
            for _ in range(200):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(body_delay)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()


@pytest.fixture
async def slow_head() -> AsyncIterator[str]:
    async for url in trickling(head_delay=0.2, body_delay=0.0):
        yield url


@pytest.fixture
async def slow_body() -> AsyncIterator[str]:
    async for url in trickling(head_delay=0.0, body_delay=0.2):
        yield url


def sink(url: str, http: httpx.AsyncClient) -> WebhookSink:
    return WebhookSink(url, [SECRET], http, timeouts=Timeouts(connect=1.0, total=1.0))


async def test_an_answer_trickled_past_the_total_is_no_answer(slow_head: str) -> None:
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="no answer within 1 s") as raised:
            await sink(slow_head, http).send(ChangeEvent("msg_1", "Customer.update", {}))
    assert time.monotonic() - started < 3.0
    assert raised.value.reached and raised.value.status is None


async def test_a_body_trickled_past_the_total_is_given_up(slow_body: str) -> None:
    async with httpx.AsyncClient() as http:
        out = sink(slow_body, http)
        started = time.monotonic()
        await out.send(ChangeEvent("msg_1", "Customer.update", {}))  # 200: delivered
    assert time.monotonic() - started < 3.0
    assert out.last_status == 200
