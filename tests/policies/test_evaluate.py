"""The evaluator (oracle) and explain, by example."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

import pytest

from policies import Outcome, evaluate, explain, parse, project
from policies.evaluate import holds
from tests.policies.factories import make_caller, make_catalog

POLICY = parse(
    textwrap.dedent(
        """\
        rules:
          - name: assigned
            subjects: [{kind: distributor}]
            resource: Customer
            rows:
              and:
                - consent_share_with_partners: {eq: true}
                - assignments.organization: {eq: $subject.org}
            read:
              visible: [id, name]
              masked: {email: partial_email, phone: last4, lifetime_value: bucket}
          - name: own-region
            subjects: [{kind: distributor}]
            resource: Customer
            rows: {region: {in: $subject.attributes.regions}}
            read:
              visible: [id, email, region]
              masked: {name: initials}
          - name: no-value-for-vip
            effect: deny
            subjects: [{org: acme}]
            resource: Customer
            rows: {traits.vip: {eq: true}}
            fields: [lifetime_value, email]
          - name: blocked
            effect: deny
            subjects: [{kind: distributor}]
            resource: Customer
            rows: {region: {eq: embargoed}}
        """
    )
)


def customer(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": "c1",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0018",
        "region": "south",
        "lifetime_value": 1234,
        "consent_share_with_partners": True,
        "traits": {"vip": False},
        "assignments": [{"organization": "acme"}],
    }
    values.update(overrides)
    return values


def outcomes(record: dict[str, Any], **caller: Any) -> dict[str, str]:
    decision = evaluate(POLICY, make_catalog(), make_caller(**caller), "Customer", record)
    return {k: v.outcome.name.lower() for k, v in decision.fields.items() if v.outcome}


def test_deny_by_default() -> None:
    decision = evaluate(
        POLICY, make_catalog(), make_caller(kind="supplier"), "Customer", customer()
    )
    assert not decision.row_visible
    assert all(fd.outcome is Outcome.HIDDEN for fd in decision.fields.values())


def test_one_allow_rule() -> None:
    assert outcomes(customer()) == {
        "id": "visible",
        "name": "visible",
        "email": "masked",
        "phone": "masked",
        "lifetime_value": "masked",
    }


def test_rows_condition_not_holding_hides_the_row() -> None:
    decision = evaluate(POLICY, make_catalog(), make_caller(org="globex"), "Customer", customer())
    assert not decision.row_visible and decision.row_rules == ()


def test_most_permissive_outcome_across_rules() -> None:
    decision = evaluate(POLICY, make_catalog(), make_caller(), "Customer", customer(region="north"))
    assert decision.row_rules == ("assigned", "own-region")
    assert decision.fields["email"].outcome is Outcome.VISIBLE
    assert decision.fields["email"].rule == "own-region"
    assert decision.fields["name"].outcome is Outcome.VISIBLE
    assert decision.fields["name"].rule == "assigned"
    assert decision.fields["region"].outcome is Outcome.VISIBLE
    assert decision.fields["phone"].outcome is Outcome.MASKED


def test_deny_with_fields_overrides_allows() -> None:
    record = customer(region="north", traits={"vip": True})
    decision = evaluate(POLICY, make_catalog(), make_caller(), "Customer", record)
    assert decision.row_visible
    assert decision.fields["email"].outcome is Outcome.HIDDEN
    assert decision.fields["email"].rule == "no-value-for-vip"
    assert decision.fields["lifetime_value"].outcome is Outcome.HIDDEN
    assert decision.fields["name"].outcome is Outcome.VISIBLE


def test_deny_without_fields_hides_the_row() -> None:
    decision = evaluate(
        POLICY, make_catalog(), make_caller(), "Customer", customer(region="embargoed")
    )
    assert not decision.row_visible
    assert decision.row_rules == ("blocked",)
    assert decision.fields["name"].rule == "blocked"


def test_project_applies_masks() -> None:
    record = customer()
    decision = evaluate(POLICY, make_catalog(), make_caller(), "Customer", record)
    assert project(decision, record, secret=b"k", partner="acme") == {
        "id": "c1",
        "name": "Ada Lovelace",
        "email": "a***@example.com",
        "phone": "****0018",
        "lifetime_value": "1000-4999",
    }


def test_explain_lists_outcomes_and_rules() -> None:
    report = explain(POLICY, make_catalog(), make_caller(), "Customer", customer())
    assert report["row"] == {"visible": True, "rules": ["assigned"]}
    assert report["fields"]["phone"] == {"outcome": "masked", "mask": "last4", "rule": "assigned"}
    assert report["fields"]["traits"] == {"outcome": "hidden", "mask": None, "rule": None}
    assert report["rules"][1] == {
        "name": "own-region",
        "effect": "allow",
        "applies": True,
        "rows": False,
    }


CONDITIONS = [
    ("region: {eq: north}", {"region": "north"}, True),
    ("region: {eq: north}", {"region": None}, None),
    ("not: {region: {eq: north}}", {"region": None}, None),
    ("region: {ne: north}", {"region": "south"}, True),
    ("region: {nin: [a, b]}", {"region": "c"}, True),
    ("region: {is_null: true}", {}, True),
    ("score: {gte: 3}", {"score": 3}, True),
    ("score: {lt: 3}", {"score": 3}, False),
    ("score: {eq: 1}", {"score": True}, False),
    ("assignments.organization: {eq: acme}", {"assignments": []}, False),
    ("assignments.organization: {ne: acme}", {"assignments": [{"organization": "x"}]}, True),
    ("or: [{score: {eq: 1}}, {region: {eq: x}}]", {"score": None, "region": "x"}, True),
    ("and: [{score: {eq: 1}}, {region: {eq: x}}]", {"score": None, "region": "y"}, False),
    (
        "created_at: {gt: '2024-01-01'}",
        {"created_at": dt.date(2024, 5, 1)},
        True,
    ),
]


@pytest.mark.parametrize(("condition", "record", "expected"), CONDITIONS)
def test_conditions_in_three_valued_logic(
    condition: str, record: dict[str, Any], expected: bool | None
) -> None:
    doc = parse(
        "rules:\n  - name: r\n    subjects: [{kind: x}]\n    resource: Customer\n"
        f"    rows: {{{condition}}}\n"
    )
    rows = doc.rules[0].rows
    assert rows is not None
    assert holds(rows, record, make_caller()) is expected
