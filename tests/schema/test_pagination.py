"""Keyset pagination and filters: every visible row exactly once, in every ordering and
direction (ties included); refused cursors; filter counts.

The partner is a distributor: under the default sharing policy it sees the customers
assigned to it *and* consenting to partner sharing, so the seeds mix both conditions."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.models import Customer
from schema.ids import from_global_id
from tests.conftest import Caller, gql, make_caller
from tests.hub.factories import assign, gid, make_customers, make_feedback

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
NAMES = ["alpha", "bravo", "charlie", "delta"]
# 30 customers: 4 names, 5 creation times and 3 update times, so every ordering has ties
# that only the id breaks. The partner is assigned 20 of them (i % 3 != 2); 24 consent to
# partner sharing (i % 5 != 4); it sees the 16 that are both.
ROWS = [
    {
        "name": NAMES[i % 4],
        "created_at": T0 + timedelta(hours=i % 5),
        "updated_at": T0 + timedelta(days=i % 3),
        "consent_share_with_partners": i % 5 != 4,
    }
    for i in range(30)
]
ORDER_COLUMNS = {"NAME": "name", "UPDATED_AT": "updated_at", "CREATED_AT": "created_at"}
# What the distributor sees in clear (policies/defaults/default.yaml); it may order by
# nothing else: an ordering reveals how values compare, and cursors carry them.
PARTNER_ORDERS = ("NAME", "UPDATED_AT")

PAGE = """
query($first: Int, $after: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, orderBy: $order) {
    totalCount
    edges { cursor node { id name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@dataclass
class Seeded:
    operator: Caller
    partner: Caller
    customers: list[Customer]
    visible: list[Customer]  # to the partner: assigned and consenting


@pytest.fixture
async def seeded(db: Database) -> Seeded:
    operator = await make_caller(db, "operator")
    partner = await make_caller(db, "distributor")
    customers = await make_customers(db, ROWS)
    for i, customer in enumerate(customers):
        if i % 3 != 2:
            await assign(db, customer, partner.org)
    visible = [c for i, c in enumerate(customers) if i % 3 != 2 and i % 5 != 4]
    assert len(visible) == 16
    return Seeded(operator, partner, customers, visible)


def _decode(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _uuid(global_id: str) -> uuid.UUID:
    parsed = from_global_id(global_id)
    assert parsed is not None
    return parsed[1]


async def walk(
    http: httpx.AsyncClient, caller: Caller, order: dict[str, str], first: int
) -> tuple[list[uuid.UUID], list[dict[str, Any]]]:
    """Follow ``endCursor`` to the end; returns the ids seen and every connection."""
    seen: list[uuid.UUID] = []
    pages: list[dict[str, Any]] = []
    after = None
    for _ in range(100):
        body = await gql(http, caller, PAGE, {"first": first, "after": after, "order": order})
        page = body["data"]["customers"]
        pages.append(page)
        seen.extend(_uuid(edge["node"]["id"]) for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return seen, pages
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("first", [4, 7])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize(
    ("who", "field"),
    [("partner", field) for field in PARTNER_ORDERS]
    + [("operator", field) for field in ORDER_COLUMNS],
)
async def test_paging_visits_every_visible_customer_once_in_order(
    client: httpx.AsyncClient, seeded: Seeded, who: str, field: str, direction: str, first: int
) -> None:
    caller = seeded.partner if who == "partner" else seeded.operator
    visible = seeded.visible if who == "partner" else seeded.customers
    seen, pages = await walk(client, caller, {"field": field, "direction": direction}, first)

    column = ORDER_COLUMNS[field]
    expected = sorted(
        visible, key=lambda c: (getattr(c, column), c.id), reverse=direction == "DESC"
    )
    assert seen == [c.id for c in expected]
    assert len(set(seen)) == len(visible)

    for index, page in enumerate(pages):
        info, edges = page["pageInfo"], page["edges"]
        assert page["totalCount"] == len(visible)
        assert info["hasPreviousPage"] is (index > 0)
        assert info["hasNextPage"] is (index < len(pages) - 1)
        assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
        assert len(edges) == (first if index < len(pages) - 1 else len(visible) - first * index)


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_partner_may_not_order_by_a_field_it_does_not_see(
    client: httpx.AsyncClient, seeded: Seeded, direction: str
) -> None:
    # The distributor does not see createdAt (absent from its Customer type): ordering by
    # it would reveal how creation times compare, and every cursor would carry one in clear.
    described = await gql(
        client, seeded.partner, '{ __type(name: "Customer") { fields { name } } }'
    )
    assert "createdAt" not in {f["name"] for f in described["data"]["__type"]["fields"]}
    order = {"field": "CREATED_AT", "direction": direction}
    body = await gql(client, seeded.partner, PAGE, {"first": 4, "order": order}, expect_errors=True)
    edges = ((body.get("data") or {}).get("customers") or {}).get("edges") or []
    carried = [_decode(edge["cursor"]) for edge in edges]
    assert body.get("data") is None, f"ordered by createdAt; its cursors carry it: {carried}"
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert codes in ({"BAD_USER_INPUT"}, {"GRAPHQL_VALIDATION_FAILED"}), body
    # The same request as the operator, who sees createdAt, pages normally.
    allowed = await gql(client, seeded.operator, PAGE, {"first": 4, "order": order})
    assert allowed["data"]["customers"]["totalCount"] == len(seeded.customers)


async def test_page_size_bounds(client: httpx.AsyncClient, seeded: Seeded) -> None:
    body = await gql(client, seeded.operator, PAGE, {"first": 0})
    assert body["data"]["customers"]["edges"] == []
    assert body["data"]["customers"]["pageInfo"]["hasNextPage"] is True
    default = await gql(client, seeded.operator, PAGE)
    assert len(default["data"]["customers"]["edges"]) == 20  # default_page_size
    for first in (-1, 101):
        refused = await gql(client, seeded.operator, PAGE, {"first": first}, expect_errors=True)
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]


def _encode(data: Any) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _cursor(http: httpx.AsyncClient, caller: Caller, order: dict[str, str]) -> str:
    body = await gql(http, caller, PAGE, {"first": 2, "order": order})
    return str(body["data"]["customers"]["pageInfo"]["endCursor"])


async def test_garbage_and_foreign_cursors_are_bad_user_input(
    client: httpx.AsyncClient, seeded: Seeded, db: Database
) -> None:
    operator = seeded.operator
    some_id = str(seeded.customers[0].id)
    name_asc = await _cursor(client, operator, {"field": "NAME", "direction": "ASC"})
    updated_desc = await _cursor(client, operator, {"field": "UPDATED_AT", "direction": "DESC"})
    await make_feedback(db, seeded.customers[0], operator.org)
    await make_feedback(db, seeded.customers[0], operator.org)
    feedback_page = await gql(client, operator, "{ feedback(first: 1) { pageInfo { endCursor } } }")
    feedback_cursor = feedback_page["data"]["feedback"]["pageInfo"]["endCursor"]

    cases: list[tuple[str, str, dict[str, str]]] = [
        ("garbage", "garbage!!", {"field": "NAME", "direction": "ASC"}),
        ("not base64 json", "bm90IGpzb24", {"field": "NAME", "direction": "ASC"}),
        ("a json object", _encode({"k": "name:asc"}), {"field": "NAME", "direction": "ASC"}),
        ("empty list", _encode([]), {"field": "NAME", "direction": "ASC"}),
        ("too few values", _encode(["name:asc", "alpha"]), {"field": "NAME", "direction": "ASC"}),
        ("bad uuid", _encode(["name:asc", "alpha", "nope"]), {"field": "NAME", "direction": "ASC"}),
        (
            "bad time",
            _encode(["updated_at:asc", "yesterday", some_id]),
            {"field": "UPDATED_AT", "direction": "ASC"},
        ),
        ("other direction", name_asc, {"field": "NAME", "direction": "DESC"}),
        ("other field", name_asc, {"field": "CREATED_AT", "direction": "ASC"}),
        ("other field and direction", updated_desc, {"field": "UPDATED_AT", "direction": "ASC"}),
        ("another list", feedback_cursor, {"field": "NAME", "direction": "ASC"}),
    ]
    for label, cursor, order in cases:
        body = await gql(
            client,
            operator,
            PAGE,
            {"first": 2, "after": cursor, "order": order},
            expect_errors=True,
        )
        assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["BAD_USER_INPUT"], (
            label
        )
    # ...and the customers cursor is refused by the feedback list and its nested form.
    refused = await gql(
        client,
        operator,
        "query($a: String) { feedback(after: $a) { totalCount } }",
        {"a": name_asc},
        expect_errors=True,
    )
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    nested = await gql(
        client,
        operator,
        "query($a: String) { customers(first: 1) { edges { node { feedback(after: $a) "
        "{ totalCount } } } } }",
        {"a": name_asc},
        expect_errors=True,
    )
    assert {e["extensions"]["code"] for e in nested["errors"]} == {"BAD_USER_INPUT"}


async def test_nested_feedback_pages_visit_every_visible_item_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    operator = await make_caller(db, "operator")
    partner = await make_caller(db, "distributor")
    [customer] = await make_customers(db, [{"name": "Ada", "consent_share_with_partners": True}])
    await assign(db, customer, partner.org)
    visible = set()
    for i in range(13):
        # Seven share one timestamp: only the id orders them.
        at = T0 if i < 7 else T0 + timedelta(minutes=i)
        row = await make_feedback(
            db,
            customer,
            operator.org,
            created_at=at,
            visibility="partners" if i % 4 else "internal",
        )
        if i % 4:
            visible.add(gid(row))
    query = """query($id: ID!, $after: String) { customer(id: $id) {
        feedback(first: 3, after: $after) { totalCount edges { node { id } }
          pageInfo { hasNextPage endCursor } } } }"""
    for caller, expected in ((partner, len(visible)), (operator, 13)):
        seen: list[str] = []
        after = None
        while True:
            body = await gql(client, caller, query, {"id": gid(customer), "after": after})
            connection = body["data"]["customer"]["feedback"]
            assert connection["totalCount"] == expected
            seen.extend(edge["node"]["id"] for edge in connection["edges"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == expected
        if caller is partner:
            assert set(seen) == visible


# --- filters --------------------------------------------------------------------------

COUNT = "query($filter: CustomerFilter) { customers(filter: $filter) { totalCount edges { node { name } } } }"


@pytest.fixture
async def catalogue(db: Database) -> tuple[Caller, Caller]:
    operator = await make_caller(db, "operator")
    partner = await make_caller(db, "distributor")
    rows: list[dict[str, Any]] = [
        {"name": "100% Organic", "company": "Green_Leaf Ltd", "region": "north", "segment": "smb"},
        {"name": "100 Percent Pure", "company": "Leafy", "region": "north", "segment": "smb"},
        {"name": "Under_score", "company": None, "region": "south", "segment": "enterprise"},
        {"name": "UnderXscore", "company": "Xco", "region": "south", "segment": "enterprise"},
        {"name": "Back\\Slash", "company": "Escapes Inc", "region": "east", "segment": "consumer"},
        {"name": "Ada Lovelace", "company": "ANALYTICAL engines", "region": "east"},
        {"name": "Charles Babbage", "company": "Analytical Engines", "lifecycle_stage": "churned"},
    ]
    for days, row in enumerate(rows):
        row.setdefault("segment", "mid_market")
        row.setdefault("lifecycle_stage", "lead" if days % 2 else "customer")
        row["updated_at"] = T0 + timedelta(days=days)
    for index, row in enumerate(rows):
        # Consent: the partner's four, and one it is not assigned ("UnderXscore").
        row["consent_share_with_partners"] = index % 2 == 0
    rows[3]["consent_share_with_partners"] = True
    customers = await make_customers(db, rows)
    for customer in customers[::2]:  # the partner serves the 1st, 3rd, 5th and 7th
        await assign(db, customer, partner.org)
    # ...and the 2nd, which did not consent to partner sharing: it sees none of it.
    await assign(db, customers[1], partner.org)
    return operator, partner


@pytest.mark.parametrize(
    ("flt", "everyone", "partner"),
    [
        ({}, 7, 4),
        ({"search": "%"}, {"100% Organic"}, {"100% Organic"}),
        ({"search": "100%"}, {"100% Organic"}, {"100% Organic"}),
        ({"search": "_"}, {"100% Organic", "Under_score"}, {"100% Organic", "Under_score"}),
        ({"search": "under_"}, {"Under_score"}, {"Under_score"}),
        ({"search": "\\"}, {"Back\\Slash"}, {"Back\\Slash"}),
        ({"search": "ORGANIC"}, {"100% Organic"}, {"100% Organic"}),
        ({"search": "  green_leaf "}, {"100% Organic"}, {"100% Organic"}),  # company
        ({"search": "analytical"}, {"Ada Lovelace", "Charles Babbage"}, {"Charles Babbage"}),
        ({"search": "leaf"}, {"100% Organic", "100 Percent Pure"}, {"100% Organic"}),
        ({"search": "nothing like it"}, 0, 0),
        ({"region": "north"}, {"100% Organic", "100 Percent Pure"}, {"100% Organic"}),
        ({"segment": "ENTERPRISE"}, {"Under_score", "UnderXscore"}, {"Under_score"}),
        ({"lifecycleStage": "CHURNED"}, {"Charles Babbage"}, {"Charles Babbage"}),
        ({"lifecycleStage": "LEAD"}, 3, 0),
        (
            {"updatedSince": "2024-05-05T10:00:00+00:00"},
            {"Back\\Slash", "Ada Lovelace", "Charles Babbage"},
            2,
        ),
        # 11:30+02:00 is 09:30Z: the customer updated at 10:00Z on 05-05 is included.
        ({"updatedSince": "2024-05-05T11:30:00+02:00"}, 3, 2),
        ({"updatedSince": "2024-05-05T10:00:01Z"}, 2, 1),
        ({"region": "south", "search": "x"}, {"UnderXscore"}, 0),
        ({"region": "east", "segment": "CONSUMER", "updatedSince": "2024-05-01T00:00:00Z"}, 1, 1),
    ],
)
async def test_filters_give_the_right_total_count(
    client: httpx.AsyncClient,
    catalogue: tuple[Caller, Caller],
    flt: dict[str, Any],
    everyone: set[str] | int,
    partner: set[str] | int,
) -> None:
    for caller, expected in zip(catalogue, (everyone, partner), strict=True):
        body = await gql(client, caller, COUNT, {"filter": flt})
        connection = body["data"]["customers"]
        found = {edge["node"]["name"] for edge in connection["edges"]}
        if isinstance(expected, int):
            assert connection["totalCount"] == len(found) == expected
        else:
            assert found == expected
            assert connection["totalCount"] == len(expected)


@pytest.mark.parametrize("search", ["müller", "MÜLLER", "Müller", "ÉCOLE", "école"])
async def test_search_is_case_insensitive_beyond_ascii(
    client: httpx.AsyncClient, db: Database, search: str
) -> None:
    operator = await make_caller(db, "operator")
    await make_customers(db, [{"name": "Müller GmbH"}, {"name": "Sam", "company": "École Verte"}])
    body = await gql(client, operator, COUNT, {"filter": {"search": search}})
    assert body["data"]["customers"]["totalCount"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "query($t: DateTime) { customers(filter: {updatedSince: $t}) { totalCount } }",
        "query($t: DateTime) { feedback(filter: {since: $t}) { totalCount } }",
    ],
)
async def test_time_filter_without_offset_is_bad_user_input(
    client: httpx.AsyncClient, catalogue: tuple[Caller, Caller], query: str
) -> None:
    operator, _ = catalogue
    body = await gql(client, operator, query, {"t": "2024-05-05T10:00:00"}, expect_errors=True)
    # Refused as bad input, or read as UTC; never an internal error.
    if "errors" in body:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    else:
        assert body == await gql(client, operator, query, {"t": "2024-05-05T10:00:00Z"})
