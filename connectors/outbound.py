"""Outbound webhooks: a sink that posts change events to a subscriber's endpoint, signed
per the Standard Webhooks specification (https://www.standardwebhooks.com/).

Each request carries ``webhook-id`` (the event's id: the same on every retry, so the
receiver deduplicates on it), ``webhook-timestamp`` (seconds since the epoch, at sending)
and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, one per
secret, space-separated, so a rotated secret and its successor both verify during the
overlap), signed with the ``standardwebhooks`` library. The body is
``{"type", "timestamp", "data"}`` as the specification suggests.

The sink decides nothing about who may receive what: the hub hands it events already
projected for the subscriber, and an ``httpx.AsyncClient`` whose transport enforces the
hub's outbound address rules (redirects are never followed: a 3xx is a failure). A 2xx
answer is a delivery; anything else raises :class:`DeliveryError` (the runtime retries
later), :class:`EndpointGoneError` for 410 (the receiver asks to stop).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from connectors.base import ChangeEvent

USER_AGENT = "PartnerHub-Webhooks/1"
MAX_ANSWER_BYTES = 64 * 1024
"""Bytes of an answer's body read (then dropped) before the connection is given up."""
MAX_RETRY_AFTER = 24 * 3600.0
"""A ``Retry-After`` longer than this (seconds) is capped."""


class DeliveryError(Exception):
    """The receiver did not take the event. ``status`` is the HTTP status (``None``: no
    answer: refused, reset, timed out); ``retry_after`` the seconds it asked to wait;
    ``reached``: the body may have arrived (an answer came, or the connection failed
    after it was open), so the event counts as disclosed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        reached: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.reached = status is not None if reached is None else reached


class EndpointGoneError(DeliveryError):
    """HTTP 410: the receiver no longer wants events at this endpoint."""


@dataclass(frozen=True)
class Timeouts:
    """Short by design: a slow receiver must not hold a sender (seconds)."""

    connect: float = 5.0
    total: float = 10.0

    def for_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.total, connect=self.connect)


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3: seconds or an
    HTTP date), capped at :data:`MAX_RETRY_AFTER`; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    # ASCII digits only (RFC 9110's delay-seconds): str.isdigit also says yes to "²"
    # (a Latin-1 byte of a header), which float() refuses: the ValueError failed a
    # delivery worker's whole round, and an http source's run.
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def body_of(event: ChangeEvent, occurred_at: datetime | None = None) -> bytes:
    """The request body: compact JSON, ``data`` as given (it must be JSON-ready)."""
    envelope: dict[str, Any] = {
        "type": event.kind,
        "timestamp": (occurred_at or datetime.now(UTC)).astimezone(UTC).isoformat(),
        "data": dict(event.data),
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def sign(message_id: str, secrets: Sequence[str], body: bytes, at: datetime) -> str:
    """The ``webhook-signature`` value: one ``v1,...`` signature per secret."""
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)


async def _drain(response: httpx.Response) -> None:
    """Read the answer's body up to :data:`MAX_ANSWER_BYTES`: read to its end, the
    connection goes back to the pool; past the limit it is closed instead."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            return


class WebhookSink:
    """Posts change events to one endpoint (a :class:`connectors.base.Sink`).

    ``secrets``: the signing secrets (``whsec_...``), current first. ``http``: the client
    to send with, owned by the caller (its transport decides which addresses are
    reachable).

    Example::

        sink = WebhookSink("https://hooks.example.com/hub", ["whsec_..."], http)
        await sink.send(ChangeEvent("msg_1", "Customer.update", {"id": "..."}))
    """

    def __init__(
        self,
        url: str,
        secrets: Sequence[str],
        http: httpx.AsyncClient,
        *,
        timeouts: Timeouts | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("a webhook sink needs at least one signing secret")
        self.url = url
        self.secrets = tuple(secrets)
        self.http = http
        self.timeouts = timeouts or Timeouts()
        self.last_status: int | None = None
        """The HTTP status of the last answer (``None`` before one, or with none)."""

    def headers(self, event: ChangeEvent, body: bytes, at: datetime) -> Mapping[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.event_id,
            "webhook-timestamp": str(math.floor(at.timestamp())),
            "webhook-signature": sign(event.event_id, self.secrets, body, at),
        }

    async def send(self, event: ChangeEvent, *, occurred_at: datetime | None = None) -> None:
        """Post ``event``; returns on a 2xx answer, raises :class:`DeliveryError`
        otherwise. At most :data:`MAX_ANSWER_BYTES` of the answer's body are read (and
        dropped), so a receiver cannot make the sender download anything, and a short
        answer leaves the connection open for the next event."""
        self.last_status = None
        body = body_of(event, occurred_at)
        at = datetime.now(UTC)
        request = self.http.build_request(
            "POST",
            self.url,
            content=body,
            headers=dict(self.headers(event, body, at)),
            timeout=self.timeouts.for_httpx(),
        )
        # httpx's timeouts bound each read, not the exchange: a receiver trickling its
        # answer a byte at a time held the sender (and the worker's round, every other
        # subscriber's events) as long as it liked. The total is a deadline over both.
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        try:
            async with asyncio.timeout_at(deadline):
                response = await self.http.send(request, stream=True, follow_redirects=False)
        except TimeoutError:
            raise DeliveryError(
                f"no answer within {self.timeouts.total:g} s", reached=True
            ) from None
        except httpx.ConnectTimeout:
            raise DeliveryError(f"could not connect within {self.timeouts.connect:g} s") from None
        except httpx.TimeoutException:
            raise DeliveryError(
                f"no answer within {self.timeouts.total:g} s", reached=True
            ) from None
        except httpx.ConnectError as error:
            raise DeliveryError(f"could not connect: {error}") from None
        except httpx.HTTPError as error:
            # Reset or broken off after connecting: the body may have arrived.
            raise DeliveryError(f"the connection failed: {error}", reached=True) from None
        try:
            status = self.last_status = response.status_code
            async with asyncio.timeout_at(deadline):
                await _drain(response)
        except (httpx.HTTPError, TimeoutError):
            pass  # the answer's status is what counts; the connection is not reused
        finally:
            await response.aclose()
        if 200 <= status < 300:
            return
        wait = retry_after(response.headers.get("retry-after"))
        if status == 410:
            raise EndpointGoneError("HTTP 410 Gone: the endpoint asks to stop", status=status)
        if 300 <= status < 400:
            raise DeliveryError(f"HTTP {status}: redirects are not followed", status=status)
        raise DeliveryError(f"HTTP {status}", status=status, retry_after=wait)
