"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.outage import RETRY_AFTER_SECONDS, describe, log_fields
from hub.runtime import Runtime


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        async with runtime.database.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 — any failure means "not ready"
        log_fields(request.scope).update(unavailable="database", error=describe(error))
        return JSONResponse(
            {"status": "unavailable", "database": type(error).__name__},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return JSONResponse({"status": "ready", "database": "ok"})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
