"""``GET /metrics``: Prometheus text that parses, counts what happened, and carries no
customer data or unbounded values in its labels (hub.metrics)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, select

from app import create_app
from hub.db import Database
from hub.metrics import ANONYMOUS, MAX_OPERATION_NAMES, OTHER, UNMATCHED
from hub.models import Customer, CustomerPartner, PolicyVersion
from hub.settings import Settings, SettingsError, load_settings
from tests.conftest import gql, make_caller, make_settings, token_for

PARTNER_QUERY = "query PartnerCustomers { customers { edges { node { name email } } } }"


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[str, list[Sample]]:
    """The samples of each metric family of one scrape, parsed by prometheus_client."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    """The value of the one sample named ``sample`` with exactly ``labels`` (0 if none)."""
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    found = [
        s.value
        for s in families.get(family, [])
        if s.name == sample and {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


def label_values(families: dict[str, list[Sample]]) -> set[str]:
    return {v for samples in families.values() for s in samples for v in s.labels.values()}


async def _partner_with_customer(db: Database) -> tuple[Any, Customer]:
    partner = await make_caller(db, "distributor")
    async with db.transaction() as session:
        customer = Customer(
            name="Zelda Metricsworth",
            email="zelda.metrics@example.com",
            consent_share_with_partners=True,
        )
        session.add(customer)
        await session.flush()
        session.add(
            CustomerPartner(
                customer_id=customer.id, organization_id=partner.org.id, role="reseller"
            )
        )
    return partner, customer


async def test_metrics_count_tokens_operations_and_failures_without_customer_data(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    partner, customer = await _partner_with_customer(db)
    token = await token_for(client, partner)
    seen = await gql(client, partner, PARTNER_QUERY)
    node = seen["data"]["customers"]["edges"][0]["node"]
    assert node["name"] == customer.name
    # Failures: a wrong secret, a bad bearer token, a validation error, a raw unknown path.
    wrong = base64.b64encode(f"{partner.client_id}:wrong".encode()).decode()
    refused = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert refused.status_code == 401
    unauthenticated = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer nope"}
    )
    assert unauthenticated.status_code == 401
    invalid = await gql(client, partner, "query Broken { nope }", expect_errors=True)
    assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    missing = await client.get(f"/customers/{customer.email}", params={"slug": partner.org.slug})
    assert missing.status_code == 404

    families = await scrape(client)

    assert (
        value(
            families,
            "hub_oauth_token_requests_total",
            grant_type="client_credentials",
            outcome="issued",
        )
        == 1
    )
    assert (
        value(
            families,
            "hub_oauth_token_requests_total",
            grant_type="client_credentials",
            outcome="invalid_client",
        )
        == 1
    )
    assert (
        value(
            families,
            "hub_graphql_operations_total",
            type="query",
            operation="PartnerCustomers",
            outcome="ok",
        )
        == 1
    )
    assert (
        value(
            families,
            "hub_graphql_operations_total",
            type="query",
            operation="Broken",
            outcome="GRAPHQL_VALIDATION_FAILED",
        )
        == 1
    )
    assert value(families, "hub_graphql_operation_duration_seconds_count", type="query") == 2
    requests = "hub_http_requests_total"
    assert value(families, requests, route="/oauth/token", method="POST", status="200") == 1
    assert value(families, requests, route="/oauth/token", method="POST", status="401") == 1
    assert value(families, requests, route="/graphql", method="POST", status="200") == 1
    assert value(families, requests, route="/graphql", method="POST", status="400") == 1
    assert value(families, requests, route="/graphql", method="POST", status="401") == 1
    assert value(families, requests, route=UNMATCHED, method="GET", status="404") == 1
    assert value(families, "hub_http_request_duration_seconds_count", route="/graphql") == 3

    async with db.session() as session:
        installed = (await session.execute(select(func.max(PolicyVersion.number)))).scalar_one()
    assert value(families, "hub_policy_version") == installed >= 1
    assert value(families, "hub_db_pool_size") == settings.db_pool_size
    assert value(families, "hub_db_pool_checked_out") >= 0
    assert "hub_db_pool_idle" in families and "hub_db_pool_overflow" in families
    assert value(families, "hub_audit_reads_pending") >= 0
    assert "hub_audit_reads_dropped" in families

    labels = label_values(families)
    private = {
        partner.client_id,
        partner.org.slug,
        customer.name,
        customer.email,
        node["email"],  # as the partner received it (masked)
        token,
    }
    assert not {v for v in labels for secret in private if secret and secret in v}
    assert not {v for v in labels if "/customers" in v or "?" in v}

    # A second scrape counts the first one.
    again = await scrape(client)
    assert value(again, requests, route="/metrics", method="GET", status="200") == 1


async def test_operation_names_stay_bounded_under_a_flood(
    client: httpx.AsyncClient, db: Database
) -> None:
    partner = await make_caller(db, "distributor")
    await token_for(client, partner)
    names = [f"Flood{n}" for n in range(500)]
    for name in names:
        await gql(client, partner, f"query {name} {{ __typename }}")
    # Not identifiers, or too long: never labels, even while the budget lasts.
    await gql(client, partner, "{ __typename }")
    families = await scrape(client)

    operations = [s for s in families["hub_graphql_operations"] if s.name.endswith("_total")]
    seen = {s.labels["operation"] for s in operations}
    assert len(seen) <= MAX_OPERATION_NAMES + 2
    assert seen <= {*names[:MAX_OPERATION_NAMES], OTHER, ANONYMOUS}
    assert (
        value(families, "hub_graphql_operations_total", type="query", operation=OTHER, outcome="ok")
        == len(names) - MAX_OPERATION_NAMES
    )
    assert (
        value(
            families,
            "hub_graphql_operations_total",
            type="query",
            operation=ANONYMOUS,
            outcome="ok",
        )
        == 1
    )


async def test_a_bad_method_and_a_garbage_operation_name_get_bounded_labels(
    client: httpx.AsyncClient, db: Database
) -> None:
    partner = await make_caller(db, "distributor")
    token = await token_for(client, partner)
    await client.request("BREW", "/graphql")
    response = await client.post(
        "/graphql",
        json={"query": "query A { __typename }", "operationName": "x" * 10_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    families = await scrape(client)
    labels = label_values(families)
    assert "BREW" not in labels
    assert not [v for v in labels if "xxxx" in v]
    assert (
        value(families, "hub_http_requests_total", route="/graphql", method=OTHER, status="405")
        == 1
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http


async def test_metrics_token_is_required_when_set(db: Database, database_url: str) -> None:
    secret = "scrape-" + "s" * 24
    async with running(make_settings(database_url, metrics_token=secret)) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer " + "w" * 31})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == 'Bearer realm="metrics"'
        families = await scrape(http, Authorization=f"Bearer {secret}")
        assert value(families, "hub_policy_version") >= 1


async def test_metrics_can_be_turned_off(db: Database, database_url: str) -> None:
    async with running(make_settings(database_url, metrics=False)) as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200


def test_a_short_metrics_token_is_refused_at_start_up() -> None:
    with pytest.raises(SettingsError, match="HUB_METRICS_TOKEN"):
        load_settings(metrics_token="short")
