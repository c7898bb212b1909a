"""Outages of what the hub depends on (the database, Redis): recognised, answered 503.

A database that goes away, restarts or is overloaded must not turn into HTTP 500 and a
traceback per request. :func:`unavailable_dependency` recognises the errors that mean "a
service the hub needs cannot be reached right now"; :class:`OutageMiddleware` (pure ASGI,
outside authentication, so bearer and client authentication are covered too) answers them
503 with ``Retry-After`` and a JSON body, and any other escaping exception 500 with a JSON
body, each with one structured log line and no traceback for the outage. The engine hands
out only live pooled PostgreSQL connections (:func:`hub.db.make_engine`: one the server
closed is replaced, one idle for a second is pinged), so the hub recovers by itself when
the database returns. Background loops report outages through
:class:`OutageLog`: a line when one starts, a reminder now and then, a line when it ends.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import asyncpg
import redis.exceptions
from sqlalchemy import exc as sa_exc

log = logging.getLogger("hub.outage")

# Seconds a client is asked to wait before retrying: about one pool reconnect attempt,
# short enough that clients come back soon after a database restart.
RETRY_AFTER_SECONDS = 5

# asyncpg's errors that mean the connection, not the statement, failed.
_ASYNCPG_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,  # includes CannotConnectNow (starting up)
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    # Refused at connect time, every connection alike until an operator acts: the
    # database dropped or renamed under the running hub (3D000), its role gone or its
    # password changed (28000, 28P01). Answered 503 like a server that is down, not 500
    # and a traceback per request (the hub runs no statement that raises them).
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
)
# SQLite's OperationalError also means "no such table"; only these mean the file or the
# lock cannot be had right now.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")
_DRIVER_MODULES = {"asyncpg": "database", "sqlalchemy": "database", "aiosqlite": "database"}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_in(error: BaseException) -> str | None:
    """Which dependency's client code raised a plain OSError (a refused connect, an
    unknown host), judged by the modules its traceback passes through."""
    traceback = error.__traceback__
    found: str | None = None
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        top = module.partition(".")[0]
        if top == "redis":
            return "redis"
        found = _DRIVER_MODULES.get(top, found)
        traceback = traceback.tb_next
    return found


def unavailable_dependency(error: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``error`` (or an error it was raised from) means
    that service cannot be reached now; ``None`` for any other error."""
    for current in _chain(error):
        if isinstance(current, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return "redis"
        if isinstance(current, sa_exc.TimeoutError):  # no pooled connection came free
            return "database"
        if isinstance(current, sa_exc.DBAPIError):
            if current.connection_invalidated:
                return "database"
            message = str(current.orig).lower()
            if isinstance(current, sa_exc.OperationalError) and any(
                part in message for part in _SQLITE_UNAVAILABLE
            ):
                return "database"
        if isinstance(current, _ASYNCPG_CONNECTION_ERRORS):
            return "database"
        if isinstance(current, OSError | TimeoutError):
            dependency = _raised_in(current)
            if dependency is not None:
                return dependency
    return None


def describe(error: BaseException) -> str:
    """One line for the log: the error's type and the first line of its message."""
    text = str(error).strip().splitlines()
    first = text[0][:300] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


_NAMES = {"database": "the database", "redis": "the rate-limit store (Redis)"}


def _is_oauth(path: str) -> bool:
    return path.startswith(("/oauth/", "/.well-known/"))


def unavailable_body(path: str, dependency: str) -> dict[str, Any]:
    """The 503 body: RFC 6749-shaped on the OAuth endpoints, GraphQL-shaped elsewhere."""
    message = (
        f"the service is temporarily unavailable: {_NAMES.get(dependency, dependency)} "
        f"cannot be reached; retry after {RETRY_AFTER_SECONDS} seconds"
    )
    if _is_oauth(path):
        return {"error": "temporarily_unavailable", "error_description": message}
    return {"errors": [{"message": message, "extensions": {"code": "UNAVAILABLE"}}]}


def internal_error_body(path: str) -> dict[str, Any]:
    if _is_oauth(path):
        return {"error": "server_error", "error_description": "internal server error"}
    return {
        "errors": [
            {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ]
    }


def log_fields(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """Extra fields for the request's one log line (read by :mod:`hub.logs`)."""
    fields: dict[str, Any] = scope.setdefault("hub.log", {})
    return fields


class OutageMiddleware:
    """Pure ASGI: a dependency outage raised anywhere below becomes 503 + ``Retry-After``
    with a JSON body; any other escaping exception a JSON 500. Either way the request's
    log line says what happened; only an unexpected error carries a traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch_start(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch_start)
        except Exception as error:  # the edge: nothing escapes as a traceback
            dependency = unavailable_dependency(error)
            fields = log_fields(scope)
            if dependency is not None:
                fields.update(unavailable=dependency, error=describe(error))
                status, body = 503, unavailable_body(scope["path"], dependency)
                headers = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
            else:
                fields.update(error=describe(error))
                log.error("unexpected error", exc_info=error)
                status, body, headers = 500, internal_error_body(scope["path"]), []
            if started:  # too late for another answer: the connection is simply closed
                return
            payload = json.dumps(body).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                        (b"cache-control", b"no-store"),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})


class OutageLog:
    """Logs a background task's outage once when it starts, every ``remind`` seconds while
    it lasts, and once when it ends, instead of a traceback on every retry."""

    def __init__(self, task: str, *, remind: float = 60.0) -> None:
        self.task = task
        self.remind = remind
        self._since: float | None = None
        self._last: float = 0.0
        self._failures = 0

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        dependency = unavailable_dependency(error)
        self._failures += 1
        fields = {"task": self.task, "error": describe(error), "failures": self._failures}
        if dependency is None:
            # Not an outage: something to fix, so its traceback is worth the space.
            log.error("%s failed; retrying", self.task, exc_info=error, extra={"fields": fields})
        elif self._since is None or now - self._last >= self.remind:
            fields["unavailable"] = dependency
            if self._since is not None:
                fields["down_seconds"] = round(now - self._since, 1)
            log.warning(
                "%s: %s unavailable; retrying", self.task, dependency, extra={"fields": fields}
            )
            self._last = now
        if self._since is None:
            self._since = now

    def succeeded(self) -> None:
        if self._since is None:
            return
        down = round(time.monotonic() - self._since, 1)
        log.warning(
            "%s recovered",
            self.task,
            extra={"fields": {"task": self.task, "down_seconds": down, "failures": self._failures}},
        )
        self._since = None
        self._failures = 0
