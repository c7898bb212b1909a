"""Prometheus metrics: the app's registry, what the hub records, and ``GET /metrics``.

Each app owns a :class:`HubMetrics` (its own ``CollectorRegistry``: several apps live in
one test process, and nothing is shared through prometheus-client's global registry).
:class:`MetricsMiddleware` (pure ASGI, outermost) times every HTTP request, answers the
scrape itself and puts the app's :class:`HubMetrics` on the ASGI scope, where the token
endpoint (:func:`record_token`) and the GraphQL layer (:func:`note_operation`,
:func:`note_outcome`) find it; without the middleware (``HUB_METRICS=false``) those calls
do nothing.

Labels are bounded and carry no customer data: routes are Starlette route templates (an
unmatched path is ``(unmatched)``, never the raw path), methods and OAuth errors come from
fixed sets, GraphQL error codes are the hub's own; client ids, organization slugs and
request values are never labels. GraphQL operation names are chosen by clients: a name is
a label only if it is a plain identifier (``^[A-Za-z_][A-Za-z0-9_]{0,63}$``) and among the
first :data:`MAX_OPERATION_NAMES` distinct names this process saw; any other is
``(other)``. What a scrape reads from the running app (policy version, database pool,
audit writer backlog) is read at scrape time by :class:`_StateCollector`.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from sqlalchemy.pool import QueuePool
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match

from hub.access import access
from hub.settings import Settings

SCOPE_KEY = "hub.metrics"
"""Where :class:`MetricsMiddleware` puts the app's :class:`HubMetrics` on the ASGI scope."""
_OPERATION_KEY = "hub.metrics.operation"

MAX_OPERATION_NAMES = 100
"""Distinct GraphQL operation names kept as label values per process; later ones are
``(other)``."""
MAX_OUTCOMES = 64
"""Distinct GraphQL error codes kept as outcome label values per process."""
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})
_GRANT_TYPES = frozenset({"client_credentials", "authorization_code", "refresh_token"})
# RFC 6749 §5.2, RFC 8707 §2 and RFC 8628 §3.5 (slow_down): what the token endpoint answers.
_TOKEN_OUTCOMES = frozenset(
    {
        "issued",
        "rate_limited",
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
    }
)
ANONYMOUS = "(anonymous)"
OTHER = "(other)"
UNMATCHED = "(unmatched)"
NOT_PARSED = "(none)"

_M = TypeVar("_M", bound=MetricWrapperBase)


@dataclass
class _Operation:
    """The GraphQL operation of one request, noted on its scope until the response ends."""

    type: str = "unknown"
    name: str = NOT_PARSED
    outcome: str | None = None
    path: str | None = None


class HubMetrics:
    """The metrics of one app: its registry and the collectors the hub records into."""

    def __init__(self, *, max_operation_names: int = MAX_OPERATION_NAMES) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.max_operation_names = max_operation_names
        self._operation_names: set[str] = set()
        self._outcomes: set[str] = set()
        # Children by metric and label values. prometheus-client's labels() checks the
        # values and takes a lock on every call (a few microseconds, five times a
        # request); the labels are bounded, so this is as bounded as the registry.
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}
        self.state_collector = _StateCollector()
        registry = self.registry
        self.http_requests = Counter(
            "hub_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "hub_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            registry=registry,
        )
        self.graphql_operations = Counter(
            "hub_graphql_operations",
            "GraphQL operations, by type, operation name (bounded) and outcome "
            "(ok or the first error's code).",
            ["type", "operation", "outcome"],
            registry=registry,
        )
        self.graphql_duration = Histogram(
            "hub_graphql_operation_duration_seconds",
            "Time to answer a GraphQL request, by operation type.",
            ["type"],
            registry=registry,
        )
        self.read_paths = Counter(
            "hub_graphql_read_paths",
            "GraphQL requests by the path that answered them: compiled (a plan) or "
            "resolvers (field by field; mutations, admin fields, errors).",
            ["path"],
            registry=registry,
        )
        self.token_requests = Counter(
            "hub_oauth_token_requests",
            "Token endpoint answers, by grant type and outcome (issued or the OAuth error).",
            ["grant_type", "outcome"],
            registry=registry,
        )
        registry.register(self.state_collector)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    def child(self, metric: _M, *values: str) -> _M:
        """``metric.labels(*values)``, looked up in a dict after the first time."""
        key = (metric, values)
        found: _M | None = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def operation_label(self, name: str | None) -> str:
        """The label value for a client-chosen operation name (see the module docstring)."""
        if name is None:
            return ANONYMOUS
        if name in self._operation_names:
            return name
        if (
            len(self._operation_names) < self.max_operation_names
            and _OPERATION_NAME.fullmatch(name) is not None
        ):
            self._operation_names.add(name)
            return name
        return OTHER

    def outcome_label(self, code: object) -> str:
        """The label value for an error code: the hub's own codes are a fixed set, but a
        malformed one or more than :data:`MAX_OUTCOMES` distinct ones become ``(other)``."""
        if not isinstance(code, str) or _ERROR_CODE.fullmatch(code) is None:
            return OTHER
        if code not in self._outcomes:
            if len(self._outcomes) >= MAX_OUTCOMES:
                return OTHER
            self._outcomes.add(code)
        return code

    def exposition(self, state: State | None) -> bytes:
        """The text exposition of every metric, reading ``state`` (the app's) now."""
        self.state_collector.state = state
        try:
            return generate_latest(self.registry)
        finally:
            self.state_collector.state = None


