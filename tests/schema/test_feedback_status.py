"""``updateFeedbackStatus``: the lifecycle NEW -> TRIAGED -> ACTIONED -> CLOSED (skips
allowed, CLOSED reopens to TRIAGED), under the policy's Feedback ``write`` rule (default:
the operator, support, and any department for the feedback it collected), invisible
feedback answered like missing feedback, compare-and-set with ``expectedStatus``, and an
audit event per change."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from hub import feedback, sharing
from hub.db import Database
from hub.errors import ForbiddenError, NotFoundError
from hub.models import AuditEvent, Feedback
from tests.conftest import Caller, gql, make_caller, token_for
from tests.hub.factories import assign, gid, load, make_customer, make_feedback, missing_gid

UPDATE = """mutation($id: ID!, $status: FeedbackStatus!, $expected: FeedbackStatus) {
  updateFeedbackStatus(id: $id, status: $status, expectedStatus: $expected) {
    feedback { id status } userErrors { field message code } } }"""


@pytest.fixture
async def operator(db: Database) -> Caller:
    return await make_caller(db, "operator", slug="operator")


@pytest.fixture
async def support(db: Database) -> Caller:
    return await make_caller(db, "department", slug="support", attributes={"roles": ["support"]})


async def move(
    http: httpx.AsyncClient, caller: Caller, row: Feedback, status: str, **extra: Any
) -> dict[str, Any]:
    return await gql(
        http,
        caller,
        UPDATE,
        {"id": gid(row), "status": status, **extra},
        expect_errors=True,
    )


def payload(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["updateFeedbackStatus"]
    return result


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


async def status_events(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = (
            await session.execute(
                select(AuditEvent)
                .where(col(AuditEvent.action) == "feedback.status")
                .order_by(col(AuditEvent.seq))
            )
        ).scalars()
        return [row.details for row in rows]


async def test_support_walks_the_lifecycle_and_reopens(
    client: httpx.AsyncClient, db: Database, support: Caller, operator: Caller
) -> None:
    customer = await make_customer(db)
    row = await make_feedback(db, customer, operator.org)  # collected by someone else
    for status in ("TRIAGED", "ACTIONED", "CLOSED", "TRIAGED", "CLOSED"):
        result = payload(await move(client, support, row, status))
        assert result == {"feedback": {"id": gid(row), "status": status}, "userErrors": []}
    stored = await load(db, Feedback, row.id)
    assert stored.status == "closed"
    assert stored.updated_at > row.updated_at
    events = await status_events(db)
    assert [e["changes"]["status"] for e in events] == [
        {"before": "new", "after": "triaged"},
        {"before": "triaged", "after": "actioned"},
        {"before": "actioned", "after": "closed"},
        {"before": "closed", "after": "triaged"},
        {"before": "triaged", "after": "closed"},
    ]
    assert {e["resource"] for e in events} == {"Feedback"}


@pytest.mark.parametrize(
    ("start", "to"),
    [("actioned", "NEW"), ("actioned", "TRIAGED"), ("closed", "ACTIONED"), ("triaged", "NEW")],
)
async def test_moves_outside_the_lifecycle_are_user_errors(
    client: httpx.AsyncClient, db: Database, operator: Caller, start: str, to: str
) -> None:
    customer = await make_customer(db)
    row = await make_feedback(db, customer, operator.org, status=start)
    result = payload(await move(client, operator, row, to))
    assert result["feedback"] is None
    [error] = result["userErrors"]
    assert (error["field"], error["code"]) == (["status"], "INVALID_TRANSITION")
    assert start in error["message"]  # says where it is and where it may go
    assert (await load(db, Feedback, row.id)).status == start
    assert await status_events(db) == []


async def test_skipping_steps_is_allowed_and_the_same_status_changes_nothing(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    row = await make_feedback(db, customer, operator.org)
    assert payload(await move(client, operator, row, "CLOSED"))["feedback"]["status"] == "CLOSED"
    again = payload(await move(client, operator, row, "CLOSED"))
    assert again == {"feedback": {"id": gid(row), "status": "CLOSED"}, "userErrors": []}
    assert len(await status_events(db)) == 1


async def test_expected_status_is_a_compare_and_set(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    row = await make_feedback(db, customer, operator.org, status="triaged")
    body = await move(client, operator, row, "ACTIONED", expected="NEW")
    assert codes(body) == ["CONFLICT"]
    assert "triaged" in body["errors"][0]["message"]
    assert (await load(db, Feedback, row.id)).status == "triaged"
    ok = payload(await move(client, operator, row, "ACTIONED", expected="TRIAGED"))
    assert ok["feedback"]["status"] == "ACTIONED"


async def test_concurrent_moves_from_one_status_let_one_win(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    row = await make_feedback(db, customer, operator.org)
    await token_for(client, operator)
    targets = ["TRIAGED", "ACTIONED", "CLOSED"] * 3
    bodies = await asyncio.gather(
        *(move(client, operator, row, to, expected="NEW") for to in targets)
    )
    winners = [b for b in bodies if "errors" not in b]
    assert len(winners) == 1
    assert all(codes(b) == ["CONFLICT"] for b in bodies if "errors" in b)
    won = winners[0]["data"]["updateFeedbackStatus"]["feedback"]["status"]
    assert (await load(db, Feedback, row.id)).status == won.lower()
    assert len(await status_events(db)) == 1


async def test_a_department_triages_its_own_feedback_only(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    marketing = await make_caller(db, "department", attributes={"roles": ["marketing"]})
    customer = await make_customer(db)
    own = await make_feedback(db, customer, marketing.org)
    others = await make_feedback(db, customer, operator.org)
    assert payload(await move(client, marketing, own, "TRIAGED"))["feedback"]["status"] == (
        "TRIAGED"
    )
    # Feedback it cannot read is answered like feedback that does not exist.
    hidden = payload(await move(client, marketing, others, "TRIAGED"))
    missing = await gql(
        client, marketing, UPDATE, {"id": missing_gid("Feedback"), "status": "TRIAGED"}
    )
    garbage = await gql(client, marketing, UPDATE, {"id": "garbage", "status": "TRIAGED"})
    expected = {
        "feedback": None,
        "userErrors": [{"field": ["id"], "message": "no such feedback", "code": "NOT_FOUND"}],
    }
    assert hidden == expected
    assert missing["data"]["updateFeedbackStatus"] == expected
    assert garbage["data"]["updateFeedbackStatus"] == expected
    assert (await load(db, Feedback, others.id)).status == "new"


async def test_a_partner_may_not_change_status_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    partner = await make_caller(db, "distributor", slug="acme-distribution")
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    # Feedback the distributor reads (its own), and feedback it cannot see: no rule lets it
    # write feedback, so the mutation is not in its schema: one answer for both.
    own = await make_feedback(db, customer, partner.org)
    hidden = await make_feedback(db, customer, operator.org)
    bodies = [await move(client, partner, row, "CLOSED") for row in (own, hidden)]
    assert bodies[0] == bodies[1]
    assert set(codes(bodies[0])) == {"GRAPHQL_VALIDATION_FAILED"}
    # Behind the schema the hub refuses too: NOT_FOUND for feedback it cannot see, before
    # anything about its rights; FORBIDDEN for its own.
    principal = sharing.principal_for(partner.org)
    for row, refusal in ((hidden, NotFoundError), (own, ForbiddenError)):
        async with db.transaction() as session:
            with pytest.raises(refusal):
                await feedback.update_feedback_status(session, principal, row.id, "closed")
    for row in (own, hidden):
        assert (await load(db, Feedback, row.id)).status == "new"
    assert await status_events(db) == []


async def test_the_mutation_needs_the_feedback_write_scope(
    client: httpx.AsyncClient, db: Database
) -> None:
    reader = await make_caller(db, "operator", scopes=["customers:read", "feedback:read"])
    customer = await make_customer(db)
    row = await make_feedback(db, customer, reader.org)
    body = await move(client, reader, row, "CLOSED")
    # Without the scope the mutation is not in the caller's schema.
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert (await load(db, Feedback, row.id)).status == "new"
