"""Idempotency keys (issue 5 §3): a retried create with the same key and input yields one
record; the same key with another input, or for another operation, is refused and
nothing is written; the key travels in the input or the ``Idempotency-Key`` header; two
concurrent first uses of one key still make one record; keys expire after 24 hours.

Acceptance: "A retried create with the same idempotency key yields one record; different
input with the same key is refused." Both backends (the ``database_url`` fixture)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from hub import feedback, idempotency
from hub.access import Resource
from hub.db import Database
from hub.errors import InvalidInputError
from hub.idempotency import Idempotent, request_hash
from hub.models import AuditEvent, Feedback, IdempotencyKey, Interaction, Purchase
from hub.models._types import utcnow
from hub.principal import Principal
from schema.ids import from_global_id
from tests.conftest import Caller, gql, make_caller, token_for
from tests.hub.factories import count_rows, gid, make_customer

SUBMIT = """mutation($input: SubmitFeedbackInput!) {
  submitFeedback(input: $input) { feedback { id text } userErrors { field message code } } }"""
LOG = """mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) { interaction { id summary } userErrors { field message code } } }"""
REPORT = """mutation($input: ReportPurchaseInput!) {
  reportPurchase(input: $input) { purchase { id sku } userErrors { field message code } } }"""


@pytest.fixture
async def operator(db: Database) -> Caller:
    return await make_caller(db, "operator", slug="operator")


def feedback_input(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {"customerId": customer_id, "channel": "EMAIL", "kind": "PRAISE", "text": "Lovely"} | (
        overrides
    )


async def post(
    http: httpx.AsyncClient,
    caller: Caller,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Like ``gql`` with extra HTTP headers; the body is returned whatever it holds."""
    token = caller.token or await token_for(http, caller)
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/graphql-response+json",
            **(headers or {}),
        },
    )
    body: dict[str, Any] = response.json()
    return body


def errors_of(body: dict[str, Any], mutation: str) -> list[tuple[list[str], str]]:
    return [(e["field"], e["code"]) for e in body["data"][mutation]["userErrors"]]


async def keys(db: Database) -> list[IdempotencyKey]:
    async with db.session() as session:
        return list((await session.execute(select(IdempotencyKey))).scalars())


# --- the hash and the key ---------------------------------------------------------------


def test_request_hash_is_canonical() -> None:
    one = {"b": [1, 2], "a": {"y": uuid.UUID(int=1), "x": "é"}}
    same = {"a": {"x": "é", "y": uuid.UUID(int=1)}, "b": [1, 2]}
    assert request_hash("op", one) == request_hash("op", same)
    assert request_hash("op", one) != request_hash("other", one)
    assert request_hash("op", one) != request_hash("op", {**one, "b": [2, 1]})
    # Dataclasses hash as their fields.
    submission = feedback.FeedbackSubmission(uuid.UUID(int=1), "email", "praise", "t")
    assert request_hash("op", submission) == request_hash("op", {**vars(submission)})


@pytest.mark.parametrize(
    ("key", "code"),
    [("", "REQUIRED"), ("k" * 201, "TOO_LONG"), ("new\nline", "INVALID"), ("tab\t", "INVALID")],
)
def test_key_must_be_1_to_200_printable_characters(key: str, code: str) -> None:
    [problem] = idempotency.key_problems(key, ("input", "idempotencyKey"))
    assert (problem.path, problem.code) == (("input", "idempotencyKey"), code)
    assert idempotency.key_problems("k" * 200, ("k",)) == []
    assert idempotency.key_problems("order 42 / retry é", ("k",)) == []


# --- through the API --------------------------------------------------------------------


