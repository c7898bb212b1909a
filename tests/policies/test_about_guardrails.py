"""Guardrails ``about`` a resource: one declaration guarding every record about it.

``about: Customer`` (instead of ``resource: Customer``) makes a guardrail hold on every
other resource reaching a customer through one-to-one relations, its ``rows`` read from
that customer, except the ``exempt`` resources; a resource added to the catalog later is
covered without touching the guardrail.
"""

from __future__ import annotations

from typing import Any

import pytest

from policies import (
    Catalog,
    Compare,
    Guardrail,
    PolicySyntaxError,
    Subject,
    check_guardrails,
    concrete_guardrails,
    describe,
    diff_documents,
    parse,
    validate,
)

PARTNERS = (Subject(kind="supplier"), Subject(kind="distributor"))
CONSENT = Compare("consent_share_with_partners", "eq", True)


def catalog(**extra: Any) -> Catalog:
    """Customers, their feedback and assignments, cases and case notes (through the
    case only), and whatever ``extra`` declares."""
    return Catalog.from_dict(
        {
            "Customer": {
                "fields": {"id": "uuid", "consent_share_with_partners": "boolean"},
                "relations": {"assignments": {"resource": "CustomerPartner", "many": True}},
            },
            "CustomerPartner": {
                "fields": {"organization": "string"},
                "relations": {"customer": {"resource": "Customer"}},
            },
            "Feedback": {
                "fields": {"id": "uuid", "text": "string"},
                "relations": {"customer": {"resource": "Customer"}},
            },
            "Case": {
                "fields": {"id": "uuid", "organization": "string"},
                "relations": {"customer": {"resource": "Customer"}},
            },
            "CaseNote": {
                "fields": {"id": "uuid", "text": "string"},
                "relations": {"case": {"resource": "Case"}},
            },
            "Organization": {"fields": {"slug": "string"}},
            **extra,
        }
    )


GUARDRAILS = """guardrails:
  - name: records need consent
    subjects: [{kind: supplier}, {kind: distributor}]
    about: Customer
    exempt: [CustomerPartner]
    rows: {consent_share_with_partners: {eq: true}}
"""


def test_parsed_as_a_guardrail_about_its_resource() -> None:
    (guardrail,) = parse(GUARDRAILS).guardrails
    assert guardrail == Guardrail(
        "records need consent",
        "Customer",
        PARTNERS,
        rows=CONSENT,
        about=True,
        exempt=("CustomerPartner",),
    )


def test_one_guardrail_per_resource_about_it_its_rows_read_through_the_path() -> None:
    concrete = concrete_guardrails(parse(GUARDRAILS).guardrails, catalog())
    assert [(g.resource, g.rows) for g in concrete] == [
        ("Feedback", Compare("customer.consent_share_with_partners", "eq", True)),
        ("Case", Compare("customer.consent_share_with_partners", "eq", True)),
        ("CaseNote", Compare("case.customer.consent_share_with_partners", "eq", True)),
    ]
    assert {g.name for g in concrete} == {"records need consent"}
    assert not any(g.about or g.exempt for g in concrete)


def test_a_resource_declared_later_is_covered_without_touching_the_guardrail() -> None:
    order = {
        "fields": {"id": "uuid", "total": "number"},
        "relations": {"buyer": {"resource": "Customer"}},
    }
    concrete = concrete_guardrails(parse(GUARDRAILS).guardrails, catalog(Order=order))
    assert ("Order", Compare("buyer.consent_share_with_partners", "eq", True)) in [
        (g.resource, g.rows) for g in concrete
    ]
    # And a rule granting partners its rows without the consent is refused.
    document = parse(
        """rules:
  - name: suppliers-orders
    subjects: [{kind: supplier}]
    resource: Order
    read: {visible: [id, total]}
"""
    )
    (violation,) = check_guardrails(
        document, catalog(Order=order), parse(GUARDRAILS).guardrails, {}
    )
    assert violation.name == "records need consent"
    assert violation.message == (
        "rule 'suppliers-orders' lets {kind: supplier} read Order rows without requiring "
        "buyer.consent_share_with_partners eq true (guardrail 'records need consent')"
    )


