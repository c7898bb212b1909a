"""Write rules of the sharing policy: ``write``/``create`` fields, the ``check`` a row must
satisfy after the write, and ``presets`` forced from the caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from hub import sharing
from hub.access import PolicyRules, access
from hub.customers import CustomerFields, update_customer
from hub.db import Database
from hub.errors import ForbiddenError, InvalidInputError
from hub.feedback import FeedbackSubmission, submit_feedback
from hub.models import Customer, Feedback, Organization
from policies import parse
from tests.conftest import SECRET, make_org
from tests.hub.factories import assign, make_customer

POLICY = """
rules:
  - name: distributors-customers
    subjects: [{kind: distributor}]
    resource: Customer
    rows:
      and:
        - consent_share_with_partners: {eq: true}
        - assignments.organization: {eq: $subject.org}
    read: {visible: [id, name, lifecycle_stage]}
    write:
      fields: [lifecycle_stage]
      check: {lifecycle_stage: {in: [prospect, customer]}}
  - name: distributors-feedback
    subjects: [{kind: distributor}]
    resource: Feedback
    rows: {organization: {eq: $subject.org}}
    read: {visible: [id, text, visibility]}
    create:
      fields: [customer_id, channel, kind, text]
      presets: {organization: $subject.org, visibility: partners}
"""


@pytest.fixture
def policy() -> Iterator[None]:
    saved = access.rules
    access.rules = PolicyRules(
        99, parse(POLICY), sharing.operator_guardrails(), pseudonym_secret=SECRET.encode()
    )
    yield
    access.rules = saved


async def _world(db: Database) -> tuple[Organization, Customer]:
    org = await make_org(db, "distributor", slug="acme")
    customer = await make_customer(
        db, name="Ada", consent_share_with_partners=True, lifecycle_stage="lead"
    )
    await assign(db, customer, org)
    return org, customer


async def test_write_check_refuses_a_row_it_does_not_accept_and_writes_nothing(
    db: Database, policy: None
) -> None:
    org, customer = await _world(db)
    principal = sharing.principal_for(org)
    async with db.transaction() as session:
        record = await update_customer(
            session, principal, customer.id, 1, CustomerFields(lifecycle_stage="prospect")
        )
    assert record.record is not None
    assert record.record["lifecycle_stage"] == "prospect"
    with pytest.raises(ForbiddenError, match="does not let you leave this Customer"):
        async with db.transaction() as session:
            await update_customer(
                session, principal, customer.id, 2, CustomerFields(lifecycle_stage="churned")
            )
    async with db.session() as session:
        stored = await session.get(Customer, customer.id)
        assert stored is not None
        assert (stored.lifecycle_stage, stored.version) == ("prospect", 2)


async def test_fields_outside_write_are_refused_by_name(db: Database, policy: None) -> None:
    org, customer = await _world(db)
    with pytest.raises(InvalidInputError) as info:
        async with db.transaction() as session:
            await update_customer(
                session, sharing.principal_for(org), customer.id, 1, CustomerFields(name="Eve")
            )
    assert [(p.path, p.code) for p in info.value.problems] == [(("patch", "name"), "FORBIDDEN")]


async def test_presets_are_forced_whatever_the_input_says(db: Database, policy: None) -> None:
    org, customer = await _world(db)
    submission = FeedbackSubmission(
        customer_id=customer.id, channel="email", kind="praise", text="Great", visibility="internal"
    )
    async with db.transaction() as session:
        record = await submit_feedback(session, sharing.principal_for(org), submission)
    assert record["visibility"] == "partners"
    async with db.session() as session:
        stored = (await session.execute(select(Feedback))).scalar_one()
    assert (stored.visibility, stored.organization_id) == ("partners", org.id)


UPDATE_PRESET_POLICY = """
rules:
  - name: distributors-customers
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {assignments.organization: {eq: $subject.org}}
    read: {visible: [id, name, lifecycle_stage, segment]}
    write:
      fields: [lifecycle_stage]
      presets: {segment: smb}
"""


async def test_update_presets_are_forced_on_every_update(db: Database) -> None:
    saved = access.rules
    access.rules = PolicyRules(
        98, parse(UPDATE_PRESET_POLICY), [], pseudonym_secret=SECRET.encode()
    )
    try:
        org = await make_org(db, "distributor", slug="acme")
        customer = await make_customer(db, segment="enterprise", provenance={})
        await assign(db, customer, org)
        principal = sharing.principal_for(org)
        async with db.transaction() as session:
            await update_customer(
                session, principal, customer.id, 1, CustomerFields(lifecycle_stage="prospect")
            )
        async with db.session() as session:
            stored = await session.get(Customer, customer.id)
        assert stored is not None
        assert (stored.lifecycle_stage, stored.segment) == ("prospect", "smb")
    finally:
        access.rules = saved