async def test_retry_with_the_same_key_returns_the_first_record_and_writes_once(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    given = feedback_input(gid(customer), idempotencyKey="order-42")
    first = await gql(client, operator, SUBMIT, {"input": given})
    again = await gql(client, operator, SUBMIT, {"input": given})
    assert first["data"]["submitFeedback"]["userErrors"] == []
    assert again == first  # same id, same payload
    assert await count_rows(db, Feedback) == 1
    [key] = await keys(db)
    assert (key.owner, key.key, key.operation) == (operator.client_id, "order-42", "submitFeedback")
    parsed = from_global_id(first["data"]["submitFeedback"]["feedback"]["id"])
    assert parsed is not None and key.result_id == parsed[1]
    # The replay wrote nothing, not even an audit event.
    async with db.session() as session:
        actions = list((await session.execute(select(col(AuditEvent.action)))).scalars())
    assert actions.count("feedback.create") == 1


async def test_same_key_with_different_input_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    await gql(
        client, operator, SUBMIT, {"input": feedback_input(gid(customer), idempotencyKey="k")}
    )
    changed = feedback_input(gid(customer), text="Something else", idempotencyKey="k")
    body = await gql(client, operator, SUBMIT, {"input": changed})
    assert errors_of(body, "submitFeedback") == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]
    assert body["data"]["submitFeedback"]["feedback"] is None
    async with db.session() as session:
        texts = list((await session.execute(select(col(Feedback.text)))).scalars())
    assert texts == ["Lovely"]
    # The same key for another operation is refused too.
    other = {"customerId": gid(customer), "channel": "PHONE", "direction": "INBOUND"}
    body = await gql(
        client, operator, LOG, {"input": {**other, "summary": "Call", "idempotencyKey": "k"}}
    )
    assert errors_of(body, "logInteraction") == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]
    assert await count_rows(db, Interaction) == 0


