"""A first end-to-end pass through HTTP, tokens, access and the schema (in-process)."""

from __future__ import annotations

import httpx

from hub.db import Database
from hub.models import Customer, CustomerPartner
from tests.conftest import gql, make_caller


async def test_partner_sees_only_assigned_customers(
    client: httpx.AsyncClient, db: Database
) -> None:
    partner = await make_caller(db, "distributor")
    operator = await make_caller(db, "operator")
    async with db.transaction() as session:
        # Partners see assigned customers who consented to partner sharing (the default
        # policy and the operator's guardrail).
        mine = Customer(
            name="Ada Mine",
            email="ada@example.com",
            phone="+14155552671",
            consent_share_with_partners=True,
        )
        other = Customer(name="Bob Other", consent_share_with_partners=True)
        session.add_all([mine, other])
        await session.flush()
        session.add(
            CustomerPartner(customer_id=mine.id, organization_id=partner.org.id, role="reseller")
        )
    query = "{ customers { totalCount edges { node { name email phone lifetimeValue } } } }"
    # lifetimeValue is not in a partner's schema (DESIGN §5): asking for it is an error.
    refused = await gql(client, partner, query, expect_errors=True)
    assert [e["message"] for e in refused["errors"]] == [
        "Cannot query field 'lifetimeValue' on type 'Customer'."
    ]
    seen = await gql(client, partner, query.replace(" lifetimeValue", ""))
    assert seen["data"]["customers"]["totalCount"] == 1
    node = seen["data"]["customers"]["edges"][0]["node"]
    # Contact details come masked (partial_email, last4).
    assert node == {"name": "Ada Mine", "email": "a***@example.com", "phone": "****2671"}
    everything = await gql(client, operator, query)
    assert everything["data"]["customers"]["totalCount"] == 2
