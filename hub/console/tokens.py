"""The console as an OAuth client of its own hub: token requests go to the hub's real
``/oauth/token`` endpoint (through the whole middleware stack, in process, so nothing
depends on how the hub is reachable from itself), as a public client with PKCE.

Refresh tokens rotate on every use (RFC 9700 §4.14.2) and a reused one revokes the whole
session, so concurrent requests carrying the same expiring session must not each
refresh it: refreshes are serialised per process, and one done in the last
:data:`REUSE_WINDOW` seconds is handed to a request that still carries the old token.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
from starlette.requests import Request

REUSE_WINDOW = 60.0
_lock = asyncio.Lock()
_recent: dict[str, tuple[float, dict[str, Any]]] = {}


class TokenRequestError(Exception):
    """The token endpoint refused (its ``error`` and ``error_description``)."""


async def token_request(request: Request, form: dict[str, str]) -> dict[str, Any]:
    """POST ``form`` to the hub's token endpoint as this browser's address would."""
    client = request.client
    transport = httpx.ASGITransport(
        app=request.app, client=(client.host if client else "127.0.0.1", 0)
    )
    async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as http:
        response = await http.post("/oauth/token", data=form)
    body: Any = response.json()
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error_description") if isinstance(body, dict) else None
        raise TokenRequestError(str(error or f"token endpoint answered {response.status_code}"))
    return body


async def refresh(request: Request, client_id: str, refresh_token: str) -> dict[str, Any]:
    """New tokens for ``refresh_token``, at most one rotation per token per process."""
    key = hashlib.sha256(refresh_token.encode()).hexdigest()
    async with _lock:
        now = time.monotonic()
        for stale in [k for k, (at, _) in _recent.items() if now - at > REUSE_WINDOW]:
            del _recent[stale]
        if key in _recent:
            return _recent[key][1]
        tokens = await token_request(
            request,
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        )
        _recent[key] = (now, tokens)
        return tokens
