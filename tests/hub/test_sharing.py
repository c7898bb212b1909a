"""The sharing policy's lifecycle (DESIGN §4): validate, publish (guardrails and
expectations checked, audited), roll back, preview, diff, explain, and a new version
reaching the running app."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app import create_app
from hub import customers, sharing
from hub.access import PolicyRules, Resource, access
from hub.admin import policies
from hub.customers import CustomerFilter, CustomerOrder
from hub.db import Database
from hub.errors import ConflictError, ForbiddenError, NotFoundError
from hub.models import AuditEvent, Organization, OrgKind, PolicyVersion
from hub.principal import Principal
from hub.runtime import Runtime
from hub.sharing import PolicyRejectedError, Problem
from tests.conftest import ALL_SCOPES, SECRET, make_org, make_settings
from tests.hub.factories import assign, make_customer

KEY = SECRET.encode()
ADMIN_SCOPES = frozenset([*ALL_SCOPES, "hub:admin"])
DEFAULT = sharing.default_source()

# Edits of the default document, each an (old, new) replacement of a unique passage.
NO_COMPANY = (
    "      visible: [id, kind, name, company, city, region, country, segment, lifecycle_stage,",
    "      visible: [id, kind, name, city, region, country, segment, lifecycle_stage,",
)
SMB_ONLY = (
    "        - assignments.organization: {eq: $subject.org}\n    read:",
    "        - assignments.organization: {eq: $subject.org}\n        - segment: {eq: smb}\n"
    "    read:",
)
VENDOR_RULE = """\
  - name: vendors-consenting-regions
    subjects: [{kind: vendor}]
    resource: Customer
    rows: {consent_share_with_partners: {eq: true}}
    read: {visible: [region, segment]}
"""
NO_CONSENT_RULE = """\
  - name: distributors-every-customer
    subjects: [{kind: distributor}]
    resource: Customer
    read: {visible: [id, name]}
"""
TRAITS_RULE = """\
  - name: suppliers-customer-traits
    subjects: [{kind: supplier}]
    resource: Customer
    rows: {consent_share_with_partners: {eq: true}}
    read: {visible: [id, traits]}
"""
OPERATOR_ONLY: dict[str, Any] = {
    "rules": [
        {
            "name": "operator-only",
            "subjects": [{"kind": "operator"}],
            "resource": "Customer",
            "read": {"visible": ["id", "name"]},
        }
    ]
}
NO_PHONE_EXPECTATION = """\
  - name: distributors never see phones
    subject: {kind: distributor}
    resource: Customer
    must_not_see: [phone]
"""


def edited(*changes: tuple[str, str], source: str = DEFAULT) -> str:
    for old, new in changes:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def with_rule(rule: str, source: str = DEFAULT) -> str:
    """``source`` with ``rule`` appended to its rules (they end where ``expect:`` starts)."""
    return edited(("\nexpect:\n", f"\n{rule}\nexpect:\n"), source=source)


def line_of(source: str, text: str) -> int:
    """The 1-based line of the only line of ``source`` that contains ``text``."""
    found = [n for n, line in enumerate(source.splitlines(), 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


@pytest.fixture(autouse=True)
def keep_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test puts in force, the next test starts with the rules it found."""
    monkeypatch.setattr(access, "rules", access.rules)


async def stored_versions(db: Database) -> list[tuple[int, str]]:
    async with db.session() as session:
        return [(v.number, v.action) for v in await sharing.list_versions(session)]


async def policy_events(db: Database) -> list[AuditEvent]:
    """The policy changes audited by the test (not the default's installation)."""
    statement = (
        select(AuditEvent)
        .where(col(AuditEvent.action).in_(["policy.publish", "policy.rollback"]))
        .order_by(col(AuditEvent.at))
    )
    async with db.session() as session:
        return list((await session.execute(statement)).scalars())


async def version(db: Database, number: int) -> PolicyVersion:
    async with db.session() as session:
        return await sharing.get_version(session, number)


async def publish(db: Database, source: str, reason: str = "test", **kw: Any) -> PolicyVersion:
    async with db.transaction() as session:
        return await sharing.publish(session, source, author="operator/tests", reason=reason, **kw)


