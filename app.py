"""Composition root: ``create_app(settings) -> Starlette``. Wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Mount, Route

from hub import heap, ops, provenance
from hub.console import console_app
from hub.db import Database, make_engine
from hub.disclosures import DisclosureWriter
from hub.logs import RequestLogMiddleware, configure_logging
from hub.metrics import metrics_middleware
from hub.migrate import ensure_current
from hub.oauth import routes as oauth_routes
from hub.oauth.bearer import BearerTokenBackend, on_auth_error
from hub.oauth.directory import ClientDirectory
from hub.oauth.keys import load_keyring
from hub.oauth.ratelimit import token_rate_limiter
from hub.outage import OutageMiddleware
from hub.runtime import Runtime
from hub.settings import Settings, load_settings
from hub.vault import activation_delay, ensure_data_key
from hub.workers import ServerWorkers
from schema import build_schema
from schema.audit import export as audit_export
from schema.compiled import CompiledReads
from schema.connector_events import routes as connector_event_routes
from schema.http import GraphQLEndpoint

_REFRESH_STOP_SECONDS = 10.0
"""How long shutting down waits for the refresh loop to end its step before cancelling it."""


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    master_key = settings.master_key  # fail at start-up, not on the first request
    provenance.configure(settings.source_precedence)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # SQLite is the embedded default: keep it current automatically. A shared
        # PostgreSQL is migrated on purpose, by `hub migrate`, never by a replica starting.
        await ensure_current(settings.database_url, auto_upgrade=settings.is_sqlite)
        database = Database(make_engine(settings.database_url, pool_size=settings.db_pool_size))
        try:
            async with database.transaction() as session:
                # Sensitive fields need the data keys before any request reads them.
                await ensure_data_key(
                    session,
                    master_key,
                    activation_delay=activation_delay(settings.key_refresh_interval),
                )
                keyring = await load_keyring(
                    session, master_key, max_token_lifetime=settings.access_token_ttl
                )
            runtime = Runtime(
                settings=settings,
                database=database,
                keyring=keyring,
                clients=ClientDirectory(database, settings.client_cache_ttl),
                rate_limiter=token_rate_limiter(settings),
            )
            await runtime.revocations.refresh(database)
            await runtime.reload_policy()
            app.state.runtime = runtime
            # Partner reads are recorded in batches, off the request path (docs/audit.md).
            disclosure_writer = DisclosureWriter(
                database,
                interval=settings.audit_flush_interval,
                batch_size=settings.audit_batch_size,
            )
            app.state.disclosures = disclosure_writer
            disclosure_writer.start()
            # Revocations and key rotations made by other replicas (or the CLI) arrive here.
            stop_refreshing = asyncio.Event()
            refresher = asyncio.create_task(runtime.refresh_forever(stop_refreshing))
            # Connector runs admins start; with HUB_SYNC_WORKER the scheduler and delivery.
            workers = ServerWorkers(settings, database)
            app.state.workers = workers
            workers.start()
            if settings.gc_tuning:
                heap.settle()  # start-up is over: what it built stays (hub.heap)
            try:
                yield
            finally:
                await workers.stop()
                # Asked to stop between two steps (hub.runtime.Runtime.refresh_forever), so
                # no prune is cut off inside its transaction; cancelled only if a step hangs.
                stop_refreshing.set()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(refresher, _REFRESH_STOP_SECONDS)
                await disclosure_writer.stop()  # writes what is still pending
                await runtime.rate_limiter.close()
        finally:
            await database.dispose()

    graphql = GraphQLEndpoint(build_schema(settings), CompiledReads.from_settings(settings))
    return Starlette(
        routes=[
            *ops.routes,
            *oauth_routes.routes,
            # Every method reaches the endpoint, which answers 405 for others in JSON.
            Route("/graphql", graphql),
            *audit_export.routes,
            *connector_event_routes,
            Mount("/console", app=console_app(graphql)),
        ],
        middleware=[
            # Outermost: times everything and answers GET /metrics before authentication.
            *metrics_middleware(settings),
            Middleware(RequestLogMiddleware),
            # Inside the request log (which then records the outcome), outside
            # authentication (which reads the database too).
            Middleware(OutageMiddleware),
            Middleware(
                AuthenticationMiddleware, backend=BearerTokenBackend(), on_error=on_auth_error
            ),
        ],
        lifespan=lifespan,
    )
