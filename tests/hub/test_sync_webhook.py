"""Inbound webhooks end to end: requests signed by the ``standardwebhooks`` library,
posted to ``POST /connectors/{name}/events`` of the app, stored through the sync runtime
(both backends)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlmodel import col
from standardwebhooks import Webhook

from hub.db import Database
from hub.models import Feedback
from hub.models.sync import SyncRun
from hub.models.sync_webhook import SyncWebhookEvent
from hub.sync import inbound, runs
from hub.sync.config import parse_spec, save_connector, specs_from_yaml
from tests.hub.sync_helpers import count, customers, dead_letters, feedback_count, support_org

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
MAPPING = {
    "external_id": "ticket.id",
    "customer_email": "ticket.requester",
    "text": "ticket.body",
    "kind": {"from": "ticket.type", "default": "question"},
    "channel": {"from": "ticket.via", "default": "chat"},
}


async def define(db: Database, name: str = "desk-hooks", **overrides: Any) -> None:
    definition: dict[str, Any] = {
        "name": name,
        "kind": "webhook",
        "resource": "feedback",
        "organization": "support",
        "config": {"records": "data", "max_bytes": 2048},
        "mapping": MAPPING,
        "credentials": {"secret": SECRET},
        **overrides,
    }
    async with db.transaction() as session:
        await save_connector(session, parse_spec(definition))


def ticket(n: int, email: str = "person1@example.com", body: str | None = None) -> dict[str, Any]:
    return {"id": f"T-{n}", "requester": email, "body": body or f"Ticket {n}"}


def envelope(data: Any) -> str:
    return json.dumps({"type": "ticket.updated", "timestamp": "2026-12-06T07:00:00Z", "data": data})


def signed(
    body: bytes | str, message_id: str, *, at: datetime | None = None, secret: str = SECRET
) -> dict[str, str]:
    at = at or datetime.now(UTC)
    payload = body.encode() if isinstance(body, str) else body
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, payload),
    }


async def post(
    client: httpx.AsyncClient, body: bytes | str, headers: dict[str, str], name: str = "desk-hooks"
) -> httpx.Response:
    return await client.post(f"/connectors/{name}/events", content=body, headers=headers)


async def setup(db: Database) -> None:
    await support_org(db)
    await customers(db, 3)
    await define(db)


async def test_a_signed_message_is_stored_once(db: Database, client: httpx.AsyncClient) -> None:
    await setup(db)
    body = envelope({"ticket": ticket(1)})
    first = await post(client, body, signed(body, "msg_1"))
    assert first.status_code == 200, first.text
    assert first.json() == {
        "status": "stored",
        "webhook_id": "msg_1",
        "read": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "queued": 0,
        "dead_lettered": 0,
    }
    # The sender retries (a lost answer): same id, signed again with a new timestamp.
    retry = await post(client, body, signed(body, "msg_1"))
    assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    # A replayed id with another body is still the message already stored: no write.
    other = envelope({"ticket": ticket(1, body="rewritten")})
    replay = await post(client, other, signed(other, "msg_1"))
    assert replay.json()["status"] == "duplicate"
    assert await feedback_count(db) == 1
    async with db.session() as session:
        stored = (await session.execute(select(Feedback))).scalar_one()
        runs = list((await session.execute(select(SyncRun))).scalars())
    assert stored.text == "Ticket 1"
    assert [(r.holder, r.status, r.created) for r in runs] == [("webhook msg_1", "succeeded", 1)]
    # A new message about the same ticket is a change, written under the organization's
    # policy: support may not rewrite a feedback's text, so it is a dead letter.
    changed = envelope({"ticket": ticket(1, body="Ticket 1, more detail")})
    update = await post(client, changed, signed(changed, "msg_2"))
    assert (update.json()["dead_lettered"], await feedback_count(db)) == (1, 1)
    letters = await dead_letters(db)
    assert [(d.position, d.reason) for d in letters] == [
        ("webhook msg_2", "text: the sharing policy does not let you set this field")
    ]


async def test_ids_past_their_retention_are_forgotten_the_rest_still_deduplicate(
    db: Database, client: httpx.AsyncClient
) -> None:
    await setup(db)
    for number in (1, 2):
        body = envelope({"ticket": ticket(number)})
        assert (await post(client, body, signed(body, f"msg_{number}"))).status_code == 200
    # msg_1 arrived two hours ago, kept one. (Hours, not days: the app under test prunes
    # with the default retention of days on its own tick, which may come late.)
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE sync_webhook_event SET received_at = :at WHERE webhook_id = 'msg_1'"),
            {"at": datetime.now(UTC) - timedelta(hours=2)},
        )
    async with db.transaction() as session:
        assert await inbound.prune(session, timedelta(hours=1)) == 1
    async with db.session() as session:
        kept = (await session.execute(select(col(SyncWebhookEvent.webhook_id)))).scalars().all()
    assert kept == ["msg_2"]
    body = envelope({"ticket": ticket(2)})
    retry = await post(client, body, signed(body, "msg_2"))
    assert retry.json()["status"] == "duplicate"
    async with db.transaction() as session:
        assert await inbound.prune(session, timedelta(hours=1)) == 0


async def test_the_runtime_prunes_webhook_ids(
    database_url: str, db: Database, client: httpx.AsyncClient
) -> None:
    from app import create_app
    from tests.conftest import make_settings

    await setup(db)
    body = envelope({"ticket": ticket(1)})
    assert (await post(client, body, signed(body, "msg_old"))).status_code == 200
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE sync_webhook_event SET received_at = :at"),
            {"at": datetime.now(UTC) - timedelta(hours=2)},
        )
    application = create_app(make_settings(database_url, webhook_event_retention=3600))
    async with application.router.lifespan_context(application):
        for _ in range(200):  # the first prune runs as the app starts
            if await count(db, SyncWebhookEvent) == 0:
                break
            await asyncio.sleep(0.05)
    assert await count(db, SyncWebhookEvent) == 0


async def _age_runs(db: Database, hours: float, holders: list[str] | None = None) -> None:
    """Move runs (all, or those of ``holders``) ``hours`` into the past. (The tests keep
    a retention of an hour: the app under test prunes with the defaults, days, on its own
    tick, which may come late; it must find nothing old enough.)"""
    at = datetime.now(UTC) - timedelta(hours=hours)
    async with db.transaction() as session:
        runs = (await session.execute(select(SyncRun))).scalars().all()
        for run in runs:
            if holders is None or run.holder in holders:
                run.started_at = at
                run.finished_at = at


async def _holders(db: Database) -> list[str]:
    async with db.session() as session:
        found = await session.execute(select(col(SyncRun.holder)).order_by(col(SyncRun.holder)))
        return list(found.scalars())


async def test_runs_past_their_retention_go_except_those_still_named(
    db: Database, client: httpx.AsyncClient
) -> None:
    await setup(db)
    # m1..m3 plain; m4 leaves a dead letter; m5 is recent and the connector's last.
    for number in (1, 2, 3):
        body = envelope({"ticket": ticket(number)})
        assert (await post(client, body, signed(body, f"m{number}"))).status_code == 200
    bad = envelope({"ticket": ticket(4, email="nobody")})
    assert (await post(client, bad, signed(bad, "m4"))).json()["dead_lettered"] == 1
    await _age_runs(db, 2)
    body = envelope({"ticket": ticket(5)})
    assert (await post(client, body, signed(body, "m5"))).status_code == 200
    # m1 and m2's ids forgotten; m3's still remembered (a retry must find its run).
    async with db.transaction() as session:
        await session.execute(
            text(
                "UPDATE sync_webhook_event SET received_at = :at"
                " WHERE webhook_id IN ('m1', 'm2', 'm4')"
            ),
            {"at": datetime.now(UTC) - timedelta(hours=2)},
        )
        assert await inbound.prune(session, timedelta(hours=1)) == 3
    async with db.transaction() as session:
        assert await runs.prune(session, timedelta(hours=1)) == 2
    assert await _holders(db) == ["webhook m3", "webhook m4", "webhook m5"]
    # A retry of m3 is still a duplicate; nothing more goes on a second pass.
    body = envelope({"ticket": ticket(3)})
    assert (await post(client, body, signed(body, "m3"))).json()["status"] == "duplicate"
    async with db.transaction() as session:
        assert await runs.prune(session, timedelta(hours=1)) == 0


async def test_a_connectors_last_run_and_running_runs_stay_whatever_their_age(
    db: Database, client: httpx.AsyncClient
) -> None:
    await setup(db)
    for number in (1, 2):
        body = envelope({"ticket": ticket(number)})
        assert (await post(client, body, signed(body, f"m{number}"))).status_code == 200
        await _age_runs(db, 4 - number, [f"webhook m{number}"])
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM sync_webhook_event"))
        # m1 looks killed mid-run (its status stays running until the next run).
        await session.execute(
            text("UPDATE sync_run SET status = 'running' WHERE holder = 'webhook m1'")
        )
    async with db.transaction() as session:
        assert await runs.prune(session, timedelta(hours=1)) == 0
    assert await _holders(db) == ["webhook m1", "webhook m2"]
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE sync_run SET status = 'interrupted' WHERE holder = 'webhook m1'")
        )
        assert await runs.prune(session, timedelta(hours=1)) == 1
    assert await _holders(db) == ["webhook m2"]


async def test_runs_go_a_chunk_at_a_time_oldest_first(
    db: Database, client: httpx.AsyncClient
) -> None:
    await setup(db)
    for number in (1, 2, 3, 4):
        body = envelope({"ticket": ticket(number)})
        assert (await post(client, body, signed(body, f"m{number}"))).status_code == 200
        await _age_runs(db, 6 - number, [f"webhook m{number}"])
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM sync_webhook_event"))
    async with db.transaction() as session:
        assert await runs.prune(session, timedelta(hours=1), limit=2) == 2
    assert await _holders(db) == ["webhook m3", "webhook m4"]
    async with db.transaction() as session:
        assert await runs.prune(session, timedelta(hours=1), limit=2) == 1
    assert await _holders(db) == ["webhook m4"]


async def test_the_runtime_prunes_runs_after_their_webhook_ids(
    database_url: str, db: Database, client: httpx.AsyncClient
) -> None:
    from app import create_app
    from tests.conftest import make_settings

    await setup(db)
    for number in (1, 2):
        body = envelope({"ticket": ticket(number)})
        assert (await post(client, body, signed(body, f"m{number}"))).status_code == 200
        await _age_runs(db, 3 - number, [f"webhook m{number}"])
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE sync_webhook_event SET received_at = :at"),
            {"at": datetime.now(UTC) - timedelta(hours=2)},
        )
    settings = make_settings(database_url, webhook_event_retention=3600, sync_run_retention=3600)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        for _ in range(200):  # the first prune runs as the app starts
            if await count(db, SyncRun) == 1:
                break
            await asyncio.sleep(0.05)
    assert await _holders(db) == ["webhook m2"]


def test_runs_are_kept_thirty_days_by_default(monkeypatch: Any) -> None:
    from hub.settings import Settings

    assert Settings().sync_run_retention == 30 * 86_400
    monkeypatch.setenv("HUB_SYNC_RUN_RETENTION", "3600")
    assert Settings().sync_run_retention == 3600


def test_webhook_ids_are_kept_seven_days_by_default(monkeypatch: Any) -> None:
    from hub.settings import Settings

    assert Settings().webhook_event_retention == 7 * 86_400
    monkeypatch.setenv("HUB_WEBHOOK_EVENT_RETENTION", "3600")
    assert Settings().webhook_event_retention == 3600


async def test_several_records_and_a_dead_letter(db: Database, client: httpx.AsyncClient) -> None:
    await setup(db)
    body = envelope([{"ticket": ticket(1)}, {"ticket": ticket(2, email="nobody")}, "text"])
    answer = await post(client, body, signed(body, "msg_batch"))
    assert answer.status_code == 200
    assert (answer.json()["created"], answer.json()["dead_lettered"]) == (1, 2)
    letters = await dead_letters(db)
    assert [d.position for d in letters] == ["webhook msg_batch item 2", "webhook msg_batch item 3"]
    assert letters[0].reason.startswith("customer_email: is not a valid email address")
    assert letters[1].reason == "webhook msg_batch item 3 is not an object"
    assert letters[0].cursor == "msg_batch"
    # The raw record is sealed at rest like the connector's secret.
    async with db.session() as session:
        raw = (await session.execute(text("SELECT record FROM sync_dead_letter"))).scalars()
        creds = (await session.execute(text("SELECT credentials FROM sync_connector"))).scalar()
    assert all("nobody" not in value for value in raw)
    assert creds is not None and SECRET not in creds and "whsec_" not in creds


async def test_refusals_say_what_is_wrong(db: Database, client: httpx.AsyncClient) -> None:
    await setup(db)
    body = envelope({"ticket": ticket(1)})
    cases: list[tuple[str, dict[str, str], str | None]] = [
        (envelope({"ticket": ticket(9)}), signed(body, "m1"), "invalid_signature"),
        (body, signed(body, "m2", secret="whsec_" + base64.b64encode(b"x" * 24).decode()), None),
        (
            body,
            signed(body, "m3", at=datetime.now(UTC) - timedelta(minutes=6)),
            "invalid_timestamp",
        ),
        (
            body,
            signed(body, "m4", at=datetime.now(UTC) + timedelta(minutes=6)),
            "invalid_timestamp",
        ),
        (body, {k: v for k, v in signed(body, "m5").items() if k != "webhook-signature"}, None),
        ("not json", signed("not json", "m6"), "invalid_body"),
        ('{"data": 5}', signed('{"data": 5}', "m7"), "invalid_body"),
        ('{"data": "\\u0000"}', signed('{"data": "\\u0000"}', "m8"), "invalid_body"),
    ]
    for payload, headers, code in cases:
        answer = await post(client, payload, headers)
        assert answer.status_code == 400, (headers["webhook-id"], answer.text)
        error = answer.json()
        assert set(error) == {"error", "message"}
        if code is not None:
            assert error["error"] == code
        assert "Traceback" not in answer.text and "hub." not in answer.text
    missing = await post(client, body, {"content-type": "application/json"})
    assert missing.json()["error"] == "missing_headers"
    assert await feedback_count(db) == 0
    assert await count(db, SyncWebhookEvent) == 0  # a refused id may come again, fixed


async def test_unknown_disabled_and_other_connectors_look_the_same(
    db: Database, client: httpx.AsyncClient
) -> None:
    await setup(db)
    await define(db, "paused-hooks", enabled=False)
    await define(db, "desk-files", kind="files", config={"path": "/nonexistent"}, credentials=None)
    body = envelope({"ticket": ticket(1)})
    answers = [
        await post(client, body, signed(body, "m1"), name)
        for name in ("nowhere", "paused-hooks", "desk-files")
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["error"] == "not_found"
    get = await client.get("/connectors/desk-hooks/events")
    assert get.status_code == 405


async def test_a_body_over_the_limit_is_refused(db: Database, client: httpx.AsyncClient) -> None:
    await setup(db)
    body = envelope({"ticket": ticket(1, body="x" * 3000)})
    answer = await post(client, body, signed(body, "m_big"))
    assert answer.status_code == 413
    assert answer.json() == {
        "error": "body_too_large",
        "message": "the body is larger than 2048 bytes",
    }

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(4):
            yield b"x" * 1000

    streamed = await client.post(
        "/connectors/desk-hooks/events", content=chunks(), headers=signed(b"", "m_stream")
    )
    assert streamed.status_code == 413
    assert await feedback_count(db) == 0


async def test_one_id_delivered_twice_at_once_is_stored_once(
    db: Database, client: httpx.AsyncClient
) -> None:
    await setup(db)
    body = envelope({"ticket": ticket(1)})
    answers = await asyncio.gather(
        *(post(client, body, signed(body, "msg_race")) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.json()["status"] for a in answers) == ["duplicate", "duplicate", "stored"]
    assert await feedback_count(db) == 1
    assert await count(db, SyncRun) == 1


async def test_the_example_receives_what_it_describes(
    db: Database, client: httpx.AsyncClient, repo_root: Path
) -> None:
    await support_org(db)
    await customers(db, 3)
    (spec,) = specs_from_yaml(repo_root / "connectors" / "examples" / "desk-webhooks.yaml")
    async with db.transaction() as session:
        await save_connector(session, spec)
    assert spec.credentials is not None
    ticket = {"id": 1, "requester": {"email": "Person2@Example.com "}, "description": " Hi "}
    body = json.dumps(
        {"type": "ticket.created", "timestamp": "2026-12-06T07:00:00Z", "data": {"ticket": ticket}}
    )
    answer = await post(
        client, body, signed(body, "msg_ex", secret=spec.credentials["secret"]), "desk-webhooks"
    )
    assert (answer.status_code, answer.json()["created"]) == (200, 1)


async def test_an_address_sending_refused_messages_is_refused_before_any_lookup(
    database_url: str, db: Database
) -> None:
    from app import create_app
    from tests.conftest import make_settings

    await setup(db)
    await define(db)
    settings = make_settings(database_url, webhook_failures_per_address=2)
    application = create_app(settings)
    body = envelope({"ticket": ticket(1)})
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            forged = signed(body, "msg_f", secret="whsec_" + base64.b64encode(b"x" * 24).decode())
            statuses = [(await post(http, body, forged)).status_code for _ in range(3)]
            assert statuses == [400, 400, 400]  # the budget: 2; the third blocks the address
            blocked = await post(http, body, signed(body, "msg_1"))
            assert blocked.status_code == 429
            assert blocked.json() == {
                "error": "rate_limited",
                "message": "too many refused messages from this address",
            }
            assert 1 <= int(blocked.headers["Retry-After"]) <= 60
            unknown = await post(http, body, signed(body, "msg_1"), name="nobody")
            assert unknown.status_code == 429  # before the lookup: same answer for any name
    assert await feedback_count(db) == 0


async def test_an_address_over_its_message_rate_is_told_when_to_retry(
    database_url: str, db: Database
) -> None:
    from app import create_app
    from tests.conftest import make_settings

    await setup(db)
    await define(db)
    application = create_app(make_settings(database_url, webhook_rate_per_address=2))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            answers = []
            for number in range(3):
                body = envelope({"ticket": ticket(number)})
                answers.append(await post(http, body, signed(body, f"msg_{number}")))
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["message"] == "too many messages from this address"
    assert await feedback_count(db) == 2


async def test_the_limits_count_per_address_and_window() -> None:
    from hub.counters import MemoryCounters
    from hub.sync.inbound_limits import WebhookLimiter, WebhookLimits, WebhookRateLimitedError

    now = [1000.0]
    limiter = WebhookLimiter(
        MemoryCounters(),
        WebhookLimits(per_address=3, failures_per_address=1, window=60),
        clock=lambda: now[0],
    )
    for _ in range(3):
        await limiter.check("10.0.0.1")
    with pytest.raises(WebhookRateLimitedError) as over:
        await limiter.check("10.0.0.1")
    assert over.value.retry_after == 20  # the window 960-1020 ends in 20 s
    await limiter.check("10.0.0.2")  # another address counts alone
    await limiter.refused("10.0.0.2")
    await limiter.check("10.0.0.2")  # one refusal is within the budget
    await limiter.refused("10.0.0.2")
    now[0] = 1010.0
    with pytest.raises(WebhookRateLimitedError, match="refused messages") as blocked:
        await limiter.check("10.0.0.2")
    assert blocked.value.retry_after == 10
    now[0] = 1020.0  # a new window: both addresses start again
    await limiter.check("10.0.0.1")
    await limiter.check("10.0.0.2")