class _StateCollector:
    """Reads the running app at scrape time: the policy version in force, the database
    pool's status and the audit writer's backlog (nothing is recorded on the hot path)."""

    def __init__(self) -> None:
        self.state: State | None = None

    def describe(self) -> Iterable[Metric]:
        return ()  # its families depend on what the app runs; not checked at registration

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "hub_policy_version",
            "The sharing-policy version in force in this process (0: none, all denied).",
            value=access.rules.version,
        )
        state = self.state
        runtime = getattr(state, "runtime", None)
        database = getattr(runtime, "database", None)
        pool = getattr(getattr(database, "engine", None), "pool", None)
        if isinstance(pool, QueuePool):
            for name, help_text, value in (
                ("size", "Connections the pool keeps.", pool.size()),
                ("checked_out", "Connections in use now.", pool.checkedout()),
                ("idle", "Open connections waiting in the pool.", pool.checkedin()),
                # QueuePool counts overflow from -size; only connections past size matter.
                ("overflow", "Connections open beyond the pool size.", max(0, pool.overflow())),
            ):
                yield GaugeMetricFamily(f"hub_db_pool_{name}", help_text, value=value)
        writer = getattr(state, "disclosures", None)
        pending = getattr(writer, "pending", None)
        if isinstance(pending, int):
            yield GaugeMetricFamily(
                "hub_audit_reads_pending",
                "Partner reads waiting for the background audit writer.",
                value=pending,
            )
            yield CounterMetricFamily(
                "hub_audit_reads_dropped",
                "Partner reads dropped unrecorded because the backlog was full.",
                value=getattr(writer, "dropped", 0),
            )


def _of(scope: Mapping[str, Any]) -> HubMetrics | None:
    metrics = scope.get(SCOPE_KEY)
    return metrics if isinstance(metrics, HubMetrics) else None


def record_token(scope: Mapping[str, Any], grant_type: str | None, outcome: str) -> None:
    """Count one token endpoint answer (``issued``, ``rate_limited`` or an OAuth error)."""
    metrics = _of(scope)
    if metrics is None:
        return
    grant = "none" if not grant_type else grant_type if grant_type in _GRANT_TYPES else OTHER
    label = outcome if outcome in _TOKEN_OUTCOMES else OTHER
    metrics.child(metrics.token_requests, grant, label).inc()


def note_operation(
    scope: MutableMapping[str, Any], operation_type: str | None, name: str | None
) -> None:
    """Note the GraphQL operation a request runs (type ``None``: it could not be told)."""
    metrics = _of(scope)
    if metrics is None:
        return
    operation = scope.setdefault(_OPERATION_KEY, _Operation())
    if operation_type in _OPERATION_TYPES:
        operation.type = operation_type
        operation.name = metrics.operation_label(name)


