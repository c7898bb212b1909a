"""The parser: YAML and JSON to a Document, errors at line:column."""

from __future__ import annotations

import textwrap

import pytest

from policies import (
    And,
    Compare,
    Effect,
    MaskSpec,
    Not,
    Or,
    PolicySyntaxError,
    Position,
    Subject,
    Variable,
    parse,
)

GOOD = textwrap.dedent(
    """\
    rules:
      - name: distributors-see-assigned
        subjects: [{kind: distributor}, {org: acme, role: sales}]
        resource: Customer
        rows:
          and:
            - consent_share_with_partners: {eq: true}
            - assignments.organization: {eq: $subject.org}
            - not: {region: {in: [south, west]}}
          or:
            - lifetime_value: {gte: 10, lt: 500}
            - email: {is_null: false}
        read:
          visible: [name, region]
          masked:
            email: partial_email
            lifetime_value: {mask: bucket, edges: [0, 1000, 5000]}
        write:
          fields: [region]
          check: {region: {in: $subject.attributes.regions}}
          presets: {region: north}
      - name: no-phone
        effect: deny
        subjects: [{scope: "customers:read"}]
        resource: Customer
        fields: [phone]
    guardrails:
      - name: consent
        subjects: [{kind: distributor}]
        resource: Customer
        rows: {consent_share_with_partners: {eq: true}}
        hidden: [traits]
    expect:
      - subject: {org: acme, kind: distributor}
        resource: Customer
        must_not_see: [phone]
    """
)


def test_parses_a_full_document() -> None:
    doc = parse(GOOD)
    allow, deny = doc.rules
    assert allow.subjects == (Subject(kind="distributor"), Subject(org="acme", role="sales"))
    assert allow.effect is Effect.ALLOW
    assert allow.rows == And(
        (
            And(
                (
                    Compare("consent_share_with_partners", "eq", True),
                    Compare("assignments.organization", "eq", Variable("subject.org")),
                    Not(Compare("region", "in", ("south", "west"))),
                )
            ),
            Or(
                (
                    And(
                        (Compare("lifetime_value", "gte", 10), Compare("lifetime_value", "lt", 500))
                    ),
                    Compare("email", "is_null", False),
                )
            ),
        )
    )
    assert allow.read.visible == ("name", "region")
    assert allow.read.masked == {
        "email": MaskSpec("partial_email"),
        "lifetime_value": MaskSpec("bucket", (0, 1000, 5000)),
    }
    assert allow.write is not None
    assert allow.write.presets == {"region": "north"}
    assert allow.write.check == Compare("region", "in", Variable("subject.attributes.regions"))
    assert deny.effect is Effect.DENY and deny.fields == ("phone",)
    assert doc.guardrails[0].hidden == ("traits",)
    assert doc.expectations[0].must_not_see == ("phone",)
    assert doc.expectations[0].subject == Subject(org="acme", kind="distributor")


def test_positions_are_recorded() -> None:
    doc = parse(GOOD)
    assert doc.rules[0].pos == Position(2, 5)
    assert doc.position("rules", 0, "read", "visible", 1) == Position(14, 23)
    assert doc.position("rules", 0, "read", "masked", "email") == Position(16, 9)
    assert doc.position("rules", 0, "resource") == Position(4, 15)


def test_json_gives_the_same_document() -> None:
    source = """{"rules": [{"name": "r", "subjects": [{"kind": "supplier"}],
      "resource": "Feedback", "rows": {"score": {"gt": 3}},
      "read": {"visible": ["text"], "masked": {"customer_id": "pseudonym"}}}]}"""
    yaml_source = textwrap.dedent(
        """\
        rules:
          - name: r
            subjects: [{kind: supplier}]
            resource: Feedback
            rows: {score: {gt: 3}}
            read: {visible: [text], masked: {customer_id: pseudonym}}
        """
    )
    assert parse(source, format="json") == parse(yaml_source)


RULE = "rules:\n  - name: r\n    subjects: [{kind: distributor}]\n    resource: Customer\n"

