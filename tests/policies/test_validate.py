"""The validator: a parsed document against a catalog, each error at line:column."""

from __future__ import annotations

import pytest

from policies import Catalog, CatalogError, PolicyValidationError, check, parse, validate
from policies.catalog import FieldType
from tests.policies.factories import CATALOG_DATA, make_catalog


def rule(body: str, resource: str = "Customer") -> str:
    """A one-rule document; ``body`` lines start at line 5, indented four spaces."""
    return (
        "rules:\n  - name: r\n    subjects: [{kind: distributor}]\n"
        f"    resource: {resource}\n{body}"
    )


def test_a_good_document_has_no_errors() -> None:
    source = rule(
        "    rows:\n"
        "      and:\n"
        "        - assignments.organization: {eq: $subject.org}\n"
        "        - region: {in: $subject.attributes.regions}\n"
        "        - traits.tier: {eq: gold}\n"
        "        - created_at: {gte: '2024-01-01T00:00:00'}\n"
        "        - lifetime_value: {lt: 1000.5}\n"
        "    read:\n"
        "      visible: [name, region]\n"
        "      masked: {email: partial_email, lifetime_value: {mask: bucket, edges: [0, 10]}}\n"
    )
    doc = parse(source)
    assert validate(doc, make_catalog()) == []
    assert check(doc, make_catalog()) is doc


ERRORS = [
    pytest.param(
        "rules:\n  - name: r\n    subjects: [{kind: x}]\n    resource: Customers\n",
        4,
        15,
        "unknown resource 'Customers' (known: Customer, CustomerPartner, Feedback)",
        id="unknown-resource",
    ),
    pytest.param(
        rule("    read: {visible: [name, emial]}\n"),
        5,
        28,
        "unknown field 'emial' on Customer (did you mean 'email'?)",
        id="unknown-visible-field",
    ),
    pytest.param(
        rule("    read: {masked: {fone: last4}}\n"),
        5,
        21,
        "unknown field 'fone' on Customer",
        id="unknown-masked-field",
    ),
    pytest.param(
        rule("    read: {masked: {phone: lastfour}}\n"),
        5,
        28,
        "unknown mask 'lastfour' on 'phone'",
        id="unknown-mask",
    ),
    pytest.param(
        rule("    read: {masked: {consent_share_with_partners: last4}}\n"),
        5,
        50,
        "mask 'last4' does not apply to boolean field 'consent_share_with_partners'",
        id="mask-type",
    ),
    pytest.param(
        rule("    read: {visible: [name], masked: {name: initials}}\n"),
        5,
        38,
        "'name' is both visible and masked",
        id="visible-and-masked",
    ),
    pytest.param(
        rule("    rows: {assignments.org: {eq: x}}\n"),
        5,
        12,
        "unknown field 'org' on CustomerPartner",
        id="unknown-related-field",
    ),
    pytest.param(
        rule("    rows: {assignments: {is_null: false}}\n"),
        5,
        12,
        "'Customer.assignments' is a relation to CustomerPartner",
        id="path-ends-at-relation",
    ),
    pytest.param(
        rule("    rows: {name.first: {eq: x}}\n"),
        5,
        12,
        "'Customer.name' is a string field, not a relation",
        id="path-through-scalar",
    ),
    pytest.param(
        rule("    rows: {region: {eq: $subject.team}}\n"),
        5,
        25,
        "unknown subject variable '$subject.team'",
        id="unknown-variable",
    ),
    pytest.param(
        rule("    rows: {region: {in: $subject.attributes.zones}}\n"),
        5,
        25,
        "unknown subject variable '$subject.attributes.zones'",
        id="unknown-attribute",
    ),
    pytest.param(
        rule("    rows: {consent_share_with_partners: {gt: true}}\n"),
        5,
        46,
        "type mismatch: 'gt' does not apply to boolean",
        id="gt-on-bool",
    ),
    pytest.param(
        rule("    rows: {region: {in: north}}\n"),
        5,
        25,
        "type mismatch: 'in' takes a list (on string field 'region')",
        id="in-non-list",
    ),
    pytest.param(
        rule("    rows: {lifetime_value: {eq: lots}}\n"),
        5,
        33,
        "type mismatch: expected a number value, got 'lots'",
        id="eq-wrong-type",
    ),
    pytest.param(
        rule("    rows: {email: {is_null: 1}}\n"),
        5,
        29,
        "'is_null' takes true or false",
        id="is-null-non-bool",
    ),
    pytest.param(
        rule("    rows: {email: {eq: null}}\n"),
        5,
        24,
        "'eq' with null; use is_null",
        id="eq-null",
    ),
    pytest.param(
        rule("    rows: {created_at: {gt: yesterday}}\n"),
        5,
        29,
        "expected a datetime value",
        id="datetime-literal",
    ),
    pytest.param(
        rule("    rows: {lifetime_value: {gt: $subject.org}}\n"),
        5,
        33,
        "'gt' on number field 'lifetime_value' with string variable '$subject.org'",
        id="variable-type",
    ),
    pytest.param(
        rule("    effect: deny\n    fields: [phone, secret]\n"),
        6,
        21,
        "unknown field 'secret' on Customer",
        id="deny-field",
    ),
    pytest.param(
        rule("    write:\n      fields: [region]\n      presets: {organization: $subject.org}\n"),
        7,
        17,
        "unknown field 'organization' on Customer",
        id="preset-field",
    ),
    pytest.param(
        rule("    create:\n      check: {region: {eq: $subject.orgs}}\n"),
        6,
        28,
        "unknown subject variable '$subject.orgs'",
        id="check-variable",
    ),
    pytest.param(
        rule("    read: {visible: [traits.notes]}\n"),
        5,
        22,
        "'traits.notes': list a field of Customer itself, not a path",
        id="read-path",
    ),
    pytest.param(
        rule("    read: {masked: {name: {mask: initials, edges: [1]}}}\n"),
        5,
        34,
        "'edges' is only for the bucket mask",
        id="edges-not-bucket",
    ),
    pytest.param(
        rule("")
        + "guardrails:\n  - name: g\n    subjects: [{kind: distributor}]\n"
        + "    resource: Customer\n    hidden: [traits.internal_notes, secrets]\n",
        9,
        37,
        "unknown field 'secrets' on Customer",
        id="guardrail-field",
    ),
    pytest.param(
        rule("")
        + "expect:\n  - subject: {org: acme}\n    resource: Customer\n    must_not_see: [phon]\n",
        8,
        20,
        "unknown field 'phon' on Customer (did you mean 'phone'?)",
        id="expectation-field",
    ),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), ERRORS)