async def refused(db: Database, source: str, reason: str = "test") -> list[Problem]:
    """The problems of a refused publish. The transaction commits whatever the refused
    call added to the session, so "nothing stored" is the function's doing."""
    async with db.transaction() as session:
        with pytest.raises(PolicyRejectedError) as caught:
            await sharing.publish(session, source, author="operator/tests", reason=reason)
    return caught.value.problems


async def assert_nothing_stored(db: Database) -> None:
    assert await stored_versions(db) == [(1, "install")]
    assert [e.action for e in await policy_events(db)] == []


# --- check_source ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fmt", "problem"),
    [
        (
            "rules:\n  - name: r\n    subjects: [{kind: distributor}\n    resource: Customer\n",
            "yaml",
            Problem("syntax", "invalid YAML: expected ',' or ']', but got '<scalar>'", 4, 5),
        ),
        ('{"rules": [}', "json", Problem("syntax", "invalid JSON: Expecting value", 1, 12)),
        (
            "rules:\n  - name: r\n    subjects: [{kind: operator}]\n    resource: Customer\n"
            "    rows: {region: {like: north}}\n    read: {visible: [name]}\n",
            "yaml",
            Problem(
                "syntax",
                "unknown operator 'like' on 'region' "
                "(expected one of: eq, gt, gte, in, is_null, lt, lte, ne, nin)",
                5,
                21,
            ),
        ),
    ],
    ids=["yaml", "json", "unknown-operator"],
)
def test_a_syntax_error_names_its_line_and_column(
    source: str, fmt: sharing.Format, problem: Problem
) -> None:
    document, problems = sharing.check_source(source, fmt)
    assert document is None
    assert problems == [problem]
    assert str(problems[0]).startswith(f"{problem.line}:{problem.column}: syntax: ")


def test_validation_reports_every_unknown_field_and_mask_in_source_order() -> None:
    source = (
        "rules:\n"
        "  - name: r\n"
        "    subjects: [{kind: operator}]\n"
        "    resource: Customer\n"
        "    rows: {shoe_size: {eq: 42}}\n"
        "    read:\n"
        "      visible: [name, hat_size]\n"
        "      masked: {email: scramble}\n"
    )
    document, problems = sharing.check_source(source)
    assert document is None
    assert [(p.kind, p.line, p.column, p.message) for p in problems] == [
        ("validation", 5, 12, "unknown field 'shoe_size' on Customer"),
        ("validation", 7, 23, "unknown field 'hat_size' on Customer"),
        (
            "validation",
            8,
            23,
            "unknown mask 'scramble' on 'email' "
            "(known: bucket, initials, last4, partial_email, pseudonym, redact, year_only)",
        ),
    ]


def test_a_mask_the_api_cannot_carry_is_refused() -> None:
    source = (
        "rules:\n"
        "  - name: operator-value-bands\n"
        "    subjects: [{kind: operator}]\n"
        "    resource: Customer\n"
        "    read:\n"
        "      masked: {lifetime_value: {mask: bucket, edges: [0, 1000]}}\n"
    )
    document, problems = sharing.check_source(source)
    assert document is None
    assert problems == [
        Problem(
            "validation",
            "mask 'bucket' on Customer.lifetime_value: the API field is a number and cannot "
            "carry a masked value; show or hide it instead",
            6,
            39,
            "operator-value-bands",
        )
    ]


@pytest.mark.parametrize(
    "source",
    [
        # JSON allows tabs as whitespace (Go's MarshalIndent, many editors write them).
        json.dumps(OPERATOR_ONLY, indent="\t"),
        # ... and exponents in numbers: 1e3 is the number 1000.
        json.dumps(OPERATOR_ONLY).replace(
            '"read"', '"rows": {"lifetime_value": {"gt": 1e3}}, "read"'
        ),
    ],
    ids=["tab-indented", "exponent"],
)
def test_any_valid_json_document_is_read_as_json(source: str) -> None:
    json.loads(source)  # valid JSON
    document, problems = sharing.check_source(source, "json")
    assert problems == []
    assert document is not None
    assert [rule.name for rule in document.rules] == ["operator-only"]


def test_the_default_document_is_valid() -> None:
    document, problems = sharing.check_source(DEFAULT)
    assert problems == []
    assert document is not None
    names = [rule.name for rule in document.rules]
    assert "distributors-assigned-customers" in names
    assert len(document.expectations) == 3


# --- publish ----------------------------------------------------------------------------


