"""Query counts on list fields: a page's SQL statement count does not grow with its size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from app import create_app
from hub.db import Database, count_statements
from hub.models import CustomerPartner, Feedback
from hub.models._types import utcnow
from hub.settings import Settings
from tests.conftest import Caller, gql, make_caller, make_settings, token_for
from tests.hub.factories import make_customers, save

CUSTOMERS = 64
PAGE = """
query($first: Int!) {
  customers(first: $first) {
    edges { node {
      id name company city region country segment lifecycleStage
      feedback(first: 5) { edges { node { kind text createdAt } } totalCount }
      partners { edges { node { role organization { slug } } } }
    } }
  }
}
"""
# The statements this page needs, at least: the customers page, one windowed feedback
# page, one grouped feedback count, one assignments page and one organizations lookup.
AT_LEAST = 5


async def _seed(db: Database) -> dict[str, Caller]:
    operator = await make_caller(db, "operator", slug="operator")
    partner = await make_caller(db, "distributor", slug="acme-distribution")
    rival = await make_caller(db, "vendor", slug="rival-vendor")
    # Consenting customers: partners see only those (the default policy's guardrail).
    customers = await make_customers(
        db, [{"name": f"C{i:03d}", "consent_share_with_partners": True} for i in range(CUSTOMERS)]
    )
    links, feedback = [], []
    now = utcnow()
    for i, customer in enumerate(customers):
        links.append(
            CustomerPartner(
                customer_id=customer.id, organization_id=partner.org.id, role="reseller"
            )
        )
        if i % 2:
            links.append(
                CustomerPartner(customer_id=customer.id, organization_id=rival.org.id, role="oem")
            )
        for j in range(3 + i % 6):
            feedback.append(
                Feedback(
                    customer_id=customer.id,
                    organization_id=(operator.org if j % 2 else partner.org).id,
                    channel="email",
                    kind="praise",
                    text=f"{i}-{j}",
                    visibility="partners" if j % 3 else "internal",
                    created_at=now - timedelta(minutes=j),
                )
            )
    await save(db, links)
    await save(db, feedback)
    return {"operator": operator, "partner": partner}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The resolver path, whose DataLoaders this module counts (the compiled path, one
    statement per root field, is counted in tests/schema/test_compiled_reads.py)."""
    return make_settings(database_url, compiled_reads=False)


@pytest.fixture
async def callers(db: Database) -> dict[str, Caller]:
    return await _seed(db)


def _check_page(body: dict[str, object], first: int, who: str) -> None:
    edges = body["data"]["customers"]["edges"]  # type: ignore[index]
    assert len(edges) == first
    for edge in edges:
        node = edge["node"]
        feedback = node["feedback"]
        assert 1 <= len(feedback["edges"]) <= 5
        assert feedback["totalCount"] >= len(feedback["edges"])
        slugs = [p["node"]["organization"]["slug"] for p in node["partners"]["edges"]]
        assert "acme-distribution" in slugs
        if who == "partner":
            assert slugs == ["acme-distribution"]


@pytest.mark.parametrize("who", ["partner", "operator"])
async def test_statement_count_does_not_grow_with_page_size(
    client: httpx.AsyncClient, callers: dict[str, Caller], who: str
) -> None:
    caller = callers[who]
    await token_for(client, caller)
    counts = {}
    for first in (10, 50):
        with count_statements() as n:
            body = await gql(client, caller, PAGE, {"first": first})
        _check_page(body, first, who)
        counts[first] = n[0]
    print(f"\n{who}: SQL statements per customers page (count_statements): {counts}")
    assert counts[10] == counts[50]
    # The count must cover the statements the GraphQL execution ran, not only the
    # authentication lookup, or the equality above proves nothing.
    assert counts[10] >= AT_LEAST, counts


@pytest.fixture
async def counting_client(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app that reports each request's statement count in ``X-SQL-Statements``."""
    application = create_app(
        make_settings(database_url, expose_sql_count=True, compiled_reads=False)
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http


@pytest.mark.parametrize("who", ["partner", "operator"])
async def test_statement_count_header_does_not_grow_with_page_size(
    counting_client: httpx.AsyncClient, callers: dict[str, Caller], who: str
) -> None:
    caller = callers[who]
    token = await token_for(counting_client, caller)
    counts = {}
    for first in (10, 50):
        response = await counting_client.post(
            "/graphql",
            json={"query": PAGE, "variables": {"first": first}},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        assert "errors" not in body, body
        _check_page(body, first, who)
        counts[first] = int(response.headers["X-SQL-Statements"])
    print(f"\n{who}: SQL statements per customers page (X-SQL-Statements): {counts}")
    assert counts[10] == counts[50]
    assert AT_LEAST <= counts[10] <= AT_LEAST + 1


async def test_count_statements_nests(db: Database) -> None:
    """An outer ``count_statements`` block also counts what an inner block counts (the
    GraphQL endpoint opens its own block inside every request)."""
    with count_statements() as outer:
        async with db.session() as session:
            await session.execute(CustomerPartner.__table__.select())  # type: ignore[attr-defined]
        with count_statements() as inner:
            async with db.session() as session:
                await session.execute(CustomerPartner.__table__.select())  # type: ignore[attr-defined]
    assert inner[0] == 1
    assert outer[0] == 2