def test_errors_name_line_and_column(source: str, line: int, column: int, message: str) -> None:
    errors = validate(parse(source), make_catalog())
    assert len(errors) == 1, [str(e) for e in errors]
    (error,) = errors
    assert message in error.message, str(error)
    assert (error.line, error.column) == (line, column), str(error)


def test_check_raises_with_every_error_in_source_order() -> None:
    doc = parse(rule("    rows: {a: {eq: 1}}\n    read: {visible: [b, c]}\n"))
    with pytest.raises(PolicyValidationError) as info:
        check(doc, make_catalog())
    assert [str(e) for e in info.value.errors] == [
        "5:12: unknown field 'a' on Customer",
        "6:22: unknown field 'b' on Customer",
        "6:25: unknown field 'c' on Customer",
    ]


def test_catalog_from_dict_resolves_paths() -> None:
    catalog = make_catalog()
    assert catalog.field_type("Feedback", "customer.assignments.role") is FieldType.STRING
    assert catalog.field_type("Customer", "traits.anything.deep") is FieldType.JSON
    assert "email" in catalog.fields("Customer")
    assert catalog.fields("Nope") == frozenset()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"A": {"fields": {"x": "text"}}}, "'text' is not a valid FieldType", id="type"
        ),
        pytest.param({"A": {}}, "resource 'A'", id="no-fields"),
        pytest.param(
            {"A": {"fields": {}, "relations": {"b": {"resource": "B"}}}},
            "A.b relates to unknown resource 'B'",
            id="relation-target",
        ),
    ],
)
def test_catalog_from_dict_rejects_bad_definitions(data: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        Catalog.from_dict(data)


# --- subjects naming a kind or role nobody has -------------------------------------------

KINDS = ("operator", "department", "supplier", "vendor", "distributor")
ROLES = ("admin", "sales", "support")


def subjects_catalog() -> Catalog:
    """The test catalog declaring the kinds and roles a subject may name."""
    return Catalog.from_dict(
        CATALOG_DATA,
        subject_attributes={"regions": "string[]"},
        subject_kinds=KINDS,
        subject_roles=ROLES,
    )


def subject_rule(subjects: str) -> str:
    return (
        f"rules:\n  - name: r\n    subjects: {subjects}\n    resource: Customer\n"
        "    read: {visible: [name]}\n"
    )


UNKNOWN_SUBJECTS = [
    pytest.param(
        subject_rule("[{kind: distributer}]"),
        3,
        23,
        "unknown kind 'distributer' (did you mean 'distributor'?): the subject matches "
        "nobody (known: department, distributor, operator, supplier, vendor)",
        id="kind-near-miss",
    ),
    pytest.param(
        subject_rule("[{kind: operator}, {org: acme, kind: partner}]"),
        3,
        52,
        "unknown kind 'partner': the subject matches nobody (known: department, "
        "distributor, operator, supplier, vendor)",
        id="kind-second-subject",
    ),
    pytest.param(
        subject_rule("\n      - kind: department\n        role: saless"),
        5,
        15,
        "unknown role 'saless' (did you mean 'sales'?): the subject matches nobody "
        "(known: admin, sales, support)",
        id="role-block-style",
    ),
    pytest.param(
        subject_rule("[{kind: operator}]")
        + "guardrails:\n  - name: g\n    subjects: [{kind: vendr}]\n"
        + "    resource: Customer\n    hidden: [email]\n",
        8,
        23,
        "unknown kind 'vendr' (did you mean 'vendor'?)",
        id="guardrail",
    ),
    pytest.param(
        subject_rule("[{kind: operator}]")
        + "expect:\n  - subject: {kind: supplier, role: auditor}\n    resource: Customer\n"
        + "    must_not_see: [email]\n",
        7,
        37,
        "unknown role 'auditor': the subject matches nobody",
        id="expectation",
    ),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), UNKNOWN_SUBJECTS)
def test_subjects_naming_an_unknown_kind_or_role_are_errors(
    source: str, line: int, column: int, message: str
) -> None:
    errors = validate(parse(source), subjects_catalog())
    assert len(errors) == 1, [str(e) for e in errors]
    (error,) = errors
    assert message in error.message, str(error)
    assert (error.line, error.column) == (line, column), str(error)


def test_known_kinds_and_roles_pass_and_undeclared_ones_are_not_checked() -> None:
    known = subject_rule("[{kind: department, role: sales}, {role: admin}, {org: anyone}]")
    assert validate(parse(known), subjects_catalog()) == []
    # A catalog that declares no kinds or roles accepts any (the policies package knows
    # nothing of the project's organizations).
    unknown = parse(subject_rule("[{kind: distributer, role: nobody}]"))
    assert validate(unknown, make_catalog()) == []
    assert len(validate(unknown, subjects_catalog())) == 2
