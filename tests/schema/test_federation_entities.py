"""Federation ``_entities`` for the three keyed types (Customer, Feedback, Case): batched
under the access module (one statement per type per request, however many
representations), and a record the caller may not see answers ``null`` exactly like one
that does not exist."""

from __future__ import annotations

import pytest

from hub.db import Database
from hub.models.case import Case
from hub.settings import Settings
from schema.ids import to_global_id
from tests.conftest import Caller, make_caller, make_settings, token_for
from tests.hub.factories import assign, gid, make_customers, make_feedback, missing_gid

ENTITIES = """
query ($r: [_Any!]!) {
  _entities(representations: $r) {
    __typename
    ... on Customer { id name }
    ... on Feedback { id text }
    ... on Case { id subject }
  }
}
"""


@pytest.fixture(params=[False, True], ids=["resolvers", "compiled"])
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    return make_settings(database_url, compiled_reads=request.param, expose_sql_count=True)


async def _entities(
    client: object, caller: Caller, representations: list[dict[str, str]], query: str = ENTITIES
) -> tuple[list[object], int]:
    import httpx

    assert isinstance(client, httpx.AsyncClient)
    token = caller.token or await token_for(client, caller)
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": {"r": representations}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]["_entities"], int(response.headers["X-SQL-Statements"])


async def _world(db: Database, count: int) -> tuple[Caller, Caller, list[dict[str, str]]]:
    operator = await make_caller(db, "operator", slug="operator")
    partner = await make_caller(db, "distributor", slug="acme-distribution")
    customers = await make_customers(
        db, [{"name": f"C{i:02d}", "consent_share_with_partners": True} for i in range(count)]
    )
    representations: list[dict[str, str]] = []
    for i, customer in enumerate(customers):
        feedback = await make_feedback(
            db, customer, operator.org, text=f"F{i}", visibility="partners"
        )
        case = Case(
            customer_id=customer.id,
            organization_id=operator.org.id,
            opened_by_id=operator.org.id,
            subject=f"S{i}",
            description="A broken zip.",
            product="tent",
        )
        async with db.transaction() as session:
            session.add(case)
        representations += [
            {"__typename": "Customer", "id": gid(customer)},
            {"__typename": "Feedback", "id": gid(feedback)},
            {"__typename": "Case", "id": to_global_id("Case", case.id)},
        ]
        if i % 2 == 0:  # the partner serves every other customer
            await assign(db, customer, partner.org)
    return operator, partner, representations


# The resolver path's DataLoaders (the compiled path answers _entities in one statement
# on PostgreSQL; its record path, on SQLite, reads one record at a time: issue 11).
@pytest.mark.parametrize("settings", [False], indirect=True, ids=["resolvers"])
async def test_entities_cost_one_statement_per_type_however_many(
    client: object, db: Database
) -> None:
    operator, _, representations = await _world(db, 20)
    small, small_count = await _entities(client, operator, representations[:3])
    large, large_count = await _entities(client, operator, representations)
    assert [e["__typename"] for e in small] == ["Customer", "Feedback", "Case"]  # type: ignore[index]
    assert len(large) == 60 and all(e is not None for e in large)
    assert large_count == small_count <= 3, (small_count, large_count)
    names = [e["name"] for e in large if e["__typename"] == "Customer"]  # type: ignore[index]
    assert names == [f"C{i:02d}" for i in range(20)]


async def test_entities_not_visible_answer_like_nonexistent(client: object, db: Database) -> None:
    _, partner, representations = await _world(db, 4)
    # A distributor's schema has no Case (its policy shows none): Customer and Feedback.
    query = ENTITIES.replace("... on Case { id subject }", "")
    customers = [r for r in representations if r["__typename"] == "Customer"]
    unknown = [
        {"__typename": "Customer", "id": missing_gid("Customer")},
        {"__typename": "Feedback", "id": missing_gid("Feedback")},
    ]
    seen, _ = await _entities(client, partner, [*customers, *unknown], query)
    # Customers 0 and 2 are served by the partner; 1 and 3 are not: null, like unknown ids.
    assert [e is not None for e in seen] == [True, False, True, False, False, False]
    # Feedback about customers the partner does not serve is never shown to it.
    others = [r for i, r in enumerate(representations) if (i // 3) % 2 and i % 3 == 1]
    assert (await _entities(client, partner, others, query))[0] == [None] * len(others)


def test_the_entities_subgraphs_may_extend_are_the_schema_s() -> None:
    from graphql import GraphQLObjectType, GraphQLUnionType

    from hub.federation.sdl import ENTITIES, reserved_fields
    from schema import build_schema

    schema = build_schema(make_settings("sqlite+aiosqlite:///unused.db"))._schema
    union = schema.type_map["_Entity"]
    assert isinstance(union, GraphQLUnionType)
    assert {member.name for member in union.types} == set(ENTITIES)
    # A subgraph may not add a field the hub's entity has: the store knows them all.
    for name in ENTITIES:
        type_ = schema.type_map[name]
        assert isinstance(type_, GraphQLObjectType)
        assert set(type_.fields) <= reserved_fields(name), name