def test_conditions_of_every_shape_are_read_through_the_path() -> None:
    source = GUARDRAILS.replace(
        "rows: {consent_share_with_partners: {eq: true}}",
        "rows: {or: [{not: {consent_share_with_partners: {is_null: true}}},"
        " {and: [{id: {is_null: false}}]}]}",
    )
    concrete = concrete_guardrails(parse(source).guardrails, catalog())
    note = next(g for g in concrete if g.resource == "CaseNote")
    assert validate(parse(f"rules: []\n{source}"), catalog()) == []
    assert note.rows is not None
    assert describe(note.rows) == (
        "or(not(case.customer.consent_share_with_partners is_null true), "
        "and(case.customer.id is_null false))"
    )


def test_rules_requiring_the_condition_through_the_path_pass() -> None:
    document = parse(
        """rules:
  - name: suppliers-case-notes
    subjects: [{kind: supplier}]
    resource: CaseNote
    rows:
      and:
        - case.organization: {eq: $subject.org}
        - case.customer.consent_share_with_partners: {eq: true}
    read: {visible: [id, text]}
  - name: distributors-assignments
    subjects: [{kind: distributor}]
    resource: CustomerPartner
    read: {visible: [organization]}
"""
    )
    assert check_guardrails(document, catalog(), parse(GUARDRAILS).guardrails, {}) == []


def test_other_guardrails_are_kept_as_they_are() -> None:
    plain = Guardrail("plain", "Customer", PARTNERS, rows=CONSENT, hidden=("id",))
    assert concrete_guardrails([plain], catalog()) == (plain,)


def test_one_to_many_relations_and_the_resource_itself_are_not_paths() -> None:
    cat = catalog()
    assert cat.path_to("CaseNote", "Customer") == "case.customer"
    assert cat.path_to("Customer", "Customer") is None
    assert cat.path_to("Customer", "CustomerPartner") is None  # assignments: many
    assert cat.path_to("Organization", "Customer") is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "guardrails:\n  - name: g\n    subjects: [{kind: supplier}]\n"
            "    rows: {id: {is_null: false}}\n",
            "guardrail #0 is missing 'resource' (or 'about')",
        ),
        (
            "guardrails:\n  - name: g\n    subjects: [{kind: supplier}]\n"
            "    resource: Customer\n    about: Customer\n",
            "guardrail #0 has both",
        ),
        (
            "guardrails:\n  - name: g\n    subjects: [{kind: supplier}]\n"
            "    resource: Customer\n    exempt: [Feedback]\n",
            "guardrail 'g': 'exempt' goes with 'about'",
        ),
    ],
)
def test_syntax_errors(source: str, message: str) -> None:
    with pytest.raises(PolicySyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(source)


def test_validation_errors_at_line_and_column() -> None:
    document = parse(
        """guardrails:
  - name: g
    subjects: [{kind: supplier}]
    about: Customer
    exempt: [Widget, Organization]
    hidden: [id]
"""
    )
    errors = [(str(e.pos), e.message) for e in validate(document, catalog())]
    assert errors == [
        ("2:5", "guardrail 'g' is about Customer records and needs 'rows'"),
        (
            "5:14",
            "unknown resource 'Widget' (known: Case, CaseNote, Customer, "
            "CustomerPartner, Feedback, Organization)",
        ),
        (
            "5:22",
            "'Organization' is not about Customer (no one-to-one relation path to it): "
            "there is nothing to exempt",
        ),
        (
            "6:5",
            "guardrail 'g': 'hidden' names fields of one resource; hide them in a "
            "guardrail with 'resource', not 'about: Customer'",
        ),
    ]


def test_diff_names_what_changed() -> None:
    old = parse(GUARDRAILS)
    new = parse(GUARDRAILS.replace("exempt: [CustomerPartner]", "exempt: []"))
    (change,) = diff_documents(old, new)
    assert (change.section, change.change) == ("guardrail", "changed")
    assert change.details == ("exempt: -CustomerPartner",)
    (added,) = diff_documents(parse("rules: []"), old)
    assert "about: Customer" in added.details
    assert "exempt: CustomerPartner" in added.details