def note_path(scope: MutableMapping[str, Any], path: str) -> None:
    """Note which read path answered a GraphQL request (``compiled`` or ``resolvers``)."""
    metrics = _of(scope)
    if metrics is None:
        return
    scope.setdefault(_OPERATION_KEY, _Operation()).path = path


def note_outcome(
    scope: MutableMapping[str, Any], errors: Sequence[Mapping[str, Any]] | None
) -> None:
    """Note how a GraphQL request ended: ``ok``, or the code of its first formatted error."""
    metrics = _of(scope)
    if metrics is None:
        return
    operation = scope.setdefault(_OPERATION_KEY, _Operation())
    if not errors:
        operation.outcome = "ok"
        return
    operation.outcome = metrics.outcome_label((errors[0].get("extensions") or {}).get("code"))


class MetricsMiddleware:
    """Pure ASGI, outermost: records every HTTP request and answers ``GET /metrics``.

    The scrape is answered here, ahead of bearer authentication (``HUB_METRICS_TOKEN``
    is not an OAuth token) and of the request log (a scrape every few seconds is noise),
    and without touching the database, so it keeps answering during an outage.

    Example (``app.py``)::

        Starlette(routes=..., middleware=[*metrics_middleware(settings), ...])
    """

    def __init__(self, app: Any, metrics: HubMetrics, token: str | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.token = f"Bearer {token}".encode() if token else None
        self.routes: list[BaseRoute] | None = None  # the app's, read on first use

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        scope[SCOPE_KEY] = self.metrics
        try:
            if scope["path"] == "/metrics":
                await self._scrape(scope, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Any, status: int, seconds: float) -> None:
        metrics = self.metrics
        route = self._route(scope)
        method = scope["method"] if scope["method"] in _METHODS else OTHER
        metrics.child(metrics.http_requests, route, method, str(status)).inc()
        metrics.child(metrics.http_duration, route).observe(seconds)
        operation = scope.get(_OPERATION_KEY)
        if isinstance(operation, _Operation):
            outcome = operation.outcome or ("ok" if status < 400 else f"HTTP_{status}")
            metrics.child(metrics.graphql_operations, operation.type, operation.name, outcome).inc()
            metrics.child(metrics.graphql_duration, operation.type).observe(seconds)
            if operation.path is not None:
                metrics.child(metrics.read_paths, operation.path).inc()

    def _route(self, scope: Any) -> str:
        """The template of the route a request was for: the one the router matched or,
        for a request refused before routing (authentication, an outage), the one it
        would have matched; never the raw path."""
        matched = scope.get("route")
        if matched is None:
            if scope["path"] == "/metrics":
                return "/metrics"
            if self.routes is None:
                self.routes = list(getattr(getattr(scope.get("app"), "router", None), "routes", ()))
            matched = next((r for r in self.routes if r.matches(scope)[0] != Match.NONE), None)
        path = getattr(matched, "path", None)
        return path if isinstance(path, str) else UNMATCHED

    async def _scrape(self, scope: Any, send: Any) -> None:
        if scope["method"] != "GET":
            await _respond(send, 405, b"use GET\n", [(b"allow", b"GET")])
            return
        if self.token is not None:
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                challenge = (b"www-authenticate", b'Bearer realm="metrics"')
                await _respond(send, 401, b"a valid HUB_METRICS_TOKEN is required\n", [challenge])
                return
        app = scope.get("app")
        body = self.metrics.exposition(getattr(app, "state", None))
        await _respond(send, 200, body, [(b"content-type", CONTENT_TYPE_LATEST.encode())])


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if not any(name == b"content-type" for name, _ in headers):
        headers = [*headers, (b"content-type", b"text/plain; charset=utf-8")]
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def metrics_middleware(settings: Settings) -> list[Middleware]:
    """The metrics middleware for ``settings`` (none when ``HUB_METRICS`` is off), with a
    fresh :class:`HubMetrics` for this app."""
    if not settings.metrics:
        return []
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    return [Middleware(MetricsMiddleware, metrics=HubMetrics(), token=token)]
