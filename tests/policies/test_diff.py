"""Diffing two documents, and the per-caller field access of the impact preview."""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    Caller,
    Compare,
    Condition,
    Document,
    Effect,
    Expectation,
    MaskSpec,
    Not,
    Outcome,
    Read,
    Rule,
    Subject,
    Variable,
    evaluate,
    parse,
)
from policies.diff import RuleChange, diff_documents, field_access
from policies.guard import run_expectations
from tests.policies.factories import make_caller, make_catalog

CATALOG = make_catalog()

BASE = """\
rules:
  - name: assigned
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {consent_share_with_partners: {eq: true}}
    read:
      visible: [name, email]
      masked: {phone: last4}
  - name: no-phone
    effect: deny
    subjects: [{org: acme}]
    resource: Customer
    fields: [phone]
"""


def doc(source: str) -> Document:
    return parse(textwrap.dedent(source))


def changed(old: str, new: str) -> list[RuleChange]:
    return diff_documents(doc(old), doc(new))


def test_identical_documents_have_no_changes() -> None:
    assert changed(BASE, BASE) == []


def test_layout_and_positions_do_not_count() -> None:
    flow = """\
    rules:
      - {name: assigned, subjects: [{kind: distributor}], resource: Customer,
         rows: {consent_share_with_partners: {eq: true}},
         read: {visible: [name, email], masked: {phone: last4}}}
      - {name: no-phone, effect: deny, subjects: [{org: acme}], resource: Customer,
         fields: [phone]}
    """
    assert changed(BASE, flow) == []


CHANGE_CASES = [
    pytest.param(
        "visible: [name, email]",
        "visible: [name, region]",
        "read.visible: +region -email",
        id="vis",
    ),
    pytest.param(
        "masked: {phone: last4}",
        "masked: {phone: redact}",
        "read.masked: +phone (redact) -phone (last4)",
        id="mask",
    ),
    pytest.param(
        "masked: {phone: last4}",
        "masked: {lifetime_value: {mask: bucket, edges: [0, 1000]}}",
        "read.masked: +lifetime_value (bucket 0, 1000) -phone (last4)",
        id="bucket",
    ),
    pytest.param(
        "rows: {consent_share_with_partners: {eq: true}}",
        "rows: {consent_share_with_partners: {eq: true}, region: {in: [north, south]}}",
        "rows: consent_share_with_partners eq true -> "
        "and(consent_share_with_partners eq true, region in [north, south])",
        id="rows",
    ),
    pytest.param(
        "    rows: {consent_share_with_partners: {eq: true}}\n",
        "",
        "rows: consent_share_with_partners eq true -> (none)",
        id="rows-dropped",
    ),
    pytest.param(
        "subjects: [{kind: distributor}]",
        "subjects: [{kind: distributor}, {org: globex, role: sales}]",
        "subjects: +{org: globex, role: sales}",
        id="subjects",
    ),
    pytest.param(
        "resource: Customer\n    rows",
        "resource: Feedback\n    rows",
        "resource: Customer -> Feedback",
        id="resource",
    ),
]


@pytest.mark.parametrize(("old", "new", "detail"), CHANGE_CASES)
def test_a_changed_rule_says_what_changed(old: str, new: str, detail: str) -> None:
    assert BASE.count(old) == 1
    assert changed(BASE, BASE.replace(old, new)) == [RuleChange("assigned", "changed", (detail,))]


def test_deny_rule_changes() -> None:
    new = BASE.replace("fields: [phone]", "fields: [phone, email]").replace(
        "{org: acme}", "{kind: supplier}"
    )
    assert changed(BASE, new) == [
        RuleChange(
            "no-phone", "changed", ("subjects: +{kind: supplier} -{org: acme}", "fields: +email")
        )
    ]


def test_effect_change() -> None:
    old = "rules:\n  - {name: r, subjects: [{kind: x}], resource: Customer}\n"
    new = "rules:\n  - {name: r, effect: deny, subjects: [{kind: x}], resource: Customer}\n"
    assert changed(old, new) == [RuleChange("r", "changed", ("effect: allow -> deny",))]


