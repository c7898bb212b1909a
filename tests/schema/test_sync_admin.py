"""The GraphQL admin of connectors and deliveries (issue 12 point 7), over HTTP with real
tokens, and the workers in the server's lifespan (``HUB_SYNC_WORKER``).

Real peers: JSONL files in a temp folder read by the files connector; a webhook receiver
on 127.0.0.1 verifying signatures with the ``standardwebhooks`` library."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from app import create_app
from hub.db import Database, count_statements
from hub.errors import ForbiddenError
from hub.models import AuditEvent, Feedback, OrgKind
from hub.models._types import utcnow
from hub.models.sync import SyncConnector, SyncRun
from hub.principal import Principal
from hub.sync import admin as sync_admin
from hub.sync.config import parse_spec, save_connector
from hub.sync.lease import take
from hub.workers import ServerWorkers
from schema.ids import expect_id
from tests.conftest import (
    ALL_SCOPES,
    Caller,
    gql,
    make_caller,
    make_org,
    make_settings,
    token_for,
)
from tests.hub.delivery_helpers import (
    drain,
    fast_settings,
    make_worker,
    policy_in_force,
    receiver,
    subscribe,
    touch,
)
from tests.hub.factories import assign, count_rows, make_customer
from tests.hub.sync_helpers import customers, support_org
from tests.hub.webhook_receiver import WebhookReceiver
from tests.schema.test_admin import admin_names, post, stand_ins

__all__ = ["policy_in_force", "receiver"]  # fixtures

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
ERRORS = "userErrors { field message code }"
RUN = "id status read created updated unchanged queued deadLettered durationMs error"
CONNECTOR = f"""name kind resource organization schedule scheduleSeconds enabled imported
  config mapping credentialNames openDeadLetters checkpointAt lastRun {{ {RUN} }}"""
LETTER = "id connector runId position reason record attempts resolvedAt"
DELIVERY = """id webhookId subscriptionId organization url position eventType recordId status
  attempts responseStatus lastError"""

CONNECTORS = f"{{ connectors {{ {CONNECTOR} }} }}"
SYNC_RUNS = f"""query($c: String!, $after: String) {{ syncRuns(connector: $c, first: 1, after: $after) {{
  nodes {{ {RUN} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
DEAD_LETTERS = f"""query($c: String!) {{ deadLetters(connector: $c) {{
  nodes {{ {LETTER} }} pageInfo {{ hasNextPage }} }} }}"""
DELIVERIES = f"""query($status: AdminDeliveryStatus) {{ deliveries(status: $status) {{
  nodes {{ {DELIVERY} }} pageInfo {{ hasNextPage }} }} }}"""
CREATE = f"""mutation($input: ConnectorInput!) {{
  createConnector(input: $input) {{ connector {{ {CONNECTOR} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($name: String!, $patch: ConnectorPatch!) {{
  updateConnector(name: $name, patch: $patch) {{ connector {{ {CONNECTOR} }} {ERRORS} }} }}"""
DISABLE = f"""mutation($name: String!) {{
  disableConnector(name: $name) {{ connector {{ name enabled }} {ERRORS} }} }}"""
RUN_NOW = (
    f"""mutation($name: String!) {{ runConnector(name: $name) {{ run {{ {RUN} }} {ERRORS} }} }}"""
)
REPLAY_LETTER = f"""mutation($id: ID!) {{
  replayDeadLetter(id: $id) {{ outcome deadLetter {{ {LETTER} }} {ERRORS} }} }}"""
REPLAY_DELIVERY = f"""mutation($id: ID!) {{
  replayDelivery(id: $id) {{ delivery {{ {DELIVERY} }} {ERRORS} }} }}"""

# The support desk's export: the third ticket's type is one the hub does not know until
# the mapping maps it.
TICKETS = [
    {"ticket": "T-1", "email": "person0@example.com", "type": "complaint", "body": "Broken lid"},
    {"ticket": "T-2", "email": "person1@example.com", "type": "praise", "body": "Quick reply"},
    {"ticket": "T-3", "email": "person2@example.com", "type": "incident", "body": "Late parcel"},
]
MAPPING: dict[str, Any] = {
    "external_id": "ticket",
    "customer_email": "email",
    "kind": "type",
    "text": "body",
    "channel": {"from": "via", "default": "email"},
}


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


def export(folder: Path, tickets: list[dict[str, Any]], name: str = "2026-12-01.jsonl") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps(t) + "\n" for t in tickets))
    return folder


def definition(folder: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "desk",
        "kind": "files",
        "resource": "feedback",
        "organization": "support",
        "config": {"path": str(folder), "format": "jsonl"},
        "mapping": MAPPING,
        "credentials": {"token": "s3cret-value"},
    }
    values.update(overrides)
    return values


async def audit_actions(db: Database) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(col(AuditEvent.action), col(AuditEvent.target), col(AuditEvent.actor))
            .where(
                col(AuditEvent.action).startswith("connector.")
                | col(AuditEvent.action).startswith("webhook.")
            )
            .order_by(col(AuditEvent.seq))
        )
        return [(str(a), str(t), str(who)) for a, t, who in rows.all()]


async def test_admin_defines_runs_and_replays_a_connector(
    client: httpx.AsyncClient, db: Database, admin: Caller, tmp_path: Path
) -> None:
    await support_org(db)
    await customers(db, 3)
    folder = export(tmp_path / "desk", TICKETS)

    created = await gql(client, admin, CREATE, {"input": definition(folder, schedule="15m")})
    connector = created["data"]["createConnector"]["connector"]
    assert created["data"]["createConnector"]["userErrors"] == []
    assert connector["schedule"] == "15m" and connector["scheduleSeconds"] == 900
    assert connector["credentialNames"] == ["token"] and connector["lastRun"] is None

    ran = (await gql(client, admin, RUN_NOW, {"name": "desk"}))["data"]["runConnector"]
    assert ran["userErrors"] == []
    run = ran["run"]
    assert (run["status"], run["read"], run["created"], run["deadLettered"]) == (
        "SUCCEEDED",
        3,
        2,
        1,
    )
    assert await count_rows(db, Feedback) == 2

    listed = await client.post(
        "/graphql",
        json={"query": CONNECTORS},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert "s3cret-value" not in listed.text  # credentials never leave the hub
    [shown] = listed.json()["data"]["connectors"]
    assert (shown["name"], shown["kind"], shown["resource"], shown["organization"]) == (
        "desk",
        "files",
        "Feedback",
        "support",
    )
    assert shown["openDeadLetters"] == 1 and shown["lastRun"]["id"] == run["id"]
    assert shown["checkpointAt"] is not None and shown["enabled"] is True

    letters = (await gql(client, admin, DEAD_LETTERS, {"c": "desk"}))["data"]["deadLetters"]
    [letter] = letters["nodes"]
    assert letter["position"] == "2026-12-01.jsonl line 3"
    assert letter["reason"].startswith("kind:") and "incident" not in letter["reason"]
    assert letter["record"] == TICKETS[2] and letter["runId"] == run["id"]

    # Replayed as it is, the record is refused again: the letter stays, with one more try.
    again = (await gql(client, admin, REPLAY_LETTER, {"id": letter["id"]}))["data"]
    again = again["replayDeadLetter"]
    assert (again["outcome"], again["userErrors"]) == ("DEAD_LETTERED", [])
    assert again["deadLetter"]["attempts"] == 2 and again["deadLetter"]["resolvedAt"] is None

    # The mapping fixed, the same raw record is stored: the letter is resolved.
    fixed = {**MAPPING, "kind": {"from": "type", "map": {"incident": "complaint"}}}
    patched = await gql(client, admin, UPDATE, {"name": "desk", "patch": {"mapping": fixed}})
    assert patched["data"]["updateConnector"]["connector"]["mapping"] == fixed
    assert patched["data"]["updateConnector"]["connector"]["credentialNames"] == ["token"]
    replayed = (await gql(client, admin, REPLAY_LETTER, {"id": letter["id"]}))["data"]
    replayed = replayed["replayDeadLetter"]
    assert replayed["outcome"] == "CREATED" and replayed["deadLetter"]["resolvedAt"] is not None
    assert await count_rows(db, Feedback) == 3
    done = (await gql(client, admin, REPLAY_LETTER, {"id": letter["id"]}))["data"]
    assert [e["code"] for e in done["replayDeadLetter"]["userErrors"]] == ["RESOLVED"]
    open_letters = await gql(client, admin, DEAD_LETTERS, {"c": "desk"})
    assert open_letters["data"]["deadLetters"]["nodes"] == []

    # A new file in the folder: the next run reads only it (the checkpoint held), and the
    # replayed ticket met again in it is unchanged, not a second feedback.
    export(folder, [TICKETS[2]], "2026-12-02.jsonl")
    second = (await gql(client, admin, RUN_NOW, {"name": "desk"}))["data"]["runConnector"]["run"]
    assert (second["read"], second["created"], second["unchanged"]) == (1, 0, 1)
    assert await count_rows(db, Feedback) == 3

    # Runs page newest first, one at a time.
    first_page = (await gql(client, admin, SYNC_RUNS, {"c": "desk"}))["data"]["syncRuns"]
    assert [r["id"] for r in first_page["nodes"]] == [second["id"]]
    assert first_page["pageInfo"]["hasNextPage"] is True
    after = first_page["pageInfo"]["endCursor"]
    next_page = await gql(client, admin, SYNC_RUNS, {"c": "desk", "after": after})
    assert [r["id"] for r in next_page["data"]["syncRuns"]["nodes"]] == [run["id"]]

    disabled = await gql(client, admin, DISABLE, {"name": "desk"})
    assert disabled["data"]["disableConnector"]["connector"]["enabled"] is False
    refused = (await gql(client, admin, RUN_NOW, {"name": "desk"}))["data"]["runConnector"]
    assert [e["code"] for e in refused["userErrors"]] == ["DISABLED"]

    actor = f"operator/{admin.client_id}"
    assert [(a, t, w) for a, t, w in await audit_actions(db) if w == actor] == [
        ("connector.create", "connector:desk", actor),
        ("connector.run", "connector:desk", actor),
        ("connector.replay_dead_letter", f"sync_dead_letter:{_uuid(letter['id'])}", actor),
        ("connector.update", "connector:desk", actor),
        ("connector.replay_dead_letter", f"sync_dead_letter:{_uuid(letter['id'])}", actor),
        ("connector.run", "connector:desk", actor),
        ("connector.disable", "connector:desk", actor),
    ]
    async with db.session() as session:
        details = (
            await session.execute(
                select(col(AuditEvent.details)).where(col(AuditEvent.action) == "connector.create")
            )
        ).scalar_one()
    assert details["credentials"] == ["token"] and "s3cret-value" not in json.dumps(details)


def _uuid(global_id: str) -> str:
    decoded = expect_id(global_id, "SyncDeadLetter")
    assert decoded is not None
    return str(decoded)


async def test_the_connector_list_costs_the_same_statements_for_more_connectors(
    client: httpx.AsyncClient, db: Database, admin: Caller, tmp_path: Path
) -> None:
    await support_org(db)
    await token_for(client, admin)
    folder = export(tmp_path / "desk", TICKETS)
    counts: dict[int, int] = {}
    made = 0
    for total in (1, 4):
        async with db.transaction() as session:
            for n in range(made, total):
                row, _ = await save_connector(session, parse_spec(definition(folder, name=f"c{n}")))
                for minutes in (1, 2):
                    started = utcnow() - timedelta(minutes=minutes)
                    session.add(SyncRun(connector_id=row.id, holder="h", started_at=started))
        made = total
        with count_statements() as statements:
            body = await gql(client, admin, CONNECTORS)
        listed = body["data"]["connectors"]
        assert [c["name"] for c in listed] == [f"c{n}" for n in range(total)]
        assert all(c["lastRun"]["status"] == "RUNNING" for c in listed)
        counts[total] = statements[0]
    assert counts[1] == counts[4], counts


async def test_definitions_are_checked_naming_the_key(
    client: httpx.AsyncClient, db: Database, admin: Caller, tmp_path: Path
) -> None:
    await support_org(db)
    folder = export(tmp_path / "desk", TICKETS)
    cases: list[tuple[dict[str, Any], list[str], str]] = [
        (definition(folder, kind="ftp"), ["input", "kind"], "must be one of"),
        (definition(folder, schedule="5s"), ["input", "schedule"], "at least 10 seconds"),
        (definition(folder, organization="nobody"), ["input", "organization"], "nobody"),
        (definition(folder, name="bad name"), ["input", "name"], "letters, digits"),
        (
            definition(folder, mapping={**MAPPING, "kind": {"from": "type", "map": 3}}),
            ["input", "mapping", "kind", "map"],
            "",
        ),
        (definition(folder, mapping={"text": "body"}), ["input", "mapping", "external_id"], ""),
        (definition(folder, config={"format": "jsonl"}), ["input", "config", "path"], ""),
    ]
    for given, path, words in cases:
        body = await gql(client, admin, CREATE, {"input": given})
        payload = body["data"]["createConnector"]
        assert payload["connector"] is None, given
        [error] = payload["userErrors"]
        assert error["field"] == path, (given, error)
        assert words in error["message"], error
    assert await count_rows(db, SyncConnector) == 0

    await gql(client, admin, CREATE, {"input": definition(folder)})
    taken = await gql(client, admin, CREATE, {"input": definition(folder)})
    assert [e["code"] for e in taken["data"]["createConnector"]["userErrors"]] == ["TAKEN"]
    bad_patch = await gql(client, admin, UPDATE, {"name": "desk", "patch": {"schedule": "1x"}})
    [error] = bad_patch["data"]["updateConnector"]["userErrors"]
    assert error["field"] == ["patch", "schedule"]
    unknown = await gql(client, admin, UPDATE, {"name": "nope", "patch": {"enabled": False}})
    assert [e["code"] for e in unknown["data"]["updateConnector"]["userErrors"]] == ["NOT_FOUND"]


async def test_secrets_in_a_definition_are_never_shown(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    await support_org(db)
    sql = {
        "name": "crm",
        "kind": "sql",
        "resource": "customers",
        "organization": "support",
        "config": {
            "url": "postgresql://hub:url-pass-1@db.internal/crm",
            "query": "select * from contacts",
            "cursor": "updated_at",
            "key": "id",
        },
        "credentials": {"password": "cred-pass-2"},
    }
    created = await gql(client, admin, CREATE, {"input": sql})
    assert created["data"]["createConnector"]["userErrors"] == []
    shown = await client.post(
        "/graphql",
        json={"query": CONNECTORS},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert "url-pass-1" not in shown.text and "cred-pass-2" not in shown.text
    [connector] = shown.json()["data"]["connectors"]
    assert connector["config"]["url"] == "postgresql://hub:***@db.internal/crm"
    assert connector["credentialNames"] == ["password"]
    async with db.session() as session:
        logged = (await session.execute(select(col(AuditEvent.details)))).scalars().all()
    assert "cred-pass-2" not in json.dumps(logged)


async def test_a_run_in_progress_is_a_user_error(
    client: httpx.AsyncClient, db: Database, admin: Caller, tmp_path: Path
) -> None:
    await support_org(db)
    await customers(db, 3)
    await gql(client, admin, CREATE, {"input": definition(export(tmp_path / "d", TICKETS))})
    async with db.transaction() as session:
        row = (await session.execute(select(SyncConnector))).scalar_one()
        await take(session, row.id, "elsewhere:1:abc", 60)
    body = (await gql(client, admin, RUN_NOW, {"name": "desk"}))["data"]["runConnector"]
    assert body["run"] is None
    [error] = body["userErrors"]
    assert (error["field"], error["code"]) == (["name"], "RUNNING")
    assert "running" in error["message"]
    letters_before = await gql(client, admin, DEAD_LETTERS, {"c": "desk"})
    assert letters_before["data"]["deadLetters"]["nodes"] == []
    assert await count_rows(db, SyncRun) == 0


async def test_admin_sees_and_replays_dead_deliveries(
    client: httpx.AsyncClient,
    db: Database,
    admin: Caller,
    receiver: WebhookReceiver,
    policy_in_force: None,
) -> None:
    settings = fast_settings()
    operator = admin.org
    distributor = await make_caller(
        db, OrgKind.DISTRIBUTOR, scopes=[*ALL_SCOPES, "webhooks:manage"]
    )
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, distributor.org)
    await subscribe(db, distributor, receiver, settings)
    await touch(db, operator, customer, city="Paris")
    receiver.status = 500
    worker = make_worker(db, settings)
    try:
        await drain(worker)
        dead = (await gql(client, admin, DELIVERIES, {"status": "DEAD"}))["data"]["deliveries"]
        [delivery] = dead["nodes"]
        assert (delivery["status"], delivery["attempts"], delivery["eventType"]) == (
            "DEAD",
            4,
            "Customer.update",
        )
        assert delivery["organization"] == distributor.org.slug
        assert delivery["recordId"] == str(customer.id) and delivery["responseStatus"] == 500

        replayed = await gql(client, admin, REPLAY_DELIVERY, {"id": delivery["id"]})
        again = replayed["data"]["replayDelivery"]["delivery"]
        assert (again["status"], again["attempts"], again["webhookId"]) == (
            "PENDING",
            0,
            delivery["webhookId"],
        )
        receiver.status = 200
        await drain(worker)
    finally:
        await worker.http.aclose()
    assert list(receiver.accepted) == [delivery["webhookId"]]
    everything = (await gql(client, admin, DELIVERIES, {}))["data"]["deliveries"]["nodes"]
    assert [d["status"] for d in everything] == ["DELIVERED"]
    unknown = await gql(client, admin, REPLAY_DELIVERY, {"id": "msg_nope"})
    assert [e["code"] for e in unknown["data"]["replayDelivery"]["userErrors"]] == ["NOT_FOUND"]
    actor = f"operator/{admin.client_id}"
    assert ("webhook.replay", actor) in [(a, w) for a, _, w in await audit_actions(db)]


OPERATIONS: list[tuple[str, dict[str, Any]]] = [
    (CONNECTORS, {}),
    (SYNC_RUNS, {"c": "desk"}),
    (DEAD_LETTERS, {"c": "desk"}),
    (DELIVERIES, {}),
    (
        CREATE,
        {
            "input": {
                "name": "x",
                "kind": "files",
                "resource": "feedback",
                "organization": "support",
                "config": {},
            }
        },
    ),
    (UPDATE, {"name": "desk", "patch": {"enabled": True}}),
    (DISABLE, {"name": "desk"}),
    (RUN_NOW, {"name": "desk"}),
    (REPLAY_LETTER, {"id": "U3luY0RlYWRMZXR0ZXI6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw"}),
    (REPLAY_DELIVERY, {"id": "msg_x"}),
]


@pytest.mark.parametrize("who", ["partner", "department without hub:admin"])
async def test_non_admins_cannot_see_or_call_any_of_it(
    client: httpx.AsyncClient, db: Database, admin: Caller, tmp_path: Path, who: str
) -> None:
    await support_org(db)
    await gql(client, admin, CREATE, {"input": definition(export(tmp_path / "d", TICKETS))})
    caller = (
        await make_caller(db, "distributor", scopes=[*ALL_SCOPES, "webhooks:manage"])
        if who == "partner"
        else await make_caller(db, "department")
    )
    audit_before = await count_rows(db, AuditEvent)
    for query, variables in OPERATIONS:
        status, body = await post(client, caller, query, variables)
        # Not in the caller's schema: unknown, exactly as names that exist nowhere.
        assert status == 400 and "data" not in body, (query, body)
        names = stand_ins(admin_names(query))
        nowhere = query
        for name, stand_in in names.items():
            nowhere = re.sub(rf"\b{name}\b", stand_in, nowhere)
        unknown_status, unknown = await post(client, caller, nowhere, variables)
        text = json.dumps(unknown)
        for name, stand_in in names.items():
            text = text.replace(stand_in, name)
        assert (status, body) == (unknown_status, json.loads(text)), query
    assert await count_rows(db, AuditEvent) == audit_before
    assert await count_rows(db, SyncRun) == 0


@pytest.mark.parametrize(
    "kind", [OrgKind.OPERATOR, OrgKind.DEPARTMENT, OrgKind.DISTRIBUTOR, OrgKind.SUPPLIER]
)
async def test_the_hub_refuses_non_admins_whatever_reaches_it(db: Database, kind: OrgKind) -> None:
    # Behind the schema, each function checks for itself; a partner with hub:admin too.
    scopes = ADMIN_SCOPES if kind in (OrgKind.DISTRIBUTOR, OrgKind.SUPPLIER) else ALL_SCOPES
    org = await make_org(db, kind)
    who = Principal(
        client_id="hub_x",
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=kind,
        scopes=frozenset(scopes),
    )
    async with db.session() as session:
        for call in (
            sync_admin.list_connectors(session, who),
            sync_admin.runs_page(session, who, "desk", first=1, after=None),
            sync_admin.disable_connector(session, who, "desk"),
        ):
            with pytest.raises(ForbiddenError):
                await call


async def test_the_server_runs_scheduled_connectors_and_delivers(
    database_url: str,
    db: Database,
    receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_DELIVERY_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("HUB_DELIVERY_POLL_INTERVAL", "0.05")
    await support_org(db)
    await customers(db, 3)
    operator = await make_org(db, OrgKind.OPERATOR, "operator")
    distributor = await make_caller(
        db, OrgKind.DISTRIBUTOR, scopes=[*ALL_SCOPES, "webhooks:manage"]
    )
    shared = await make_customer(db, consent_share_with_partners=True)
    await assign(db, shared, distributor.org)
    await subscribe(db, distributor, receiver, fast_settings())
    async with db.transaction() as session:
        spec = definition(export(tmp_path / "desk", TICKETS[:2]), schedule="10s")
        await save_connector(session, parse_spec(spec))

    settings = make_settings(database_url, sync_worker=True, sync_worker_tick=0.1)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        # The scheduled connector is due (it never ran): the server runs it by itself...
        await until(lambda: _runs_ended(db))
        # ...and delivers a change to the distributor's endpoint by itself.
        await touch(db, operator, shared, city="Paris")
        await until(lambda: _received(receiver, 1))
    [event] = receiver.accepted.values()
    assert event.body["type"] == "Customer.update"
    assert event.body["data"]["record"]["city"] == "Paris"
    async with db.session() as session:
        runs = list((await session.execute(select(SyncRun))).scalars())
    assert [(r.status, r.created) for r in runs] == [("succeeded", 2)]  # once: not due again


async def test_a_requested_run_goes_on_after_the_answer(
    database_url: str, db: Database, admin: Caller, tmp_path: Path
) -> None:
    await support_org(db)
    await customers(db, 3)
    async with db.transaction() as session:
        await save_connector(session, parse_spec(definition(export(tmp_path / "d", TICKETS))))
    who = Principal(
        client_id=admin.client_id,
        organization_id=admin.org.id,
        organization_slug=admin.org.slug,
        organization_kind=OrgKind.OPERATOR,
        scopes=frozenset(ADMIN_SCOPES),
    )
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        workers: ServerWorkers = application.state.workers
        # Answered at once: the run is starting (None) or running, not finished.
        answered = await workers.request_run(who, "desk", wait=0.0)
        assert answered is None or answered.status == "running"
        await until(lambda: _runs_ended(db))
    async with db.session() as session:
        [run] = list((await session.execute(select(SyncRun))).scalars())
    assert (run.status, run.created, run.dead_lettered) == ("succeeded", 2, 1)
    assert await count_rows(db, Feedback) == 2


async def _runs_ended(db: Database) -> bool:
    async with db.session() as session:
        statuses = (await session.execute(select(col(SyncRun.status)))).scalars().all()
    return bool(statuses) and "running" not in statuses


async def _received(receiver: WebhookReceiver, expected: int) -> bool:
    return len(receiver.accepted) == expected


async def until(check: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
