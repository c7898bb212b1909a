"""Row filters written with their boolean and uuid values in the SQL text
(:func:`hub.access.policy_rules.plannable`), so that PostgreSQL plans a partner's
statement once instead of at every execution.

- a distributor's customer filter names its consent and organization as literals, on both
  dialects, and keeps strings bound;
- a nested read's filter still reads its enclosing row (no second copy of it in ``FROM``);
- on both backends, every demo organization's row filter selects the same rows written
  inline as bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg.pgproto.pgproto as pgproto
import pytest
from sqlalchemy import Boolean, Uuid, literal, literal_column, select
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from hub import sharing
from hub.access import Resource, access
from hub.access import policy_rules as policy_rules_module
from hub.access.policy_rules import PolicyRules, plannable
from hub.db import Database
from hub.demo import seed_demo
from hub.models import Customer, Feedback, Organization, OrgKind
from hub.principal import Principal
from policies import parse

CUSTOMER = Customer.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
POSTGRESQL = asyncpg.dialect()  # type: ignore[no-untyped-call]
SQLITE = aiosqlite.dialect()


def default_rules() -> PolicyRules:
    document = parse(sharing.default_source())
    return PolicyRules(
        1,
        document,
        [*sharing.operator_guardrails(), *document.guardrails],
        pseudonym_secret=b"k" * 32,
    )


def distributor(org_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        client_id="acme-client",
        organization_id=org_id or uuid.uuid4(),
        organization_slug="acme",
        organization_kind=OrgKind.DISTRIBUTOR,
        scopes=frozenset({"customers:read", "feedback:read"}),
    )


def compiled(statement: Any, dialect: Dialect) -> SQLCompiler:
    done = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(done, SQLCompiler)
    return done


@pytest.mark.parametrize("dialect", [POSTGRESQL, SQLITE], ids=["postgresql", "sqlite"])
def test_a_distributors_customer_filter_is_written_with_its_values(dialect: Dialect) -> None:
    who = distributor()
    where = default_rules().row_filter(who, Resource.CUSTOMER)
    done = compiled(select(CUSTOMER.c.id).where(where), dialect)
    if dialect is POSTGRESQL:
        assert f"organization_id = '{who.organization_id}'::UUID" in done.string
        assert "consent_share_with_partners = true" in done.string
    else:
        assert f"organization_id = '{who.organization_id.hex}'" in done.string
        assert "consent_share_with_partners = 1" in done.string
    assert not done.positiontup


def test_strings_stay_bound_and_the_caller_id_is_written() -> None:
    who = distributor()
    where = default_rules().row_filter(who, Resource.FEEDBACK)
    done = compiled(select(FEEDBACK.c.id).where(where), POSTGRESQL)
    assert "'partners'" not in done.string
    assert "partners" in done.construct_params().values()
    assert f"'{who.organization_id}'::UUID" in done.string


def test_a_nested_filter_still_reads_its_enclosing_row() -> None:
    who = distributor()
    enclosing = CUSTOMER.alias("enclosing")
    where = default_rules().row_filter_within(who, Resource.FEEDBACK, "customer", enclosing)
    inner = select(FEEDBACK.c.id).where(FEEDBACK.c.customer_id == enclosing.c.id, where)
    outer = select(enclosing.c.id, inner.limit(1).scalar_subquery())
    sql = compiled(outer, POSTGRESQL).string
    # One enclosing row, read by the feedback's filter (not a second, uncorrelated copy).
    assert sql.count("AS enclosing") == 1
    assert "enclosing.consent_share_with_partners = true" in sql


def test_only_booleans_and_uuids_of_their_own_types_are_written() -> None:
    org = uuid.uuid4()
    written = [
        literal(True, Boolean()),
        literal(org, Uuid()),
        # asyncpg reads uuids as its own subclass of uuid.UUID.
        literal(pgproto.UUID(str(org)), Uuid()),
    ]
    for bound in written:
        done = compiled(
            select(CUSTOMER.c.id).where(plannable(literal_column("x") == bound)), POSTGRESQL
        )
        assert not done.positiontup
    kept = [literal("partners"), literal(3), literal(str(org), Uuid(as_uuid=False))]
    for bound in kept:
        done = compiled(
            select(CUSTOMER.c.id).where(plannable(literal_column("x") == bound)), POSTGRESQL
        )
        assert done.positiontup


@pytest.fixture
def rules_restored() -> Iterator[None]:
    saved = access.rules
    yield
    access.rules = saved


async def test_every_organization_sees_the_same_rows_written_as_bound(
    db: Database, rules_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.transaction() as session:
        await seed_demo(session, customers=60, seed=5)
    async with db.session() as session:
        orgs = list((await session.execute(select(Organization))).scalars())
        current = await sharing.current_version(session)
    assert current is not None
    written = sharing.rules_for(current, b"k" * 32)
    bound = sharing.rules_for(current, b"k" * 32)
    checked = 0
    for org in orgs:
        who = Principal(
            client_id=f"{org.slug}-client",
            organization_id=org.id,
            organization_slug=org.slug,
            organization_kind=OrgKind(org.kind),
            scopes=frozenset({"customers:read", "feedback:read"}),
            attributes=org.attributes,
        )
        for resource, table in ((Resource.CUSTOMER, CUSTOMER), (Resource.FEEDBACK, FEEDBACK)):
            with monkeypatch.context() as patched:
                patched.setattr(policy_rules_module, "plannable", lambda condition: condition)
                as_bound = bound.row_filter(who, resource)
            as_written = written.row_filter(who, resource)
            async with db.session() as session:
                rows = {
                    name: set((await session.execute(select(table.c.id).where(where))).scalars())
                    for name, where in (("bound", as_bound), ("written", as_written))
                }
            assert rows["written"] == rows["bound"], (org.slug, resource)
            checked += bool(rows["bound"])
    assert checked >= 4  # the demo's partners see some rows of both