def test_write_and_create_changes() -> None:
    masked = "      masked: {phone: last4}\n"
    old = BASE.replace(masked, masked + "    write: {fields: [region]}\n")
    write = (
        "    write:\n"
        "      fields: [region, name]\n"
        "      check: {region: {in: $subject.attributes.regions}}\n"
        "      presets: {region: north}\n"
        "    create: {fields: [name]}\n"
    )
    new = BASE.replace(masked, masked + write)
    (change,) = changed(old, new)
    assert change.details == (
        "write.fields: +name",
        "write.check: (none) -> region in $subject.attributes.regions",
        "write.presets: +region=north",
        "create.fields: +name",
    )


def test_added_and_removed_rules_are_summarised() -> None:
    new = BASE.replace("no-phone", "no-phone-for-acme") + (
        "  - name: suppliers\n"
        "    subjects: [{kind: supplier}]\n"
        "    resource: Feedback\n"
        "    read: {visible: [score, text]}\n"
    )
    assert changed(BASE, new) == [
        RuleChange(
            "no-phone-for-acme",
            "added",
            ("resource: Customer", "effect: deny", "subjects: {org: acme}", "fields: phone"),
        ),
        RuleChange(
            "suppliers",
            "added",
            (
                "resource: Feedback",
                "effect: allow",
                "subjects: {kind: supplier}",
                "read.visible: score, text",
            ),
        ),
        RuleChange(
            "no-phone",
            "removed",
            ("resource: Customer", "effect: deny", "subjects: {org: acme}", "fields: phone"),
        ),
    ]


def test_reordered_rules_are_reported_as_moved() -> None:
    # Order decides which mask applies when two rules grant the same outcome.
    rules = [f"  - {{name: {n}, subjects: [{{kind: x}}], resource: Customer}}\n" for n in "abcd"]
    old = "rules:\n" + "".join(rules)
    new = "rules:\n" + "".join([rules[0], rules[2], rules[3], rules[1]])
    assert changed(old, new) == [RuleChange("b", "changed", ("order: moved (now after 'd')",))]
    first = "rules:\n" + "".join([rules[3], *rules[:3]])
    assert changed(old, first) == [RuleChange("d", "changed", ("order: moved (now first)",))]
    # Adding or removing rules shifts positions without reordering the others.
    assert [c.change for c in changed(old, "rules:\n" + "".join(rules[1:]))] == ["removed"]


GUARDRAILS = """\
guardrails:
  - name: consent
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {consent_share_with_partners: {eq: true}}
    hidden: [traits.internal_notes]
expect:
  - name: acme-no-phone
    subject: {org: acme}
    resource: Customer
    must_not_see: [phone]
  - subject: {org: globex}
    resource: Customer
    must_see: [name]
"""


def test_guardrails_and_expectations_have_their_section() -> None:
    new = GUARDRAILS.replace("[traits.internal_notes]", "[traits.internal_notes, phone]")
    new = new.replace("must_not_see: [phone]", "must_not_see: [phone, email]")
    new = new.replace("{org: globex}", "{org: globex, role: sales}")
    assert changed(BASE + GUARDRAILS, BASE + new) == [
        RuleChange("consent", "changed", ("hidden: +phone",), "guardrail"),
        RuleChange("acme-no-phone", "changed", ("must_not_see: +email",), "expectation"),
        RuleChange(
            "expectation #1",
            "changed",
            ("subject: {org: globex} -> {org: globex, role: sales}",),
            "expectation",
        ),
    ]


def test_removing_sections() -> None:
    changes = changed(BASE + GUARDRAILS, BASE)
    assert [(c.section, c.name, c.change) for c in changes] == [
        ("guardrail", "consent", "removed"),
        ("expectation", "acme-no-phone", "removed"),
        ("expectation", "expectation #1", "removed"),
    ]
    assert changes[0].details[-1] == "hidden: traits.internal_notes"


def test_repeated_names_pair_in_order() -> None:
    entry = "  - {name: e, subject: {org: acme}, resource: Customer, must_see: [%s]}\n"
    old = BASE + "expect:\n" + entry % "name" + entry % "email"
    new = BASE + "expect:\n" + entry % "name" + entry % "phone"
    assert changed(old, new) == [
        RuleChange("e", "changed", ("must_see: +phone -email",), "expectation")
    ]