ERRORS = [
    pytest.param("", 1, 1, "the policy document is empty", id="empty"),
    pytest.param("rules: [", 1, 9, "invalid YAML", id="yaml-syntax"),
    pytest.param("rule: []", 1, 1, "unknown key 'rule' in the policy document", id="top-key"),
    pytest.param("rules: {}", 1, 8, "rules must be a list, not a mapping", id="rules-type"),
    pytest.param("a: 1\n---\nb: 2", 3, 1, "expected one document", id="two-docs"),
    pytest.param(
        RULE + "    colour: red\n", 5, 5, "unknown key 'colour' in rule #0", id="rule-key"
    ),
    pytest.param(
        "rules:\n  - name: r\n    resource: Customer\n",
        2,
        5,
        "rule #0 is missing 'subjects'",
        id="missing-subjects",
    ),
    pytest.param(
        RULE + "    rows: {email: {like: '%@x'}}\n",
        5,
        20,
        "unknown operator 'like' on 'email'",
        id="unknown-op",
    ),
    pytest.param(
        RULE + "    rows: {xor: [{email: {eq: a}}]}\n",
        5,
        12,
        "unknown boolean operator 'xor'",
        id="unknown-bool-op",
    ),
    pytest.param(
        RULE + "    rows: {email: a}\n",
        5,
        19,
        "the condition on 'email' must be a mapping of operators",
        id="bare-value",
    ),
    pytest.param(
        RULE + "    rows: {and: {email: {eq: a}}}\n",
        5,
        17,
        "'and' takes a non-empty list of conditions",
        id="and-not-list",
    ),
    pytest.param(
        RULE + "    effect: maybe\n", 5, 13, "effect must be 'allow' or 'deny'", id="effect"
    ),
    pytest.param(
        RULE + "    effect: deny\n    read: {visible: [name]}\n",
        6,
        5,
        "a deny rule takes 'fields'",
        id="deny-read",
    ),
    pytest.param(
        RULE + "    fields: [name]\n", 5, 5, "'fields' is only for deny rules", id="allow-fields"
    ),
    pytest.param(
        RULE + "    read: {visible: name}\n",
        5,
        21,
        "read.visible must be a list, not a string",
        id="visible-type",
    ),
    pytest.param(
        RULE + "    read: {visible: [1]}\n",
        5,
        22,
        "must be a string, not an integer (1)",
        id="visible-item",
    ),
    pytest.param(
        RULE + "    read: {hidden: [name]}\n",
        5,
        12,
        "unknown key 'hidden' in rule 'r': read",
        id="read-key",
    ),
    pytest.param(
        RULE + "    read: {masked: {v: {mask: bucket, edges: [5, 1]}}}\n",
        5,
        46,
        "edges must be strictly increasing",
        id="edges-order",
    ),
    pytest.param(
        "rules:\n  - name: r\n    subjects: [{team: x}]\n    resource: Customer\n",
        3,
        17,
        "unknown key 'team' in a subject",
        id="subject-key",
    ),
    pytest.param(
        "rules:\n  - name: r\n    subjects: []\n    resource: Customer\n",
        3,
        15,
        "subjects must not be empty",
        id="subjects-empty",
    ),
    pytest.param(
        RULE + "  - name: r\n    subjects: [{kind: x}]\n    resource: Customer\n",
        5,
        5,
        "rule name 'r' is already used at 2:5",
        id="duplicate-name",
    ),
    pytest.param(
        RULE + "    rows: {email: {eq: a, eq: b}}\n",
        5,
        27,
        "duplicate key 'eq'",
        id="duplicate-key",
    ),
    pytest.param(
        RULE + "    rows: {a..b: {eq: 1}}\n", 5, 12, "'a..b' is not a field path", id="bad-path"
    ),
]


@pytest.mark.parametrize(("source", "line", "column", "message"), ERRORS)
def test_errors_name_line_and_column(source: str, line: int, column: int, message: str) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        parse(source)
    assert message in info.value.message
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert str(info.value).startswith(f"{line}:{column}: ")


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        pytest.param('{"rules": [}', 1, 12, id="bad-json"),
        pytest.param('{"rules": [\n  {"name": "r",}\n]}', 2, 16, id="trailing-comma"),
    ],
)
def test_json_syntax_errors_name_line_and_column(source: str, line: int, column: int) -> None:
    with pytest.raises(PolicySyntaxError, match="invalid JSON") as info:
        parse(source, format="json")
    assert (info.value.line, info.value.column) == (line, column)


def test_json_structure_errors_name_line_and_column() -> None:
    source = '{"rules": [\n  {"name": "r", "subjects": [{"kind": "x"}],\n   "resource": "Customer", "oops": 1}\n]}'
    with pytest.raises(PolicySyntaxError, match="unknown key 'oops'") as info:
        parse(source, format="json")
    assert (info.value.line, info.value.column) == (3, 28)


def test_definitions_hold_anchors_shared_by_rules() -> None:
    source = """
definitions:
  contact: &contact [email, phone]
rules:
  - name: a
    subjects: [{kind: distributor}]
    resource: Customer
    read: {visible: *contact}
  - name: b
    subjects: [{kind: supplier}]
    resource: Customer
    read: {visible: *contact}
"""
    document = parse(source)
    assert [rule.read.visible for rule in document.rules] == [("email", "phone")] * 2


def test_a_document_without_rules_denies_everything() -> None:
    document = parse("guardrails: []\n")
    assert document.rules == ()
