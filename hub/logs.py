"""Structured logs: one JSON object per line, each carrying the request id."""

from __future__ import annotations

import contextvars
import json
import logging
import secrets
import sys
import time
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

log = logging.getLogger("hub.http")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            # One line per request: orjson writes it at a fraction of json's cost.
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # what orjson refuses (an integer beyond 64 bits, say)
            return json.dumps(entry, default=str)


def configure_logging(level: str, *, as_json: bool) -> None:
    handler = logging.StreamHandler()
    if as_json:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("hub")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The server's own lines (start-up, protocol errors, an exception that escaped the app)
    # in the same format, so a log shipper parses every line of the process.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_log = logging.getLogger(name)
        server_log.handlers[:] = [handler] if name == "uvicorn" else []
        server_log.propagate = name != "uvicorn"


def _valid_request_id(value: str | None) -> str | None:
    if value and len(value) <= 128 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return None


class RequestLogMiddleware:
    """Pure ASGI: assigns ``X-Request-ID`` (or keeps a sane incoming one) and logs the request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = b""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                incoming = value  # the last one, as a dict of the headers would keep
        rid = _valid_request_id(incoming.decode("latin-1")) or secrets.token_hex(16)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            level = logging.WARNING if status >= 500 else logging.INFO
            if log.isEnabledFor(level):  # the fields are built only for a line written
                user = scope.get("user")
                client = getattr(user, "display_name", None) if user is not None else None
                fields = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client_id": client or None,
                    # What went wrong, set by the layers below (hub.outage): one line per
                    # request.
                    **scope.get("hub.log", {}),
                }
                log.log(level, "request", extra={"fields": fields})
            request_id.reset(token)


def announce(message: str, *, as_json: bool, **fields: Any) -> None:
    """Print one line to stderr before logging is set up (``hub serve`` saying where it
    listens): a JSON log line when logs are JSON, so every line of the process parses."""
    if as_json:
        record = logging.LogRecord("hub.serve", logging.INFO, __file__, 0, message, None, None)
        record.fields = fields
        line = JSONFormatter().format(record)
    else:
        line = message
    print(line, file=sys.stderr, flush=True)