# -- field access --------------------------------------------------------------------------

ACCESS = doc(
    """\
    rules:
      - name: assigned
        subjects: [{kind: distributor}]
        resource: Customer
        rows: {consent_share_with_partners: {eq: true}}
        read: {visible: [name], masked: {email: partial_email, phone: last4}}
      - name: own-region
        subjects: [{org: acme}]
        resource: Customer
        rows: {region: {in: $subject.attributes.regions}}
        read: {visible: [email, secret]}
      - name: no-phone-for-sales
        effect: deny
        subjects: [{role: sales}]
        resource: Customer
        fields: [phone]
      - name: vip
        effect: deny
        subjects: [{kind: distributor}]
        resource: Customer
        rows: {traits.vip: {eq: true}}
        fields: [name]
      - name: suppliers
        subjects: [{kind: supplier}]
        resource: Feedback
        read: {visible: [text]}
    """
)
V, M, H = Outcome.VISIBLE, Outcome.MASKED, Outcome.HIDDEN

ACCESS_CASES = [
    pytest.param({}, {"name": V, "email": V, "phone": M}, id="acme"),
    pytest.param({"org": "initech"}, {"name": V, "email": M, "phone": M}, id="other-distributor"),
    pytest.param({"roles": frozenset({"sales"})}, {"name": V, "email": V}, id="unconditional-deny"),
    pytest.param({"kind": "supplier", "org": "globex"}, {}, id="no-rule"),
]


@pytest.mark.parametrize(("caller", "expected"), ACCESS_CASES)
def test_field_access(caller: dict[str, Any], expected: dict[str, Outcome]) -> None:
    access = field_access(ACCESS, CATALOG, make_caller(**caller), "Customer")
    assert set(access) == CATALOG.fields("Customer")  # "secret" is not in the catalog
    assert {k: v for k, v in access.items() if v is not H} == expected


def test_field_access_row_deny() -> None:
    denied = dataclasses.replace(
        ACCESS, rules=(*ACCESS.rules, Rule("all", "Customer", (Subject(org="acme"),), Effect.DENY))
    )
    assert set(field_access(denied, CATALOG, make_caller(), "Customer").values()) == {H}


def test_field_access_other_resources() -> None:
    supplier = make_caller(org="globex", kind="supplier")
    assert field_access(ACCESS, CATALOG, supplier, "Feedback")["text"] is V
    assert field_access(ACCESS, CATALOG, supplier, "Widget") == {}


def test_fields_gained_and_lost_between_versions() -> None:
    new = dataclasses.replace(ACCESS, rules=ACCESS.rules[1:])
    before = field_access(ACCESS, CATALOG, make_caller(org="initech"), "Customer")
    after = field_access(new, CATALOG, make_caller(org="initech"), "Customer")
    lost = sorted(f for f in before if after[f] < before[f])
    assert lost == ["email", "name", "phone"]


# -- properties ----------------------------------------------------------------------------

FIELDS = sorted(CATALOG.fields("Customer"))
NAMES = [*FIELDS, "secret"]
subjects = st.sampled_from(
    [
        Subject(kind="distributor"),
        Subject(kind="supplier"),
        Subject(org="acme"),
        Subject(org="globex"),
        Subject(role="sales"),
    ]
)
compares: st.SearchStrategy[Condition] = st.one_of(
    st.builds(
        Compare,
        st.just("region"),
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["north", "south"]),
    ),
    st.builds(
        Compare, st.just("region"), st.just("in"), st.just(Variable("subject.attributes.regions"))
    ),
    st.builds(Compare, st.just("consent_share_with_partners"), st.just("eq"), st.booleans()),
    st.builds(
        Compare,
        st.just("assignments.organization"),
        st.just("eq"),
        st.just(Variable("subject.org")),
    ),
)


