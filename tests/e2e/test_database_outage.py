"""A database outage under load, against a real server: the hub answers 503 JSON with
``Retry-After`` while PostgreSQL is down, 200 again once it is back, without a restart, and
logs one JSON line per failure and no traceback.

The PostgreSQL cluster is the test's own (:mod:`tests.pgcluster`), so stopping it touches
no other test.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.server import HubServer, basic_auth, hub_env, start_server, stop
from tests.pgcluster import Cluster

pytestmark = pytest.mark.e2e

WORKERS = 6
CLIENT_CACHE_TTL = 2
QUERY = "{ customers(first: 5) { totalCount edges { node { id name email } } } }"


@dataclass
class Outcome:
    started: float
    ended: float
    kind: str  # "graphql" or "token"
    status: int | None  # None: no HTTP answer at all
    body: Any
    retry_after: str | None
    content_type: str


@pytest.fixture
async def outage_server() -> AsyncIterator[tuple[HubServer, Cluster]]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="hub-outage-")))
    server: HubServer | None = None
    try:
        cluster.init()
        cluster.start()
        admin = create_async_engine(cluster.url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text('CREATE DATABASE "hub"'))
        await admin.dispose()
        url = make_url(cluster.url).set(database="hub").render_as_string(hide_password=False)
        workdir = Path(tempfile.mkdtemp(prefix="hub-outage-work-"))
        env = hub_env(
            HUB_DATABASE_URL=url,
            # The load below is far over the default token limits; this test is not
            # about them, and a 429 would hide what it is about.
            HUB_TOKEN_RATE_PER_CLIENT="1000000",
            HUB_TOKEN_RATE_PER_ADDRESS="1000000",
            HUB_CLIENT_CACHE_TTL=str(CLIENT_CACHE_TTL),
        )
        server = await start_server(workdir, "postgresql", env)
        yield server, cluster
    finally:
        if server is not None:
            await stop(server.process)
        cluster.remove()


async def _load(
    server: HubServer, token: str, done: asyncio.Event, outcomes: list[Outcome], worker: int
) -> None:
    row = server.credential("distributor")
    basic = basic_auth(row["client_id"], row["client_secret"])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        turn = worker
        while not done.is_set():
            turn += 1
            kind = "token" if turn % 3 == 0 else "graphql"
            started = time.monotonic()
            try:
                if kind == "token":
                    response = await http.post(
                        "/oauth/token",
                        data={"grant_type": "client_credentials"},
                        headers={"Authorization": basic},
                    )
                else:
                    response = await http.post(
                        "/graphql",
                        json={"query": QUERY},
                        headers={"Authorization": f"Bearer {token}"},
                    )
            except httpx.TransportError as error:
                outcomes.append(
                    Outcome(started, time.monotonic(), kind, None, repr(error), None, "")
                )
                continue
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            outcomes.append(
                Outcome(
                    started,
                    time.monotonic(),
                    kind,
                    response.status_code,
                    body,
                    response.headers.get("retry-after"),
                    response.headers.get("content-type", ""),
                )
            )


def _check_unavailable(outcome: Outcome) -> None:
    assert outcome.status == 503, outcome
    assert outcome.content_type.startswith("application/json"), outcome
    assert outcome.retry_after is not None and outcome.retry_after.isdigit(), outcome
    if outcome.kind == "token":
        assert outcome.body["error"] == "temporarily_unavailable", outcome
    else:
        assert [e["extensions"]["code"] for e in outcome.body["errors"]] == ["UNAVAILABLE"]
        assert "data" not in outcome.body


async def test_a_database_outage_answers_503_and_recovers_without_a_restart(
    outage_server: tuple[HubServer, Cluster],
) -> None:
    server, cluster = outage_server
    token = await server.token("distributor")
    pid = server.process.pid
    done = asyncio.Event()
    outcomes: list[Outcome] = []
    workers = [asyncio.create_task(_load(server, token, done, outcomes, n)) for n in range(WORKERS)]
    try:
        await asyncio.sleep(2)
        stop_began = time.monotonic()
        await asyncio.to_thread(cluster.stop)
        stop_ended = time.monotonic()
        # Past HUB_CLIENT_CACHE_TTL, bearer and client authentication read the database
        # again, so the outage reaches authentication as well as the resolvers.
        await asyncio.sleep(CLIENT_CACHE_TTL + 5)
        start_began = time.monotonic()
        await asyncio.to_thread(cluster.start)
        start_ended = time.monotonic()
        # Recovered: keep the load on until a run of two seconds brings only 200s.
        deadline = start_ended + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            recent = [o for o in outcomes if o.started > time.monotonic() - 2]
            if recent and all(o.status == 200 for o in recent):
                break
        recovered_at = time.monotonic()
    finally:
        done.set()
        await asyncio.gather(*workers)

    # Nothing but 200 or 503: no 500, no dropped connection, at any time.
    assert all(o.status in (200, 503) for o in outcomes), [
        o for o in outcomes if o.status not in (200, 503)
    ][:5]
    before = [o for o in outcomes if o.ended < stop_began]
    down = [o for o in outcomes if o.started > stop_ended and o.ended < start_began]
    # Until its cached client expires, the token endpoint may still issue tokens (they need
    # no database); every query needs it from the first moment.
    cached = stop_ended + CLIENT_CACHE_TTL + 0.5
    down = [o for o in down if o.kind == "graphql" or o.started > cached]
    after = [o for o in outcomes if o.started > recovered_at - 2]
    assert before and all(o.status == 200 for o in before), before[:3]
    # While it is down: only 503 JSON with Retry-After, from GraphQL and the token endpoint.
    assert len(down) >= 20, len(down)
    for outcome in down:
        _check_unavailable(outcome)
    assert {o.kind for o in down} == {"graphql", "token"}
    for outcome in (o for o in outcomes if o.status == 503):
        _check_unavailable(outcome)
    # Back: 200s again from the same process.
    assert after and all(o.status == 200 for o in after), [o for o in after if o.status != 200]
    assert recovered_at - start_ended < 30, "the hub did not recover within 30 s"
    assert server.process.returncode is None and server.process.pid == pid

    # The log: JSON lines only, no traceback; the failures say what was unavailable.
    lines = [line for line in server.stderr_text().splitlines() if line.strip()]
    assert not any("Traceback" in line for line in lines), server.stderr_text()[-5000:]
    entries = [json.loads(line) for line in lines]
    failed = [e for e in entries if e.get("message") == "request" and e.get("status") == 503]
    assert len(failed) == sum(1 for o in outcomes if o.status == 503)
    assert all(e["unavailable"] == "database" for e in failed), failed[:3]
    assert any(e.get("message", "").endswith("recovered") for e in entries), entries[-10:]