async def test_publish_stores_the_next_version_with_its_audit_event(db: Database) -> None:
    source = edited(NO_COMPANY)
    published = await publish(db, source, reason="  partners do not need the company  ")
    sha = hashlib.sha256(source.encode()).hexdigest()

    stored = await version(db, 2)
    assert (stored.number, stored.action, stored.restores, stored.format) == (
        2,
        "publish",
        None,
        "yaml",
    )
    assert (stored.author, stored.reason) == ("operator/tests", "partners do not need the company")
    assert (stored.source, stored.sha256) == (source, sha)
    assert published.number == 2
    assert await stored_versions(db) == [(2, "publish"), (1, "install")]

    events = await policy_events(db)
    assert [(e.action, e.actor, e.target) for e in events] == [
        ("policy.publish", "operator/tests", "policy_version:2")
    ]
    assert events[0].details == {
        "reason": "partners do not need the company",
        "sha256": sha,
        "restores": None,
        "previous": 1,
    }


async def test_a_json_source_is_stored_as_json(db: Database) -> None:
    source = json.dumps(OPERATOR_ONLY, indent=2)
    fmt = sharing.source_format("policy.json", source)
    assert fmt == "json"
    await publish(db, source, fmt=fmt)
    stored = await version(db, 2)
    assert (stored.format, stored.source) == ("json", source)
    rules = sharing.rules_for(stored, KEY)
    assert (rules.version, [r.name for r in rules.document.rules]) == (2, ["operator-only"])


async def test_install_defaults_keeps_an_installed_policy(db: Database) -> None:
    async with db.transaction() as session:
        assert await sharing.install_defaults(session) is False
    assert await stored_versions(db) == [(1, "install")]
    assert (await version(db, 1)).source == DEFAULT


