"""The ceiling: a bare Starlette app answering ``POST /graphql`` with a fixed body.

It serves, verbatim, a response body captured once from the hub (the path is in
``BENCH_CEILING_BODY``), so that the HTTP stack, JSON size and client are the same as for
the hub and only the hub's own work (auth, GraphQL, SQL, serialisation) is missing.

    BENCH_CEILING_BODY=body.json uvicorn bench.ceiling:create_app --factory --port 8001
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY_ENV = "BENCH_CEILING_BODY"


def create_app() -> Starlette:
    path = os.environ.get(BODY_ENV)
    if not path:
        raise RuntimeError(f"{BODY_ENV} must name the file holding the response body")
    body = Path(path).read_bytes()

    async def graphql(request: Request) -> Response:
        # Read the request like the hub does, then answer without looking at it.
        await request.body()
        return Response(body, media_type="application/json")

    async def readyz(_request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/readyz", readyz),
        ]
    )
