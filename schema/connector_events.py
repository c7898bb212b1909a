"""``POST /connectors/{name}/events``: inbound webhooks (Standard Webhooks) for a
``webhook`` connector (docs/sync.md, "Webhook connectors").

The signature is the authentication: no bearer token. Answers are JSON
``{"error": code, "message": ...}`` on failure and never name the hub's inside:

- 200 ``{"status": "stored", ...counts}``: the message's records were stored (a record
  the hub could not take is a dead letter, at position ``webhook <id>``: resending the
  same message would not help);
- 200 ``{"status": "duplicate"}``: this ``webhook-id`` was stored before (a retry);
- 400: a missing header, a bad signature, a timestamp outside the tolerance, a body that
  is not JSON or holds no records;
- 404: no enabled ``webhook`` connector of that name (one answer for unknown, disabled
  and other kinds);
- 413: a body larger than the connector's ``max_bytes``;
- 429 with ``Retry-After``: too many messages, or refused messages, from this address
  (:mod:`hub.sync.inbound_limits`);
- 503 with ``Retry-After``: the database could not store it now.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.oauth.client_auth import source_address
from hub.runtime import Runtime
from hub.sync.errors import UnknownConnectorError
from hub.sync.inbound import (
    MAX_BYTES,
    NOT_FOUND,
    StoreBusyError,
    WebhookRejectedError,
    inbound_connector,
    receive,
)
from hub.sync.inbound_limits import WebhookRateLimitedError

REFUSED = frozenset({400, 404, 413})
"""Answers counted against the address's budget of refused messages."""


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _too_large(limit: int) -> Response:
    return _error(413, "body_too_large", f"the body is larger than {limit} bytes")


async def _body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it passes ``limit`` bytes (the rest is not read)."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


async def receive_events(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    address = source_address(request)
    try:
        await runtime.webhook_limiter.check(address)  # before any lookup
    except WebhookRateLimitedError as over:
        return _error(429, "rate_limited", str(over), **{"Retry-After": str(over.retry_after)})
    response = await _receive(request, runtime)
    if response.status_code in REFUSED:
        await runtime.webhook_limiter.refused(address)
    return response


async def _receive(request: Request, runtime: Runtime) -> Response:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        return _too_large(MAX_BYTES)  # before any work: no connector takes that much
    try:
        inbound = await inbound_connector(runtime.database, request.path_params["name"])
    except UnknownConnectorError:
        return _error(404, "not_found", NOT_FOUND)
    if length.isdigit() and int(length) > inbound.max_bytes:
        return _too_large(inbound.max_bytes)
    try:
        body = await _body(request, inbound.max_bytes)
    except ClientDisconnect:
        return _error(400, "incomplete_body", "the request ended before its body")
    if body is None:
        return _too_large(inbound.max_bytes)
    try:
        event = inbound.source.receive(body, request.headers)
    except WebhookRejectedError as rejected:
        return _error(400, rejected.code, str(rejected))
    try:
        receipt = await receive(runtime.database, inbound, event)
    except StoreBusyError as busy:
        return _error(503, "unavailable", str(busy), **{"Retry-After": "5"})
    if receipt.duplicate:
        return JSONResponse({"status": "duplicate", "webhook_id": event.id})
    return JSONResponse(
        {"status": "stored", "webhook_id": event.id, **receipt.counts.as_dict()},
    )


routes = [Route("/connectors/{name}/events", receive_events, methods=["POST"])]