async def test_concurrent_publishes_store_one_version_and_the_other_conflicts(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both read version 1 as current; the unique version number lets one of them win.
    first_flushed = asyncio.Event()
    second_read = asyncio.Event()
    read_number = sharing.current_number

    async def noting_the_read(session: Any) -> int:
        number = await read_number(session)
        if first_flushed.is_set():
            second_read.set()
        return number

    # The first commits only once the second has read the current number: a fixed sleep
    # let a slow (loaded) machine read after the commit, and publish version 3.
    monkeypatch.setattr(sharing, "current_number", noting_the_read)

    async def second() -> PolicyVersion:
        await first_flushed.wait()
        return await publish(db, DEFAULT, reason="second")

    racing = asyncio.create_task(second())
    async with db.transaction() as session:
        await sharing.publish(session, edited(NO_COMPANY), author="operator/a", reason="first")
        first_flushed.set()
        await asyncio.wait_for(second_read.wait(), timeout=30)
    with pytest.raises(ConflictError, match="another version was published"):
        await racing
    assert await stored_versions(db) == [(2, "publish"), (1, "install")]
    assert (await version(db, 2)).reason == "first"
    assert [e.details["reason"] for e in await policy_events(db)] == ["first"]


@pytest.mark.parametrize("reason", ["", "   \n"])
async def test_publish_needs_a_reason(db: Database, reason: str) -> None:
    problems = await refused(db, edited(NO_COMPANY), reason=reason)
    assert problems == [Problem("input", "reason is empty")]
    await assert_nothing_stored(db)


async def test_publish_against_a_stale_version_conflicts(db: Database) -> None:
    source = edited(NO_COMPANY)
    for stale in (0, 2):
        with pytest.raises(ConflictError) as caught:
            await publish(db, source, expected_current=stale)
        assert caught.value.current_version == 1
    await assert_nothing_stored(db)

    assert (await publish(db, source, expected_current=1)).number == 2
    with pytest.raises(ConflictError) as caught:
        await publish(db, DEFAULT, expected_current=1)  # previewed against 1, now 2
    assert caught.value.current_version == 2
    assert await stored_versions(db) == [(2, "publish"), (1, "install")]


async def test_an_invalid_source_is_refused_and_nothing_is_stored(db: Database) -> None:
    source = edited(("name, company, city, region", "name, company, shoe_size, region"))
    problems = await refused(db, source)
    assert problems == [
        Problem(
            "validation",
            "unknown field 'shoe_size' on Customer",
            line_of(source, "shoe_size"),
            problems[0].column,
        )
    ]
    assert problems[0].column == source.splitlines()[problems[0].line - 1].index("shoe_size") + 1
    await assert_nothing_stored(db)


@pytest.mark.parametrize(
    ("rule", "name", "breach"),
    [
        (
            NO_CONSENT_RULE,
            "distributors-every-customer",
            "rule 'distributors-every-customer' lets {kind: distributor} read Customer rows "
            "without requiring consent_share_with_partners eq true "
            "(guardrail 'partners need consent')",
        ),
        (
            TRAITS_RULE,
            "suppliers-customer-traits",
            "rule 'suppliers-customer-traits' lets {kind: supplier} see Customer.traits "
            "(visible), which must stay hidden (guardrail 'partners need consent')",
        ),
    ],
    ids=["rows-without-consent", "traits-to-a-partner"],
)
async def test_a_document_breaking_a_guardrail_is_refused(
    db: Database, rule: str, name: str, breach: str
) -> None:
    source = with_rule(rule)
    problems = await refused(db, source)
    assert [(p.kind, p.rule, p.message) for p in problems] == [("guardrail", name, breach)]
    assert problems[0].line == line_of(source, f"- name: {name}")
    await assert_nothing_stored(db)


async def test_a_document_failing_its_own_expectation_is_refused(db: Database) -> None:
    source = DEFAULT + NO_PHONE_EXPECTATION
    problems = await refused(db, source)
    assert [(p.kind, p.rule, p.message) for p in problems] == [
        (
            "expectation",
            "distributors-assigned-customers",
            "rule 'distributors-assigned-customers' lets {kind: distributor} see "
            "Customer.phone (masked) (expectation 'distributors never see phones': "
            "must not see it)",
        )
    ]
    assert problems[0].line == line_of(source, "- name: distributors-assigned-customers")
    await assert_nothing_stored(db)

    # Hiding the phone from distributors satisfies it.
    fixed = edited(
        ("masked: {email: partial_email, phone: last4}", "masked: {email: partial_email}"),
        source=source,
    )
    assert (await publish(db, fixed)).number == 2


# --- rollback ---------------------------------------------------------------------------


async def read_customers(db: Database, org: Organization) -> list[dict[str, Any]]:
    """What ``org`` reads of the customers through the access module now."""
    principal = sharing.principal_for(org)
    async with db.session() as session:
        page = await customers.list_customers(
            session,
            principal,
            flt=CustomerFilter(),
            order=CustomerOrder(),
            first=50,
            after=None,
            default_size=50,
            max_size=100,
        )
    return [dict(record) for record in page.items]


async def test_rollback_restores_the_exact_source_and_behaviour(db: Database) -> None:
    acme = await make_org(db, "distributor", "acme")
    small = await make_customer(db, consent_share_with_partners=True, segment="smb")
    large = await make_customer(db, consent_share_with_partners=True, segment="enterprise")
    for customer in (small, large):
        await assign(db, customer, acme)
    await publish(db, edited(NO_COMPANY, SMB_ONLY))

    async with db.transaction() as session:
        rolled = await sharing.rollback(
            session, 1, author="operator/tests", reason=" company is back "
        )
    assert (rolled.number, rolled.action, rolled.restores) == (3, "rollback", 1)
    first, third = await version(db, 1), await version(db, 3)
    assert (third.source, third.sha256, third.format) == (first.source, first.sha256, "yaml")
    assert (third.author, third.reason) == ("operator/tests", "company is back")
    assert await stored_versions(db) == [(3, "rollback"), (2, "publish"), (1, "install")]
    events = await policy_events(db)
    assert [(e.action, e.target) for e in events] == [
        ("policy.publish", "policy_version:2"),
        ("policy.rollback", "policy_version:3"),
    ]
    assert events[1].details == {
        "reason": "company is back",
        "sha256": first.sha256,
        "restores": 1,
        "previous": 2,
    }

    reads = {}
    for number in (1, 2, 3):
        access.rules = sharing.rules_for(await version(db, number), KEY)
        reads[number] = await read_customers(db, acme)
    assert reads[3] == reads[1]
    assert {r["id"] for r in reads[1]} == {small.id, large.id}
    assert all(r["company"] in (small.company, large.company) for r in reads[1])
    assert all(r["email"] not in (small.email, large.email) for r in reads[1])  # masked
    assert [r["id"] for r in reads[2]] == [small.id]
    assert "company" not in reads[2][0]
    assert "lifetime_value" not in reads[1][0]


async def test_rollback_to_a_missing_version_is_not_found(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(NotFoundError, match="no policy version 7"):
            await sharing.rollback(session, 7, author="operator/tests", reason="why not")
    await assert_nothing_stored(db)


async def test_rollback_is_refused_when_the_old_version_fails_today(db: Database) -> None:
    acme = await make_org(db, "distributor", "acme")
    expectation = (
        "  - name: acme never sees values\n"
        "    subject: {org: acme}\n"
        "    resource: Customer\n"
        "    must_not_see: [lifetime_value]\n"
    )
    await publish(db, DEFAULT + expectation)  # acme exists: the expectation holds
    await publish(db, DEFAULT)
    async with db.transaction() as session:
        await session.delete(await session.get(Organization, acme.id))

    async with db.transaction() as session:
        with pytest.raises(PolicyRejectedError, match="version 2 breaks today's") as caught:
            await sharing.rollback(session, 2, author="operator/tests", reason="restore")
    assert [(p.kind, p.message) for p in caught.value.problems] == [
        (
            "expectation",
            "expectation 'acme never sees values' names unknown organization 'acme' "
            "(name its kind too to describe an organization not created yet)",
        )
    ]
    assert await stored_versions(db) == [(3, "publish"), (2, "publish"), (1, "install")]


async def test_rollback_needs_a_reason(db: Database) -> None:
    await publish(db, edited(NO_COMPANY))
    async with db.transaction() as session:
        with pytest.raises(PolicyRejectedError):
            await sharing.rollback(session, 1, author="operator/tests", reason=" ")
    assert await stored_versions(db) == [(2, "publish"), (1, "install")]


# --- preview ----------------------------------------------------------------------------


async def test_preview_reports_fields_and_rows_gained_and_lost_per_organization(
    db: Database,
) -> None:
    acme = await make_org(db, "distributor", "acme")
    await make_org(db, "vendor", "initech")
    await make_org(db, "department", "marketing", attributes={"roles": ["marketing"]})
    await make_org(db, "operator", "operator")
    small = await make_customer(db, consent_share_with_partners=True, segment="smb")
    large = await make_customer(db, consent_share_with_partners=True, segment="enterprise")
    private = await make_customer(db, consent_share_with_partners=False, segment="smb")
    await make_customer(db, consent_share_with_partners=True)  # assigned to nobody
    for customer in (small, large, private):
        await assign(db, customer, acme)

    source = with_rule(VENDOR_RULE, edited(NO_COMPANY, SMB_ONLY))
    async with db.session() as session:
        problems, impacts = await sharing.preview(session, source, "yaml", KEY)
    assert problems == []
    assert sorted(i.organization for i in impacts) == ["acme", "initech", "marketing", "operator"]
    changed = {
        (i.organization, i.kind, r.resource): (
            r.fields_gained,
            r.fields_lost,
            r.rows_gained,
            r.rows_lost,
        )
        for i in impacts
        for r in i.resources
        if r.changed
    }
    assert changed == {
        ("acme", "distributor", "Customer"): ([], ["company"], 0, 1),  # the enterprise one
        ("initech", "vendor", "Customer"): (["id", "region", "segment"], [], 3, 0),  # consenting
    }
    await assert_nothing_stored(db)


async def test_preview_of_a_source_breaking_a_guardrail_reports_it(db: Database) -> None:
    await make_org(db, "distributor", "acme")
    async with db.session() as session:
        problems, impacts = await sharing.preview(session, with_rule(NO_CONSENT_RULE), "yaml", KEY)
    assert [(p.kind, p.rule) for p in problems] == [("guardrail", "distributors-every-customer")]
    assert [i.organization for i in impacts] == ["acme"]  # the impact is still shown


async def test_preview_of_an_invalid_source_returns_problems_and_no_impact(db: Database) -> None:
    await make_org(db, "distributor", "acme")
    async with db.session() as session:
        problems, impacts = await sharing.preview(session, "rules: [", "yaml", KEY)
    assert [p.kind for p in problems] == ["syntax"]
    assert problems[0].line > 0
    assert impacts == []


# --- diff -------------------------------------------------------------------------------


async def test_diff_versions_lists_rule_changes_and_the_source_diff(db: Database) -> None:
    await publish(db, with_rule(VENDOR_RULE, edited(NO_COMPANY)))
    async with db.session() as session:
        diff = await sharing.diff_versions(session, 1, 2)
        same = await sharing.diff_versions(session, 1, 1)
        with pytest.raises(NotFoundError):
            await sharing.diff_versions(session, 1, 9)
    assert (diff.old, diff.new) == (1, 2)
    assert diff.rules == [
        {
            "name": "distributors-assigned-customers",
            "change": "changed",
            "details": ["read.visible: -company"],
        },
        {
            "name": "vendors-consenting-regions",
            "change": "added",
            "details": [
                "resource: Customer",
                "effect: allow",
                "subjects: {kind: vendor}",
                "rows: consent_share_with_partners eq true",
                "read.visible: region, segment",
            ],
        },
    ]
    lines = diff.text.splitlines()
    assert lines[:2] == ["--- version 1", "+++ version 2"]
    assert "-" + NO_COMPANY[0] in lines
    assert "+" + NO_COMPANY[1] in lines
    assert "+  - name: vendors-consenting-regions" in lines
    assert (same.rules, same.text) == ([], "")


# --- explain ----------------------------------------------------------------------------


async def test_explain_access_for_a_distributor(db: Database) -> None:
    acme = await make_org(db, "distributor", "acme")
    shared = await make_customer(db, consent_share_with_partners=True)
    private = await make_customer(db, consent_share_with_partners=False)
    for customer in (shared, private):
        await assign(db, customer, acme)

    async with db.session() as session:
        seen = await sharing.explain_access(session, "acme", Resource.CUSTOMER, shared.id)
        hidden = await sharing.explain_access(session, "acme", Resource.CUSTOMER, private.id)
    assert (seen["version"], seen["organization"], seen["id"]) == (1, "acme", str(shared.id))
    assert seen["row"] == {"visible": True, "rules": ["distributors-assigned-customers"]}
    fields = seen["fields"]
    assert fields["email"] == {
        "outcome": "masked",
        "mask": "partial_email",
        "rule": "distributors-assigned-customers",
    }
    assert fields["phone"]["mask"] == "last4"
    assert fields["company"] == {
        "outcome": "visible",
        "mask": None,
        "rule": "distributors-assigned-customers",
    }
    for name in ("lifetime_value", "traits", "provenance"):
        assert fields[name] == {
            "outcome": "hidden",
            "mask": None,
            "rule": "guardrail:partners need consent",
        }
    assert fields["title"] == {"outcome": "hidden", "mask": None, "rule": None}  # no rule
    assert "organization" not in fields
    applied = {r["name"]: (r["applies"], r["rows"]) for r in seen["rules"]}
    assert applied["distributors-assigned-customers"] == (True, True)
    assert applied["operator-customers"] == (False, False)

    assert hidden["row"]["visible"] is False
    assert hidden["row"] == {"visible": False, "rules": ["guardrail:partners need consent"]}
    assert {f["outcome"] for f in hidden["fields"].values()} == {"hidden"}
    assert {f["mask"] for f in hidden["fields"].values()} == {None}


async def test_explain_access_of_something_unknown_is_not_found(db: Database) -> None:
    await make_org(db, "distributor", "acme")
    customer = await make_customer(db, consent_share_with_partners=True)
    async with db.session() as session:
        with pytest.raises(NotFoundError, match="no organization 'nobody'"):
            await sharing.explain_access(session, "nobody", Resource.CUSTOMER, customer.id)
        with pytest.raises(NotFoundError, match="no Customer with that id"):
            await sharing.explain_access(session, "acme", Resource.CUSTOMER, uuid.uuid4())
        with pytest.raises(NotFoundError):
            await sharing.explain_access(session, "acme", Resource.FEEDBACK, customer.id)


# --- the admin-checked wrappers ---------------------------------------------------------


def principal(org: Organization, scopes: frozenset[str]) -> Principal:
    return Principal(
        client_id="c1",
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        scopes=scopes,
    )


def admin_calls(
    session: AsyncSession, who: Principal, customer_id: uuid.UUID, *, missing: bool
) -> list[Awaitable[object]]:
    """Every admin operation, naming things that exist (or, with ``missing``, do not)."""
    number = 99 if missing else 1
    org = "nobody" if missing else "acme"
    record = uuid.uuid4() if missing else customer_id
    source = "rules: [" if missing else edited(NO_COMPANY)
    return [
        policies.validate_policy(who, source, "yaml"),
        policies.preview_policy(session, who, source, "yaml", KEY),
        policies.publish_policy(session, who, source, "yaml", "mine", None),
        policies.rollback_policy(session, who, number, "mine"),
        policies.policy_versions(session, who),
        policies.diff_policy_versions(session, who, 1, number),
        policies.explain_access(session, who, org, Resource.CUSTOMER, record),
    ]


@pytest.mark.parametrize("kind", ["distributor", "supplier", "operator", "department"])
async def test_the_admin_wrappers_refuse_everyone_but_administrators(
    db: Database, kind: str
) -> None:
    await make_org(db, "distributor", "acme")
    customer = await make_customer(db, consent_share_with_partners=True)
    # A partner holding the scope is refused too: the scope alone is not enough.
    scopes = frozenset(ALL_SCOPES) if kind in ("operator", "department") else ADMIN_SCOPES
    who = principal(await make_org(db, kind), scopes)
    for missing in (False, True):
        async with db.transaction() as session:
            for call in admin_calls(session, who, customer.id, missing=missing):
                with pytest.raises(
                    ForbiddenError, match=r"^this operation is for hub administrators$"
                ):
                    await call
    await assert_nothing_stored(db)


async def test_the_admin_wrappers_record_the_caller_as_author(db: Database) -> None:
    admin = principal(await make_org(db, "operator", "northwind"), ADMIN_SCOPES)
    async with db.transaction() as session:
        assert await policies.validate_policy(admin, DEFAULT, "yaml") == []
        published = await policies.publish_policy(
            session, admin, edited(NO_COMPANY), "yaml", "why", 1
        )
    assert (published.number, published.author) == (2, "northwind/c1")
    async with db.transaction() as session:
        rolled = await policies.rollback_policy(session, admin, 1, "undo")
        listed = await policies.policy_versions(session, admin)
    assert (rolled.number, rolled.author, rolled.restores) == (3, "northwind/c1", 1)
    assert [v.number for v in listed] == [3, 2, 1]
    assert [e.actor for e in await policy_events(db)] == ["northwind/c1"] * 2


# --- a new version reaches the running app ----------------------------------------------


@asynccontextmanager
async def running_app(database_url: str, refresh: float) -> AsyncIterator[Runtime]:
    """The app's lifespan (its Runtime and background refresh) without serving requests."""
    application = create_app(make_settings(database_url, policy_refresh_interval=refresh))
    async with application.router.lifespan_context(application):
        runtime = application.state.runtime
        assert isinstance(runtime, Runtime)
        yield runtime


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, at most 5 seconds."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0.05)


def in_force() -> tuple[int, str]:
    rules = access.rules
    assert isinstance(rules, PolicyRules)
    return rules.version, rules.fingerprint


async def test_reload_policy_puts_a_published_version_in_force(
    db: Database, database_url: str
) -> None:
    acme = sharing.principal_for(await make_org(db, "distributor", "acme"))
    async with running_app(database_url, refresh=3600) as runtime:
        first = await version(db, 1)
        assert in_force() == (1, first.sha256)
        assert "company" in access.shown_fields(acme, Resource.CUSTOMER)

        second = await publish(db, edited(NO_COMPANY))
        assert in_force() == (1, first.sha256)  # not before the next refresh
        await runtime.reload_policy()
        assert in_force() == (2, second.sha256)
        assert "company" not in access.shown_fields(acme, Resource.CUSTOMER)

        rules = access.rules
        await runtime.reload_policy()
        assert access.rules is rules  # the same version is not parsed again


async def test_the_background_refresh_follows_a_publish(db: Database, database_url: str) -> None:
    async with running_app(database_url, refresh=0.1):
        assert in_force()[0] == 1
        second = await publish(db, edited(NO_COMPANY))
        await eventually(lambda: in_force()[0] == 2)
        assert in_force() == (2, second.sha256)

        async with db.transaction() as session:
            await sharing.rollback(session, 1, author="operator/tests", reason="undo")
        await eventually(lambda: in_force()[0] == 3)
        assert in_force() == (3, (await version(db, 1)).sha256)