@st.composite
def rules(draw: st.DrawFn, conditional: bool = True) -> Rule:
    rows = draw(st.one_of(st.none(), compares, compares.map(Not))) if conditional else None
    common: dict[str, Any] = {
        "name": f"r{draw(st.integers(0, 10**6))}",
        "resource": "Customer",
        "subjects": tuple(draw(st.lists(subjects, min_size=1, max_size=2))),
        "rows": rows,
    }
    if draw(st.booleans()):
        return Rule(
            **common,
            effect=Effect.DENY,
            fields=tuple(draw(st.lists(st.sampled_from(NAMES), max_size=2))),
        )
    visible = draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True))
    masked = draw(st.lists(st.sampled_from(["email", "phone", "name"]), max_size=2, unique=True))
    return Rule(**common, read=Read(tuple(visible), {m: MaskSpec("redact") for m in masked}))


callers = st.builds(
    Caller,
    org=st.sampled_from(["acme", "globex", "initech"]),
    kind=st.sampled_from(["distributor", "supplier"]),
    roles=st.sampled_from([frozenset(), frozenset({"sales"})]),
    attributes=st.just({"regions": ["north"]}),
)
records = st.fixed_dictionaries(
    {
        "name": st.just("Ada"),
        "email": st.just("ada@example.com"),
        "phone": st.just("+44 20 7946 0018"),
        "region": st.sampled_from(["north", "south", None]),
        "consent_share_with_partners": st.sampled_from([True, False, None]),
        "assignments": st.lists(
            st.fixed_dictionaries({"organization": st.sampled_from(["acme", "globex"])}), max_size=2
        ),
    }
)


@settings(max_examples=200, deadline=None)
@given(st.lists(rules(), max_size=5), callers, records)
def test_field_access_bounds_every_decision(
    rs: list[Rule], caller: Caller, record: dict[str, Any]
) -> None:
    document = Document(tuple(rs))
    access = field_access(document, CATALOG, caller, "Customer")
    decision = evaluate(document, CATALOG, caller, "Customer", record)
    assert all(decision.outcome(f) <= access[f] for f in FIELDS)


@settings(max_examples=200, deadline=None)
@given(st.lists(rules(conditional=False), max_size=5), callers, records)
def test_field_access_is_exact_without_conditions(
    rs: list[Rule], caller: Caller, record: dict[str, Any]
) -> None:
    document = Document(tuple(rs))
    decision = evaluate(document, CATALOG, caller, "Customer", record)
    assert field_access(document, CATALOG, caller, "Customer") == {
        f: decision.outcome(f) for f in FIELDS
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(rules(), max_size=5), callers.filter(lambda c: c.org != "initech"))
def test_must_not_see_agrees_with_field_access(rs: list[Rule], caller: Caller) -> None:
    orgs = {"acme": caller.kind, "globex": caller.kind}
    role = next(iter(caller.roles), None)
    subject = Subject(org=caller.org, role=role)
    expectations = tuple(Expectation(f, "Customer", subject, must_not_see=(f,)) for f in FIELDS)
    document = Document(tuple(rs), expectations=expectations)
    failing = {v.name for v in run_expectations(document, CATALOG, orgs)}
    access = field_access(document, CATALOG, caller, "Customer")
    assert failing == {f for f in FIELDS if access[f] is not Outcome.HIDDEN}


def canonical(rule: Rule) -> Rule:
    """``rule`` with its lists in one order: they are sets to the evaluator."""
    return dataclasses.replace(
        rule,
        subjects=tuple(sorted(set(rule.subjects), key=repr)),
        read=Read(tuple(sorted(set(rule.read.visible))), dict(rule.read.masked)),
        fields=tuple(sorted(set(rule.fields))),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(rules(), max_size=4), rules(), rules())
def test_diff_reports_exactly_the_rules_that_differ(
    others: list[Rule], before: Rule, after: Rule
) -> None:
    before = dataclasses.replace(before, name="x")
    after = dataclasses.replace(after, name="x")
    old = Document((before, *others))
    new = Document((after, *others))
    assert diff_documents(old, old) == []
    changes = diff_documents(old, new)
    if canonical(before) == canonical(after):
        assert changes == []
    else:
        assert [(c.name, c.change) for c in changes] == [("x", "changed")]
        assert changes[0].details
