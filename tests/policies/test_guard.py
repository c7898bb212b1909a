"""Guardrail and expectation checks at publish: by example, and sound against the oracle."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    And,
    Caller,
    Compare,
    Condition,
    Document,
    Effect,
    Expectation,
    Guardrail,
    MaskSpec,
    Not,
    Or,
    Outcome,
    Read,
    Rule,
    Subject,
    Variable,
    evaluate,
    holds,
    parse,
)
from policies.evaluate import subject_matches
from policies.guard import (
    Violation,
    check_guardrails,
    describe,
    describe_subject,
    implies,
    run_expectations,
)
from tests.policies.factories import make_catalog

CATALOG = make_catalog()
ORGS = {"acme": "distributor", "globex": "supplier"}

CONSENT = "consent_share_with_partners: {eq: true}"
GUARDRAIL = f"""\
guardrails:
  - name: partner-consent
    subjects: [{{kind: distributor}}]
    resource: Customer
    rows: {{{CONSENT}}}
    hidden: [phone, traits.internal_notes]
"""


def rule(
    rows: str | None = None,
    *,
    name: str = "r",
    subjects: str = "[{kind: distributor}]",
    visible: str = "[name]",
    masked: str = "{}",
    resource: str = "Customer",
) -> str:
    """One allow rule as YAML text, to paste under ``rules:``."""
    text = (
        f"  - name: {name}\n    subjects: {subjects}\n    resource: {resource}\n"
        f"    read: {{visible: {visible}, masked: {masked}}}\n"
    )
    return text + (f"    rows: {{{rows}}}\n" if rows else "")


def deny(
    *, name: str = "d", subjects: str = "[{kind: distributor}]", fields: str = "", rows: str = ""
) -> str:
    text = f"  - name: {name}\n    effect: deny\n    subjects: {subjects}\n    resource: Customer\n"
    text += f"    fields: {fields}\n" if fields else ""
    return text + (f"    rows: {{{rows}}}\n" if rows else "")


def guard(*rules: str, guardrails: str = GUARDRAIL, orgs: dict[str, str] = ORGS) -> list[Violation]:
    doc = parse("rules:\n" + "".join(rules) + guardrails)
    return check_guardrails(doc, CATALOG, doc.guardrails, orgs)


def blamed(violations: list[Violation]) -> list[str | None]:
    return [v.rule for v in violations]


# -- rows ----------------------------------------------------------------------------------

ROWS_CASES = [
    pytest.param(None, False, id="no-rows"),
    pytest.param(CONSENT, True, id="equal"),
    pytest.param("consent_share_with_partners: {eq: false}", False, id="other-value"),
    pytest.param(f"{CONSENT}, region: {{eq: north}}", True, id="and-conjunct"),
    pytest.param(
        f"and: [{{region: {{eq: north}}}}, {{and: [{{{CONSENT}}}]}}]", True, id="nested-and"
    ),
    pytest.param(
        f"or: [{{{CONSENT}}}, {{{CONSENT}, region: {{eq: north}}}}]", True, id="or-all-branches"
    ),
    pytest.param(f"or: [{{{CONSENT}}}, {{region: {{eq: north}}}}]", False, id="or-one-branch"),
    pytest.param(f"not: {{not: {{{CONSENT}}}}}", False, id="double-negation-not-recognised"),
    pytest.param(
        f"and: [{{or: [{{{CONSENT}}}, {{{CONSENT}, region: {{eq: x}}}}]}}, {{region: {{eq: y}}}}]",
        True,
        id="and-of-or",
    ),
]


@pytest.mark.parametrize(("rows", "ok"), ROWS_CASES)
def test_rule_rows_must_imply_the_guardrail_rows(rows: str | None, ok: bool) -> None:
    violations = guard(rule(rows, visible="[name]"))
    assert blamed(violations) == ([] if ok else ["r"])


def test_guardrail_rows_and_are_implied_conjunct_by_conjunct() -> None:
    guardrails = GUARDRAIL.replace(CONSENT, f"{CONSENT}, region: {{ne: embargoed}}")
    rows = f"region: {{ne: embargoed}}, assignments.organization: {{eq: $subject.org}}, {CONSENT}"
    assert guard(rule(rows), guardrails=guardrails) == []
    assert blamed(guard(rule(CONSENT), guardrails=guardrails)) == ["r"]


def test_guardrail_rows_or_is_implied_by_one_branch() -> None:
    guardrails = GUARDRAIL.replace(CONSENT, f"or: [{{{CONSENT}}}, {{region: {{eq: internal}}}}]")
    assert guard(rule("region: {eq: internal}"), guardrails=guardrails) == []


def test_booleans_do_not_equal_numbers() -> None:
    # In Python True == 1, but the evaluator (like SQL) tells them apart.
    guardrails = GUARDRAIL.replace(CONSENT, "traits.shared: {eq: true}")
    assert blamed(guard(rule("traits.shared: {eq: 1}"), guardrails=guardrails)) == ["r"]
    assert guard(rule("traits.shared: {eq: true}"), guardrails=guardrails) == []


def test_a_rule_reading_no_field_still_shows_rows() -> None:
    assert blamed(guard(rule(visible="[]"))) == ["r"]


def test_deny_rules_and_other_resources_are_not_checked() -> None:
    feedback = rule(resource="Feedback", visible="[text]")
    assert guard(deny(), feedback) == []


# -- subject overlap -----------------------------------------------------------------------

OVERLAP_CASES = [
    pytest.param("{kind: distributor}", "{kind: distributor}", True, id="same-kind"),
    pytest.param("{kind: distributor}", "{kind: supplier}", False, id="other-kind"),
    pytest.param("{kind: distributor}", "{org: acme}", True, id="org-of-that-kind"),
    pytest.param("{kind: distributor}", "{org: globex}", False, id="org-of-other-kind"),
    pytest.param("{kind: distributor}", "{org: initech}", True, id="unknown-org-may-be-created"),
    pytest.param("{kind: distributor}", "{org: globex, role: sales}", False, id="org-and-role"),
    pytest.param("{kind: distributor}", "{org: globex, kind: distributor}", False, id="impossible"),
    pytest.param("{kind: distributor}", "{role: sales}", True, id="any-kind-with-role"),
    pytest.param("{org: acme}", "{kind: supplier}", False, id="kind-of-other-org"),
    pytest.param("{org: acme}", "{org: globex}", False, id="other-org"),
    pytest.param("{org: acme}", "{org: acme, scope: 'customers:read'}", True, id="narrower"),
    # A caller holds several roles and scopes: different ones do not rule out overlap.
    pytest.param("{role: admin}", "{role: sales}", True, id="roles-combine"),
    pytest.param("{scope: a}", "{scope: b}", True, id="scopes-combine"),
]


@pytest.mark.parametrize(("guarded", "subject", "overlap"), OVERLAP_CASES)
def test_subject_overlap(guarded: str, subject: str, overlap: bool) -> None:
    guardrails = GUARDRAIL.replace("[{kind: distributor}]", f"[{guarded}]")
    violations = guard(rule(subjects=f"[{subject}]"), guardrails=guardrails)
    assert blamed(violations) == (["r"] if overlap else [])


def test_one_overlapping_subject_of_several_is_enough() -> None:
    violations = guard(rule(subjects="[{kind: supplier}, {org: initech}]"))
    assert violations[0].message.startswith(
        "rule 'r' lets {org: initech} (overlapping the guardrail's {kind: distributor}) read"
    )


def test_different_roles_overlap_because_a_caller_holds_both() -> None:
    guardrails = GUARDRAIL.replace("[{kind: distributor}]", "[{role: admin}]")
    doc = parse("rules:\n" + rule(subjects="[{role: sales}]") + guardrails)
    caller = Caller("acme", "distributor", frozenset({"sales", "admin"}))
    record = {"consent_share_with_partners": False}
    assert evaluate(doc, CATALOG, caller, "Customer", record).row_visible
    assert blamed(check_guardrails(doc, CATALOG, doc.guardrails, ORGS)) == ["r"]


def test_overlap_follows_the_orgs_given() -> None:
    subjects = "[{org: globex}]"
    assert guard(rule(subjects=subjects)) == []
    assert blamed(guard(rule(subjects=subjects), orgs={"globex": "distributor"})) == ["r"]
    assert blamed(guard(rule(subjects=subjects), orgs={})) == ["r"]


# -- deny exceptions -----------------------------------------------------------------------

DENY_CASES = [
    pytest.param(deny(), True, id="row-deny-same-subject"),
    pytest.param(deny(subjects="[{org: acme}]"), False, id="row-deny-narrower"),
    pytest.param(deny(subjects="[{org: acme}, {kind: distributor}]"), True, id="one-of-subjects"),
    # The negated condition leaves rows where consent is null (unknown) visible.
    pytest.param(deny(rows=f"not: {{{CONSENT}}}"), False, id="negated-rows-not-accepted"),
    pytest.param(deny(fields="[name]"), False, id="field-deny-keeps-the-row"),
]


@pytest.mark.parametrize(("extra", "ok"), DENY_CASES)
def test_row_deny_exception(extra: str, ok: bool) -> None:
    assert blamed(guard(rule(), extra)) == ([] if ok else ["r"])


def test_row_deny_covers_an_org_of_its_kind() -> None:
    assert guard(rule(subjects="[{org: acme}]"), deny()) == []
    # An unknown org overlaps the guardrail only as a distributor: the deny covers that too.
    assert guard(rule(subjects="[{org: initech}]"), deny()) == []
    assert blamed(
        guard(rule(subjects="[{kind: distributor}]"), deny(subjects="[{org: acme}]"))
    ) == ["r"]


def test_row_deny_covers_the_overlap_only() -> None:
    # Only distributors are guarded, and the deny hides every row from them.
    assert guard(rule(subjects="[{role: sales}]"), deny()) == []


# -- hidden fields -------------------------------------------------------------------------

HIDDEN_CASES = [
    pytest.param({"visible": "[phone]"}, "", "phone (visible), which must stay hidden", id="vis"),
    pytest.param({"masked": "{phone: last4}"}, "", "phone (masked)", id="masked"),
    pytest.param(
        {"visible": "[traits]"},
        "",
        "traits (visible), which exposes hidden traits.internal_notes",
        id="json-field",
    ),
    pytest.param({"visible": "[phone]"}, deny(fields="[phone]"), None, id="field-deny"),
    pytest.param({"visible": "[traits]"}, deny(fields="[traits]"), None, id="json-deny"),
    pytest.param({"visible": "[phone]"}, deny(), None, id="row-deny"),
    pytest.param(
        {"visible": "[phone]"},
        deny(fields="[phone]", rows="region: {eq: north}"),
        "phone (visible)",
        id="conditional-deny",
    ),
    pytest.param(
        {"visible": "[phone]"},
        deny(fields="[phone]", subjects="[{org: acme}]"),
        "phone (visible)",
        id="deny-narrower",
    ),
    pytest.param(
        {"visible": "[traits]"},
        deny(fields="[traits.internal_notes]"),
        "traits (visible)",
        id="deny-of-a-path-hides-nothing",
    ),
]


@pytest.mark.parametrize(("read", "extra", "expected"), HIDDEN_CASES)
def test_hidden_fields(read: dict[str, str], extra: str, expected: str | None) -> None:
    violations = guard(rule(CONSENT, **read), extra)
    if expected is None:
        assert violations == []
    else:
        (violation,) = violations
        assert violation.rule == "r"
        assert f"see Customer.{expected}" in violation.message
        assert violation.message.endswith("(guardrail 'partner-consent')")


def test_hidden_paths_of_one_json_field_make_one_violation() -> None:
    guardrails = GUARDRAIL.replace("[phone, traits.internal_notes]", "[traits.a, traits.b]")
    (violation,) = guard(rule(CONSENT, visible="[traits]"), guardrails=guardrails)
    assert "exposes hidden traits.a, traits.b" in violation.message


def test_a_rule_can_break_both_rows_and_hidden_fields() -> None:
    violations = guard(rule(visible="[phone, traits]"))
    assert [v.message.split("} ")[1].split(" ")[0] for v in violations] == ["read", "see", "see"]
    assert "Customer.phone" in violations[1].message
    assert "Customer.traits" in violations[2].message


# -- messages and positions ----------------------------------------------------------------


def test_message_names_rule_subject_condition_and_guardrail() -> None:
    ok = rule(CONSENT, name="ok")
    bad = rule("assignments.organization: {eq: $subject.org}", name="dist-see-assigned")
    doc = parse("rules:\n" + ok + bad + GUARDRAIL)
    (violation,) = check_guardrails(doc, CATALOG, doc.guardrails, ORGS)
    assert violation == Violation(
        "guardrail",
        "partner-consent",
        "dist-see-assigned",
        "rule 'dist-see-assigned' lets {kind: distributor} read Customer rows where "
        "assignments.organization eq $subject.org without requiring "
        "consent_share_with_partners eq true (guardrail 'partner-consent')",
        doc.rules[1].pos,
    )
    assert str(violation).startswith("7:5: rule 'dist-see-assigned'")


def test_operator_guardrails_are_passed_in() -> None:
    doc = parse("rules:\n" + rule())
    operator = Guardrail("op", "Customer", (Subject(org="acme"),), hidden=("name",))
    (violation,) = check_guardrails(doc, CATALOG, [operator], ORGS)
    assert violation.name == "op"
    assert "see Customer.name (visible)" in violation.message


def test_unknown_resources_do_not_crash() -> None:
    guardrails = GUARDRAIL.replace("resource: Customer", "resource: Widget")
    violations = guard(rule(resource="Widget", visible="[phone]"), guardrails=guardrails)
    assert blamed(violations) == ["r", "r"]
    assert "see Widget.phone" in violations[1].message


DESCRIBE_CASES = [
    (Compare("region", "eq", "north"), "region eq north"),
    (Compare("region", "in", ("a", "b c")), 'region in [a, "b c"]'),
    (Compare("email", "is_null", False), "email is_null false"),
    (Compare("region", "eq", None), "region eq null"),
    (
        Compare("region", "in", Variable("subject.attributes.regions")),
        "region in $subject.attributes.regions",
    ),
    (Compare("created_at", "gt", dt.date(2024, 1, 2)), "created_at gt 2024-01-02"),
    (Compare("lifetime_value", "gte", 10.5), "lifetime_value gte 10.5"),
    (Compare("region", "eq", ""), 'region eq ""'),
    # Strings YAML would read as another type are quoted, so they differ from that type.
    (Compare("traits.flag", "eq", "true"), 'traits.flag eq "true"'),
    (Compare("traits.flag", "eq", True), "traits.flag eq true"),
    (Compare("created_at", "gt", "2024-01-02"), 'created_at gt "2024-01-02"'),
    (Compare("region", "eq", "12"), 'region eq "12"'),
    (Compare("region", "eq", "$x"), 'region eq "$x"'),
    (Compare("region", "eq", "customers:read"), "region eq customers:read"),
    (
        And((Compare("a", "eq", 1), Or((Compare("b", "eq", 2), Not(Compare("c", "eq", 3)))))),
        "and(a eq 1, or(b eq 2, not(c eq 3)))",
    ),
]


@pytest.mark.parametrize(("cond", "text"), DESCRIBE_CASES)
def test_describe(cond: Condition, text: str) -> None:
    assert describe(cond) == text


def test_describe_subject() -> None:
    subject = Subject(org="acme", kind="distributor", role="sales", scope="customers:read")
    assert describe_subject(subject) == (
        "{org: acme, kind: distributor, role: sales, scope: customers:read}"
    )
    assert describe_subject(Subject(kind="supplier")) == "{kind: supplier}"


A, B, C = (Compare(p, "eq", True) for p in "abc")
IMPLIES_CASES = [
    (A, A, True),
    (A, B, False),
    (And((A, B)), A, True),
    (A, And((A, B)), False),
    (And((A, B, C)), And((C, A)), True),
    (Or((A, And((A, B)))), A, True),
    (Or((A, B)), A, False),
    (A, Or((B, A)), True),
    (Or((A, B)), Or((B, C, A)), True),
    (Not(A), Not(A), True),
    (Not(And((A, B))), Not(A), False),
    (Compare("a", "in", (1, True)), Compare("a", "in", (True, True)), False),
]


@pytest.mark.parametrize(("cond", "target", "expected"), IMPLIES_CASES)
def test_implies(cond: Condition, target: Condition, expected: bool) -> None:
    assert implies(cond, target) is expected


# -- expectations --------------------------------------------------------------------------


def expect(*rules: str, subject: str = "{org: acme}", **fields: str) -> list[Violation]:
    entry = f"  - name: e\n    subject: {subject}\n    resource: Customer\n"
    entry += "".join(f"    {key}: {value}\n" for key, value in fields.items())
    doc = parse("rules:\n" + "".join(rules) + "expect:\n" + entry)
    return run_expectations(doc, CATALOG, ORGS)


MUST_NOT_SEE_CASES = [
    pytest.param([rule(masked="{phone: last4}")], "{org: acme}", "r", id="masked-counts"),
    pytest.param([rule(visible="[phone]", rows=CONSENT)], "{org: acme}", "r", id="any-rows"),
    pytest.param([rule(visible="[phone]")], "{org: globex}", None, id="rule-for-other-kind"),
    pytest.param([rule(visible="[phone]"), deny(fields="[phone]")], "{org: acme}", None, id="deny"),
    pytest.param([rule(visible="[phone]"), deny()], "{org: acme}", None, id="row-deny"),
    pytest.param(
        [rule(visible="[phone]"), deny(fields="[phone]", rows=CONSENT)],
        "{org: acme}",
        "r",
        id="conditional-deny",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{role: admin}]")],
        "{org: acme, role: sales}",
        None,
        id="exactly-the-role-named",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{role: admin}]")],
        "{org: acme}",
        None,
        id="no-role-named",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{role: admin}]")],
        "{org: acme, role: admin}",
        "r",
        id="role",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{org: acme}]")],
        "{kind: distributor}",
        "r",
        id="kind-only-some-org",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{org: globex}]")],
        "{kind: distributor}",
        None,
        id="kind-only-other-org",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{org: initech}]")],
        "{kind: distributor}",
        "r",
        id="kind-only-unknown-org",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{org: newco}]")],
        "{org: newco, kind: supplier}",
        "r",
        id="org-not-created-yet",
    ),
    pytest.param(
        [rule(name="first", visible="[name]"), rule(name="second", masked="{phone: redact}")],
        "{org: acme}",
        "second",
        id="blames-the-granting-rule",
    ),
]


@pytest.mark.parametrize(("rules", "subject", "rule_name"), MUST_NOT_SEE_CASES)
def test_must_not_see(rules: list[str], subject: str, rule_name: str | None) -> None:
    violations = expect(*rules, subject=subject, must_not_see="[phone]")
    assert blamed(violations) == ([] if rule_name is None else [rule_name])
    for violation in violations:
        assert violation.kind == "expectation" and violation.name == "e"
        assert f"rule '{rule_name}' lets {subject} see Customer.phone" in violation.message
        assert violation.message.endswith("(expectation 'e': must not see it)")


MUST_SEE_CASES = [
    pytest.param([rule(visible="[phone]")], "{org: acme}", None, id="visible"),
    pytest.param([rule(visible="[phone]", rows=CONSENT)], "{org: acme}", None, id="on-some-rows"),
    pytest.param(
        [rule(masked="{phone: last4}")], "{org: acme}", "only shows {org: acme}", id="masked"
    ),
    pytest.param([rule(visible="[name]")], "{org: acme}", "no rule lets", id="not-granted"),
    pytest.param([rule(visible="[phone]")], "{org: globex}", "no rule lets", id="other-kind"),
    pytest.param(
        [rule(visible="[phone]"), deny(fields="[phone]", subjects="[{role: sales}]")],
        "{org: acme, role: sales}",
        "rule 'd' hides Customer.phone",
        id="denied",
    ),
    pytest.param(
        [rule(visible="[phone]"), deny(subjects="[{org: acme}]")],
        "{kind: distributor}",
        "rule 'd' hides",
        id="row-denied-for-some",
    ),
    pytest.param(
        [rule(visible="[phone]"), deny(fields="[phone]", rows=CONSENT)],
        "{org: acme}",
        None,
        id="conditional-deny",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{org: acme}]")],
        "{kind: distributor}",
        "no rule lets",
        id="not-every-org-of-the-kind",
    ),
    pytest.param(
        [rule(visible="[phone]", subjects="[{role: sales}]")],
        "{org: acme}",
        "no rule lets",
        id="role-not-held",
    ),
]


@pytest.mark.parametrize(("rules", "subject", "problem"), MUST_SEE_CASES)
def test_must_see(rules: list[str], subject: str, problem: str | None) -> None:
    violations = expect(*rules, subject=subject, must_see="[phone]")
    if problem is None:
        assert violations == []
    else:
        (violation,) = violations
        assert problem in violation.message
        assert violation.message.endswith("(expectation 'e': must see it)")


def test_must_see_a_field_outside_the_catalog() -> None:
    (violation,) = expect(rule(visible="[secret]"), must_see="[secret]")
    assert "Customer.secret: it is not in the catalog" in violation.message


BAD_SUBJECT_CASES = [
    ("{org: initech}", "names unknown organization 'initech'"),
    ("{org: acme, kind: supplier}", "describes organization 'acme' as a supplier, but it is a"),
]


@pytest.mark.parametrize(("subject", "problem"), BAD_SUBJECT_CASES)
def test_expectation_subjects_must_be_known_organizations(subject: str, problem: str) -> None:
    (violation,) = expect(rule(), subject=subject, must_not_see="[phone]")
    assert problem in violation.message
    assert violation.rule is None
    assert violation.pos.line == 7  # the expectation's entry


def test_expectation_on_an_unknown_resource() -> None:
    doc = Document(expectations=(Expectation("e", "Widget", Subject(org="acme"), must_see=("x",)),))
    (violation,) = run_expectations(doc, CATALOG, ORGS)
    assert "unknown resource 'Widget'" in violation.message


def test_every_failing_field_is_reported() -> None:
    violations = expect(
        rule(visible="[phone, email]"), must_not_see="[phone, email, name]", must_see="[region]"
    )
    assert [v.message.split("Customer.")[1].split(" ")[0] for v in violations] == [
        "phone",
        "email",
        "region",
    ]


# -- properties ----------------------------------------------------------------------------

FIELDS = sorted(CATALOG.fields("Customer"))
SUBJECTS = [
    Subject(kind="distributor"),
    Subject(kind="supplier"),
    Subject(org="acme"),
    Subject(org="globex"),
    Subject(org="initech"),
    Subject(role="sales"),
    Subject(role="admin"),
    Subject(role="admin"),
    Subject(scope="customers:read"),
    Subject(org="acme", role="sales"),
    Subject(org="initech", kind="supplier"),
    Subject(kind="distributor", scope="customers:read"),
]
HIDDEN = ["phone", "email", "traits.internal_notes", "traits", "secret"]
GRANTABLE = ["name", "email", "phone", "region", "traits", "secret"]

subjects = st.lists(st.sampled_from(SUBJECTS), min_size=1, max_size=2).map(tuple)
compares: st.SearchStrategy[Condition] = st.one_of(
    st.builds(
        Compare, st.just("region"), st.sampled_from(["eq", "ne"]), st.sampled_from(["north", "x"])
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
    st.builds(Compare, st.just("email"), st.just("is_null"), st.booleans()),
)
guardrail_rows = st.one_of(st.none(), compares, st.lists(compares, min_size=2, max_size=2))


@st.composite
def guardrails(draw: st.DrawFn) -> Guardrail:
    rows = draw(guardrail_rows)
    return Guardrail(
        "g",
        "Customer",
        draw(subjects),
        And(tuple(rows)) if isinstance(rows, list) else rows,
        tuple(draw(st.lists(st.sampled_from(HIDDEN), max_size=2, unique=True))),
    )


def rows_near(target: Condition | None) -> st.SearchStrategy[Condition | None]:
    """Row conditions, many of them implying ``target`` so that some documents pass."""
    near = [
        st.none(),
        compares,
        compares.map(Not),
        st.lists(compares, min_size=2, max_size=2).map(lambda cs: And(tuple(cs))),
    ]
    if target is not None:
        near += [
            st.just(target),
            compares.map(lambda c: And((c, target))),
            compares.map(lambda c: Or((target, And((c, target))))),
            compares.map(lambda c: Or((target, c))),
        ]
    return st.one_of(*near)


@st.composite
def documents_for(draw: st.DrawFn, guardrail: Guardrail) -> Document:
    rules = []
    for i in range(draw(st.integers(0, 4))):
        common: dict[str, Any] = {"name": f"r{i}", "resource": "Customer"}
        common["subjects"] = draw(subjects)
        if draw(st.integers(0, 3)) == 0:
            fields = draw(st.lists(st.sampled_from([*GRANTABLE, "traits.internal_notes"])))
            negated = st.just(Not(guardrail.rows)) if guardrail.rows else st.nothing()
            rows = draw(st.one_of(st.none(), compares, negated))
            rules.append(Rule(**common, effect=Effect.DENY, rows=rows, fields=tuple(fields)))
        else:
            visible = draw(st.lists(st.sampled_from(GRANTABLE), max_size=3, unique=True))
            masked = draw(st.lists(st.sampled_from(["email", "phone"]), max_size=1))
            read = Read(tuple(v for v in visible if v not in masked), dict.fromkeys(masked, MASK))
            rows = draw(rows_near(guardrail.rows))
            rules.append(Rule(**common, rows=rows, read=read))
    return Document(tuple(rules))


MASK = MaskSpec("redact")
CALLERS = [
    Caller(org, kind, frozenset(roles), frozenset(scopes), {"regions": ["north"]})
    for org, kind in [
        ("acme", "distributor"),
        ("globex", "supplier"),
        ("initech", "distributor"),
        ("initech", "supplier"),
        ("umbrella", "supplier"),
    ]
    for roles in [(), ("sales",), ("admin",), ("sales", "admin")]
    for scopes in [(), ("customers:read",)]
]
records = st.fixed_dictionaries(
    {
        "name": st.just("Ada"),
        "email": st.sampled_from(["ada@example.com", None]),
        "phone": st.just("+44 20 7946 0018"),
        "region": st.sampled_from(["north", "x", None]),
        "consent_share_with_partners": st.sampled_from([True, False, None]),
        "traits": st.just({"internal_notes": "x"}),
        "assignments": st.lists(
            st.fixed_dictionaries({"organization": st.sampled_from(["acme", "initech"])}),
            max_size=2,
        ),
    }
)


@st.composite
def guarded_documents(draw: st.DrawFn) -> tuple[Guardrail, Document]:
    guardrail = draw(guardrails())
    return guardrail, draw(documents_for(guardrail))


@settings(max_examples=200, deadline=None)
@given(guarded_documents(), st.lists(records, min_size=1, max_size=4))
def test_no_violation_means_no_caller_of_the_guardrail_sees_past_it(
    case: tuple[Guardrail, Document], rows: list[dict[str, Any]]
) -> None:
    guardrail, doc = case
    if check_guardrails(doc, CATALOG, [guardrail], ORGS):
        return
    hidden = {h.split(".")[0] for h in guardrail.hidden}
    guarded = [c for c in CALLERS if any(subject_matches(s, c) for s in guardrail.subjects)]
    for caller, record in itertools.product(guarded, rows):
        decision = evaluate(doc, CATALOG, caller, "Customer", record)
        if decision.row_visible and guardrail.rows is not None:
            assert holds(guardrail.rows, record, caller) is True
        for name in hidden:
            assert decision.outcome(name) is Outcome.HIDDEN


def breaches(violations: list[Violation]) -> set[tuple[str | None, str]]:
    """(rule, "rows" or the field it exposes) for each violation, read from its message."""
    out: set[tuple[str | None, str]] = set()
    for v in violations:
        match = re.search(r" see Customer\.(\w+) ", v.message)
        out.add((v.rule, match.group(1) if match else "rows"))
    return out


@settings(max_examples=300, deadline=None)
@given(guarded_documents(), st.lists(records, min_size=1, max_size=4))
def test_every_rule_showing_past_a_guardrail_is_blamed(
    case: tuple[Guardrail, Document], rows: list[dict[str, Any]]
) -> None:
    """Stronger than the above: whatever else the document breaks, each rule that lets a
    guarded caller see a row or field past the guardrail is named for that breach."""
    guardrail, doc = case
    blame = breaches(check_guardrails(doc, CATALOG, [guardrail], ORGS))
    hidden = {h.split(".")[0] for h in guardrail.hidden}
    guarded = [c for c in CALLERS if any(subject_matches(s, c) for s in guardrail.subjects)]
    for caller, record in itertools.product(guarded, rows):
        decision = evaluate(doc, CATALOG, caller, "Customer", record)
        if not decision.row_visible:
            continue
        if guardrail.rows is not None and holds(guardrail.rows, record, caller) is not True:
            assert {(r, "rows") for r in decision.row_rules} <= blame
        for name in hidden & set(FIELDS):
            fd = decision.fields[name]
            assert fd.outcome is Outcome.HIDDEN or (fd.rule, name) in blame


def test_the_property_sees_passing_documents() -> None:
    """Guard against a vacuous property: the strategy yields documents that pass."""
    passing = 0

    @settings(max_examples=100, database=None, deadline=None)
    @given(guarded_documents())
    def count(case: tuple[Guardrail, Document]) -> None:
        nonlocal passing
        guardrail, doc = case
        passing += bool(doc.rules) and not check_guardrails(doc, CATALOG, [guardrail], ORGS)

    count()
    assert passing >= 10


@settings(max_examples=200, deadline=None)
@given(
    guarded_documents(),
    st.sampled_from([c for c in CALLERS if c.org in ORGS and len(c.roles) < 2 and c.scopes]),
    st.lists(records, min_size=1, max_size=4),
)
def test_must_not_see_passing_means_the_caller_never_sees_the_field(
    case: tuple[Guardrail, Document], caller: Caller, rows: list[dict[str, Any]]
) -> None:
    _, doc = case
    role = next(iter(caller.roles), None)
    subject = Subject(org=caller.org, role=role, scope="customers:read")
    expectations = tuple(Expectation(f, "Customer", subject, must_not_see=(f,)) for f in FIELDS)
    doc = Document(doc.rules, expectations=expectations)
    failing = {v.name for v in run_expectations(doc, CATALOG, ORGS)}
    for record in rows:
        decision = evaluate(doc, CATALOG, caller, "Customer", record)
        for name in FIELDS:
            if name not in failing:
                assert decision.outcome(name) is Outcome.HIDDEN
