"""Subscribers manage their own webhook subscriptions through GraphQL: create (the
secret once), rotate, pause, resume, list deliveries; scoped to the caller's
organization ("not yours" answers as "does not exist"); webhooks:manage required."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.models import OrgKind
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_org, token_for
from tests.hub.delivery_helpers import drain, fast_settings, make_worker, receiver, touch
from tests.hub.factories import assign, make_customer
from tests.hub.webhook_receiver import WebhookReceiver

__all__ = ["receiver"]  # fixture

SCOPES = [*ALL_SCOPES, "webhooks:manage"]

CREATE = """mutation($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) {
    secret
    subscription { id url status resources operations description disabledReason }
    userErrors { field message code }
  }
}"""
LIST = "{ webhookSubscriptions { id url status } }"
ONE = "query($id: ID!) { webhookSubscription(id: $id) { id status } }"
PAUSE = """mutation($id: ID!) { pauseWebhookSubscription(id: $id) {
  subscription { status } userErrors { field message code } } }"""
RESUME = """mutation($id: ID!) { resumeWebhookSubscription(id: $id) {
  subscription { status } userErrors { field message code } } }"""
ROTATE = """mutation($id: ID!) { rotateWebhookSecret(id: $id) {
  secret userErrors { field message code } } }"""
DELIVERIES = """query($id: ID!, $status: WebhookDeliveryStatus) {
  webhookDeliveries(subscriptionId: $id, status: $status, first: 10) {
    nodes { webhookId eventType status attempts responseStatus deliveredAt }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DELIVERY_ALLOW_LOOPBACK", "true")


async def create(
    client: httpx.AsyncClient, caller: Caller, url: str, resources: list[str] | None = None
) -> dict[str, Any]:
    variables = {"input": {"url": url, "resources": resources or ["CUSTOMER"]}}
    body = await gql(client, caller, CREATE, variables)
    payload: dict[str, Any] = body["data"]["createWebhookSubscription"]
    return payload


async def test_create_list_pause_resume_rotate(client: httpx.AsyncClient, db: Database) -> None:
    partner = await make_caller(db, OrgKind.DISTRIBUTOR, scopes=SCOPES)
    made = await create(client, partner, "http://127.0.0.1:9/hooks", ["CUSTOMER", "FEEDBACK"])
    assert made["userErrors"] == []
    assert made["secret"].startswith("whsec_")
    sub = made["subscription"]
    assert sub["status"] == "ACTIVE" and sub["resources"] == ["CUSTOMER", "FEEDBACK"]
    assert sub["operations"] == [] and sub["disabledReason"] is None

    listed = (await gql(client, partner, LIST))["data"]["webhookSubscriptions"]
    assert listed == [{"id": sub["id"], "url": "http://127.0.0.1:9/hooks", "status": "ACTIVE"}]
    assert "secret" not in str(listed)  # the secret is never shown again

    paused = (await gql(client, partner, PAUSE, {"id": sub["id"]}))["data"]
    assert paused["pauseWebhookSubscription"]["subscription"]["status"] == "PAUSED"
    resumed = (await gql(client, partner, RESUME, {"id": sub["id"]}))["data"]
    assert resumed["resumeWebhookSubscription"]["subscription"]["status"] == "ACTIVE"
    rotated = (await gql(client, partner, ROTATE, {"id": sub["id"]}))["data"]
    new = rotated["rotateWebhookSecret"]["secret"]
    assert new.startswith("whsec_") and new != made["secret"]


async def test_not_yours_is_does_not_exist(client: httpx.AsyncClient, db: Database) -> None:
    owner = await make_caller(db, OrgKind.DISTRIBUTOR, scopes=SCOPES)
    other = await make_caller(db, OrgKind.VENDOR, scopes=SCOPES)
    sub = (await create(client, owner, "http://127.0.0.1:9/hooks"))["subscription"]
    unknown = sub["id"][:-4] + ("AAAA" if not sub["id"].endswith("AAAA") else "BBBB")

    assert (await gql(client, other, LIST))["data"]["webhookSubscriptions"] == []
    for sub_id in (sub["id"], unknown, "not-an-id"):
        assert (await gql(client, other, ONE, {"id": sub_id}))["data"] == {
            "webhookSubscription": None
        }
        assert (await gql(client, other, DELIVERIES, {"id": sub_id}))["data"] == {
            "webhookDeliveries": None
        }
        for mutation, name in (
            (PAUSE, "pauseWebhookSubscription"),
            (ROTATE, "rotateWebhookSecret"),
        ):
            errors = (await gql(client, other, mutation, {"id": sub_id}))["data"][name][
                "userErrors"
            ]
            assert errors == [
                {"field": ["id"], "message": "no such webhook subscription", "code": "NOT_FOUND"}
            ]
    # The owner's subscription is untouched.
    assert (await gql(client, owner, ONE, {"id": sub["id"]}))["data"]["webhookSubscription"][
        "status"
    ] == "ACTIVE"


async def test_without_the_scope_the_fields_do_not_exist(
    client: httpx.AsyncClient, db: Database
) -> None:
    partner = await make_caller(db, OrgKind.DISTRIBUTOR, scopes=SCOPES)
    await token_for(client, partner, "customers:read")
    body = await gql(client, partner, LIST, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in body
    fields = "{ __schema { mutationType { fields { name } } queryType { fields { name } } } }"
    await token_for(client, partner, "customers:read customers:write webhooks:manage")
    schema = (await gql(client, partner, fields))["data"]["__schema"]
    assert "webhookSubscriptions" in {f["name"] for f in schema["queryType"]["fields"]}
    assert "createWebhookSubscription" in {f["name"] for f in schema["mutationType"]["fields"]}
    await token_for(client, partner, "customers:read customers:write")
    schema = (await gql(client, partner, fields))["data"]["__schema"]
    assert "webhookSubscriptions" not in {f["name"] for f in schema["queryType"]["fields"]}
    assert "createWebhookSubscription" not in {f["name"] for f in schema["mutationType"]["fields"]}


async def test_bad_input_and_unsafe_urls_are_user_errors(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = await make_caller(
        db, OrgKind.DISTRIBUTOR, scopes=["customers:read", "webhooks:manage"]
    )
    made = await create(client, partner, "http://127.0.0.1:9/hooks", ["FEEDBACK"])
    assert made["subscription"] is None and made["secret"] is None
    assert made["userErrors"] == [
        {
            "field": ["input", "resources"],
            "message": "receiving Feedback events needs the feedback:read scope",
            "code": "BAD_USER_INPUT",
        }
    ]
    monkeypatch.delenv("HUB_DELIVERY_ALLOW_LOOPBACK")
    for url, reason in (
        ("http://127.0.0.1:9/hooks", "https://"),
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://localhost/hooks", "loopback"),
    ):
        made = await create(client, partner, url)
        [error] = made["userErrors"]
        assert error["field"] == ["input", "url"] and reason in error["message"], error


async def test_deliveries_are_listed_for_their_subscriber(
    client: httpx.AsyncClient, db: Database, receiver: WebhookReceiver
) -> None:
    operator = await make_org(db, OrgKind.OPERATOR, "operator")
    partner = await make_caller(db, OrgKind.DISTRIBUTOR, scopes=SCOPES)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    made = await create(client, partner, receiver.url)
    receiver.secrets.append(made["secret"])
    await touch(db, operator, customer, city="Pau")
    await drain(make_worker(db, fast_settings()))

    page = (await gql(client, partner, DELIVERIES, {"id": made["subscription"]["id"]}))["data"]
    [node] = page["webhookDeliveries"]["nodes"]
    assert node["eventType"] == "Customer.update" and node["status"] == "DELIVERED"
    assert node["attempts"] == 1 and node["responseStatus"] == 200
    assert node["webhookId"] in receiver.accepted
    assert page["webhookDeliveries"]["pageInfo"]["hasNextPage"] is False
    dead = await gql(
        client, partner, DELIVERIES, {"id": made["subscription"]["id"], "status": "DEAD"}
    )
    assert dead["data"]["webhookDeliveries"]["nodes"] == []
