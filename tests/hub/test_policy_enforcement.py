"""The published policy as the access module enforces it, on the hub's real tables.

- ``explain_access`` (the plain evaluator) agrees with what the access module actually
  returns, for every demo organization and a sample of every resource's records;
- for random policy documents over the hub's catalog, the SQL row filter selects exactly
  the rows the oracle allows, every projected value is the true value or its mask as the
  oracle decides, and nothing the oracle hides is returned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import col

from hub import sharing
from hub.access import WITHHELD, Record, Resource, access
from hub.access.catalog import CATALOG, TYPES
from hub.access.policy_rules import PolicyRules, caller_of
from hub.db import Database
from hub.demo import seed_demo
from hub.models import Organization
from policies import (
    And,
    Compare,
    Condition,
    Document,
    Effect,
    MaskSpec,
    Not,
    Outcome,
    Read,
    Rule,
    Subject,
    Variable,
    apply_mask,
    evaluate,
)
from tests.conftest import SECRET

KEY = SECRET.encode()
SAMPLE = 12  # records per resource and organization
EXAMPLES = int(os.environ.get("HUB_HYPOTHESIS_EXAMPLES", "200")) // 2 or 1


@pytest.fixture
async def demo(db: Database) -> list[Organization]:
    async with db.transaction() as session:
        await seed_demo(session, customers=60, seed=11)
    async with db.session() as session:
        orgs = list((await session.execute(select(Organization))).scalars())
    return orgs


@pytest.fixture
def rules_restored() -> Iterator[None]:
    saved = access.rules
    yield
    access.rules = saved


def _equal(a: Any, b: Any) -> bool:
    return a == b or (str(a) == str(b) and a is not None and b is not None)


async def test_explain_agrees_with_what_each_demo_organization_receives(
    db: Database, demo: list[Organization], rules_restored: None
) -> None:
    checked = 0
    async with db.session() as session:
        current = await sharing.current_version(session)
        assert current is not None
        access.rules = sharing.rules_for(current, KEY)
        for org in demo:
            principal = sharing.principal_for(org)
            for resource in Resource:
                model: Any = access_model(resource)
                ids = list(
                    (
                        await session.execute(
                            select(model.id).order_by(col(model.id)).limit(SAMPLE)
                        )
                    ).scalars()
                )
                received = await _received(session, principal, resource, ids)
                for record_id in ids:
                    why = await sharing.explain_access(session, org.slug, resource, record_id)
                    got = received.get(record_id)
                    assert why["row"]["visible"] == (got is not None), (org.slug, resource, why)
                    if got is None:
                        continue
                    truth = await sharing.policy_record(session, resource, record_id)
                    assert truth is not None
                    for name, field in why["fields"].items():
                        if name == "id":
                            continue
                        if field["outcome"] == "visible":
                            assert _equal(got.get(name), truth[name]), (org.slug, name)
                        elif field["outcome"] == "masked":
                            masked = apply_mask(
                                MaskSpec(field["mask"]),
                                truth[name],
                                secret=access.rules.pseudonym_secret,
                                partner=org.slug,
                            )
                            assert got.get(name) == masked, (org.slug, name)
                        else:
                            assert name not in got, (org.slug, resource, name)
                    checked += 1
    assert checked > 100  # the sample really covered visible records


def access_model(resource: Resource) -> Any:
    from hub.access.resources import MODELS

    return MODELS[resource]


async def _received(
    session: Any, principal: Any, resource: Resource, ids: list[Any]
) -> dict[Any, Record]:
    if not access.rules.may(principal, resource, access_action_read()):
        return {}
    model = access_model(resource)
    statement = access.select(principal, resource).where(model.id.in_(ids))
    rows = (await session.execute(statement)).all()
    return {row.id: access.project(principal, resource, row) for row in rows}


def access_action_read() -> Any:
    from hub.access import Action

    return Action.READ


# -- random policies over the real tables ------------------------------------------------

CUSTOMER_FIELDS = sorted(TYPES[Resource.CUSTOMER])
STRING_FIELDS = [n for n, t in TYPES[Resource.CUSTOMER].items() if t.value == "string"]

compares: st.SearchStrategy[Condition] = st.one_of(
    st.builds(
        Compare,
        st.just("region"),
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["NA", "EMEA", "LATAM", "APAC"]),
    ),
    st.builds(
        Compare, st.just("region"), st.just("in"), st.just(Variable("subject.attributes.regions"))
    ),
    st.builds(
        Compare, st.just("lifetime_value"), st.sampled_from(["gt", "lte"]), st.integers(0, 3000)
    ),
    st.builds(
        Compare,
        st.sampled_from(["consent_share_with_partners", "consent_marketing_opt_in"]),
        st.just("eq"),
        st.booleans(),
    ),
    st.builds(
        Compare,
        st.just("assignments.organization"),
        st.just("eq"),
        st.sampled_from([Variable("subject.org"), "acme-distribution", "nobody"]),
    ),
    st.builds(Compare, st.sampled_from(["email", "company"]), st.just("is_null"), st.booleans()),
    st.builds(
        Compare,
        st.just("segment"),
        st.sampled_from(["in", "nin"]),
        st.just(("consumer", "smb")),
    ),
)
conditions = st.recursive(
    compares,
    lambda inner: st.one_of(
        st.builds(lambda xs: And(tuple(xs)), st.lists(inner, min_size=1, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=4,
)
subjects = st.sampled_from(
    [
        Subject(kind="distributor"),
        Subject(kind="department"),
        Subject(org="acme-distribution"),
        Subject(kind="operator"),
    ]
)
masks = st.sampled_from(
    [
        MaskSpec("partial_email"),
        MaskSpec("last4"),
        MaskSpec("initials"),
        MaskSpec("redact"),
        MaskSpec("pseudonym"),
    ]
)


@st.composite
def rules(draw: st.DrawFn, index: int) -> Rule:
    effect = draw(st.sampled_from([Effect.ALLOW, Effect.ALLOW, Effect.DENY]))
    visible = tuple(draw(st.lists(st.sampled_from(CUSTOMER_FIELDS), max_size=8, unique=True)))
    masked_names = draw(st.lists(st.sampled_from(STRING_FIELDS), max_size=3, unique=True))
    masked = {n: draw(masks) for n in masked_names if n not in visible}
    return Rule(
        name=f"r{index}",
        resource="Customer",
        subjects=(draw(subjects),),
        effect=effect,
        rows=draw(st.none() | conditions),
        read=Read(visible, masked) if effect is Effect.ALLOW else Read(),
        fields=tuple(draw(st.lists(st.sampled_from(CUSTOMER_FIELDS), max_size=2, unique=True)))
        if effect is Effect.DENY
        else (),
        index=index,
    )


@st.composite
def documents(draw: st.DrawFn) -> Document:
    count = draw(st.integers(1, 4))
    return Document(rules=tuple(draw(rules(i)) for i in range(count)))


# Always tried: fields shown on some rows only, and a mask (the marketing rule's shape).
ROW_DEPENDENT = Document(
    rules=(
        Rule("base", "Customer", (Subject(kind="department"),), read=Read(("name", "city"))),
        Rule(
            "contacts",
            "Customer",
            (Subject(kind="department"),),
            rows=Compare("consent_marketing_opt_in", "eq", True),
            read=Read(("email",), {"phone": MaskSpec("last4")}),
            index=1,
        ),
    )
)


@pytest.fixture
async def records(
    db: Database, demo: list[Organization]
) -> tuple[list[Organization], dict[Any, dict[str, Any]]]:
    async with db.session() as session:
        ids = list((await session.execute(select(access_model(Resource.CUSTOMER).id))).scalars())
        truth = {i: await sharing.policy_record(session, Resource.CUSTOMER, i) for i in ids}
    return demo, {i: r for i, r in truth.items() if r is not None}


async def test_random_policies_on_real_tables_match_the_oracle(
    db: Database,
    records: tuple[list[Organization], dict[Any, dict[str, Any]]],
    rules_restored: None,
) -> None:
    orgs, truth = records
    by_slug = {o.slug: o for o in orgs}
    callers = [by_slug[s] for s in ("acme-distribution", "eurotrade-partners", "sales", "operator")]

    # Hypothesis drives a synchronous test body; the database work runs in the test's loop.
    examples: list[tuple[Document, Organization]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(documents(), st.sampled_from(callers))
    @example(ROW_DEPENDENT, by_slug["sales"])
    def collect(document: Document, org: Organization) -> None:
        examples.append((document, org))

    collect()
    secret = b"k" * 32
    seen = {"rows": 0, "masked": 0, "withheld": 0}
    async with db.session() as session:
        for document, org in examples:
            rules_ = PolicyRules(1, document, (), pseudonym_secret=secret)
            access.rules = rules_
            principal = sharing.principal_for(org)
            caller = caller_of(principal)
            if not rules_.may(principal, Resource.CUSTOMER, access_action_read()):
                continue
            rows = (await session.execute(access.select(principal, Resource.CUSTOMER))).all()
            got = {row.id: access.project(principal, Resource.CUSTOMER, row) for row in rows}
            expected = {
                i
                for i, r in truth.items()
                if evaluate(document, CATALOG, caller, "Customer", r).row_visible
            }
            assert set(got) == expected, document
            seen["rows"] += len(got)
            for record_id, record in got.items():
                decision = evaluate(document, CATALOG, caller, "Customer", truth[record_id])
                for name in TYPES[Resource.CUSTOMER]:
                    fd = decision.fields[name]
                    value = truth[record_id][name]
                    if name == "id":
                        assert record["id"] == record_id
                    elif fd.outcome is Outcome.VISIBLE:
                        assert _equal(record[name], value), (name, document)
                    elif fd.outcome is Outcome.MASKED:
                        seen["masked"] += 1
                        assert fd.mask is not None
                        assert record[name] == apply_mask(
                            fd.mask, value, secret=secret, partner=org.slug
                        ), (name, document)
                    else:
                        assert name not in record, (name, document)
                        seen["withheld"] += name in record.get(WITHHELD, frozenset())
                        assert name in record.get(WITHHELD, frozenset()) or name not in (
                            rules_.shown_fields(principal, Resource.CUSTOMER)
                        )
    # The random documents really exercised rows, masks and row-dependent hiding.
    assert all(seen.values()), seen