async def test_keys_are_per_client(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    other = await make_caller(db, "operator", slug="operator-2")
    customer = await make_customer(db)
    given = feedback_input(gid(customer), idempotencyKey="shared")
    one = await gql(client, operator, SUBMIT, {"input": given})
    two = await gql(client, other, SUBMIT, {"input": given})
    assert (
        one["data"]["submitFeedback"]["feedback"]["id"]
        != (two["data"]["submitFeedback"]["feedback"]["id"])
    )
    assert await count_rows(db, Feedback) == 2


async def test_key_in_the_header(client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
    customer = await make_customer(db)
    report = {
        "customerId": gid(customer),
        "sku": "SKU-1",
        "quantity": 2,
        "amount": "10.00",
        "currency": "EUR",
    }
    header = {"Idempotency-Key": "sale-7"}
    first = await post(client, operator, REPORT, {"input": report}, header)
    again = await post(client, operator, REPORT, {"input": report}, header)
    assert first["data"]["reportPurchase"]["userErrors"] == []
    assert again == first
    assert await count_rows(db, Purchase) == 1
    # The same key in the input is the same key.
    same = await post(client, operator, REPORT, {"input": {**report, "idempotencyKey": "sale-7"}})
    assert same == first
    # Both given and different: a user error, nothing written.
    body = await post(
        client, operator, REPORT, {"input": {**report, "idempotencyKey": "other"}}, header
    )
    assert errors_of(body, "reportPurchase") == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_MISMATCH")
    ]
    # An invalid header is refused like an invalid field.
    body = await post(client, operator, REPORT, {"input": report}, {"Idempotency-Key": "x" * 201})
    assert errors_of(body, "reportPurchase") == [(["input", "idempotencyKey"], "TOO_LONG")]
    assert await count_rows(db, Purchase) == 1


async def test_without_a_key_each_request_writes(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    for _ in range(2):
        await gql(client, operator, SUBMIT, {"input": feedback_input(gid(customer))})
    assert await count_rows(db, Feedback) == 2
    assert await keys(db) == []


async def test_a_failed_write_keeps_no_key(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    bad = feedback_input(gid(customer), text="", idempotencyKey="k")
    body = await gql(client, operator, SUBMIT, {"input": bad})
    assert errors_of(body, "submitFeedback") == [(["input", "text"], "REQUIRED")]
    assert await keys(db) == []
    # The corrected retry with the same key is a first attempt.
    fixed = await gql(
        client, operator, SUBMIT, {"input": feedback_input(gid(customer), idempotencyKey="k")}
    )
    assert fixed["data"]["submitFeedback"]["userErrors"] == []
    assert await count_rows(db, Feedback) == 1


async def test_concurrent_requests_with_one_key_make_one_record(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    await token_for(client, operator)
    given = feedback_input(gid(customer), idempotencyKey="burst")
    bodies = await asyncio.gather(
        *(gql(client, operator, SUBMIT, {"input": given}) for _ in range(8))
    )
    ids = {b["data"]["submitFeedback"]["feedback"]["id"] for b in bodies}
    assert len(ids) == 1
    assert all(b["data"]["submitFeedback"]["userErrors"] == [] for b in bodies)
    assert await count_rows(db, Feedback) == 1
    assert len(await keys(db)) == 1


async def test_an_expired_key_is_a_new_request_and_is_pruned(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    given = feedback_input(gid(customer), idempotencyKey="old")
    first = await gql(client, operator, SUBMIT, {"input": given})
    async with db.transaction() as session:
        await session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, seconds=1))
        )
    again = await gql(client, operator, SUBMIT, {"input": given})
    assert (
        again["data"]["submitFeedback"]["feedback"]["id"]
        != (first["data"]["submitFeedback"]["feedback"]["id"])
    )
    assert await count_rows(db, Feedback) == 2
    [key] = await keys(db)  # the expired one went when the new one came
    assert key.created_at > utcnow() - timedelta(minutes=1)


# --- the hub API (what createCustomer and upsertCustomer reuse) ---------------------------


async def test_prune_expired_removes_old_keys_of_every_owner(db: Database) -> None:
    # No app here: a running app's runtime prunes on its first tick too, and racing it
    # would leave this call nothing to remove.
    now = utcnow()
    async with db.transaction() as session:
        for owner, age in (("a", 25), ("b", 30), ("c", 1)):
            session.add(
                IdempotencyKey(
                    owner=owner,
                    key="k",
                    operation="op",
                    request_hash="0" * 64,
                    resource="Feedback",
                    created_at=now - timedelta(hours=age),
                )
            )
    async with db.transaction() as session:
        assert await idempotency.prune_expired(session) == 2
    assert [k.owner for k in await keys(db)] == ["c"]


async def test_write_once_replays_through_read_back(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    del client
    customer = await make_customer(db)
    principal = Principal(
        client_id=operator.client_id,
        organization_id=operator.org.id,
        organization_slug=operator.org.slug,
        organization_kind=operator.org.kind,  # type: ignore[arg-type]
        scopes=frozenset({"feedback:read", "feedback:write", "customers:read"}),
    )
    submission = feedback.FeedbackSubmission(customer.id, "email", "praise", "Hi")
    spec = Idempotent("submitFeedback", "k1", submission, Resource.FEEDBACK)
    calls = 0

    async def write(session: Any) -> Any:
        nonlocal calls
        calls += 1
        return await feedback.submit_feedback(session, principal, submission)

    first = await idempotency.write_once(db, principal, spec, write)
    again = await idempotency.write_once(db, principal, spec, write)
    assert calls == 1
    assert again["id"] == first["id"] and again["text"] == "Hi"
    # The replay shows what the caller may see now: a write-only caller gets the id only.
    write_only = Principal(**{**vars(principal), "scopes": frozenset({"feedback:write"})})
    # (same client id, so the same key space)
    replay = await idempotency.write_once(db, write_only, spec, write)
    assert dict(replay) == {"id": first["id"]}
    other = Idempotent("submitFeedback", "k1", {**vars(submission), "text": "x"}, Resource.FEEDBACK)
    with pytest.raises(InvalidInputError) as refused:
        await idempotency.write_once(db, principal, other, write)
    assert refused.value.problems[0].code == "IDEMPOTENCY_KEY_REUSED"
    assert calls == 1
    async with db.session() as session:
        stored = (
            await session.execute(select(IdempotencyKey).where(col(IdempotencyKey.key) == "k1"))
        ).scalar_one()
    assert stored.response == {"id": str(first["id"])}


async def test_each_replica_prunes_expired_keys_of_idle_clients(
    db: Database, settings: Any
) -> None:
    """The runtime's periodic prune (which starts with the app) removes old keys of
    clients that make no keyed write any more."""
    from app import create_app

    now = utcnow()
    async with db.transaction() as session:
        for owner, age in (("idle", 25), ("recent", 1)):
            session.add(
                IdempotencyKey(
                    owner=owner,
                    key="k",
                    operation="op",
                    request_hash="0" * 64,
                    resource="Feedback",
                    created_at=now - timedelta(hours=age),
                )
            )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        for _ in range(100):
            if [k.owner for k in await keys(db)] == ["recent"]:
                break
            await asyncio.sleep(0.05)
    assert [k.owner for k in await keys(db)] == ["recent"]
