"""The operator's consent guardrails over the registry: one ``about: Customer`` guardrail
covers every resource about a customer (a new one as soon as the registry relates it to a
customer); the exempt ones are named in policies/defaults/guardrails.yaml."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects import postgresql

from hub import sharing
from hub.access import REGISTRY, Resource
from hub.access.catalog import CATALOG
from hub.access.policy_rules import PolicyRules, conjuncts
from hub.models import OrgKind
from hub.principal import Principal
from policies import check_guardrails, concrete_guardrails, describe, parse

PARTNERS = "[{kind: supplier}, {kind: vendor}, {kind: distributor}]"


def test_the_guardrails_in_force_are_those_written_out_before() -> None:
    """The four guardrails policies/defaults/guardrails.yaml spelled out one by one
    before the ``about`` guardrail replaced three of them: same resources, conditions
    and subjects."""
    concrete = concrete_guardrails(sharing.operator_guardrails(), CATALOG)
    assert [(g.resource, describe(g.rows) if g.rows else None) for g in concrete] == [
        ("Customer", "consent_share_with_partners eq true"),
        ("Feedback", "customer.consent_share_with_partners eq true"),
        ("Case", "customer.consent_share_with_partners eq true"),
        ("CaseNote", "case.customer.consent_share_with_partners eq true"),
    ]
    partners = {"supplier", "vendor", "distributor"}
    assert all({s.kind for s in g.subjects} == partners for g in concrete)
    assert concrete[0].hidden == ("traits", "provenance", "lifetime_value")


def test_every_resource_about_a_customer_is_guarded_unless_exempt() -> None:
    (about,) = [g for g in sharing.operator_guardrails() if g.about]
    guarded = {g.resource for g in concrete_guardrails([about], CATALOG)}
    related = {r.value for r in REGISTRY if CATALOG.path_to(r.value, "Customer") is not None}
    assert guarded == related - set(about.exempt)
    assert set(about.exempt) <= related


def test_a_partner_rule_forgetting_consent_on_a_related_record_is_refused() -> None:
    document = parse(
        f"""rules:
  - name: suppliers-notes
    subjects: [{{kind: supplier}}]
    resource: CaseNote
    rows: {{case.organization: {{eq: $subject.org}}}}
    read: {{visible: [id, text]}}
  - name: distributors-notes
    subjects: {PARTNERS}
    resource: CaseNote
    rows: {{case.customer.consent_share_with_partners: {{eq: true}}}}
    read: {{visible: [id]}}
"""
    )
    guardrails = [*sharing.operator_guardrails(), *document.guardrails]
    (violation,) = check_guardrails(document, CATALOG, guardrails, {})
    assert violation.rule == "suppliers-notes"
    assert violation.message == (
        "rule 'suppliers-notes' lets {kind: supplier} read CaseNote rows where "
        "case.organization eq $subject.org without requiring "
        "case.customer.consent_share_with_partners eq true "
        "(guardrail 'partners see consented customers' records only')"
    )


def test_a_guardrail_the_rule_already_states_is_checked_once_per_row() -> None:
    # Partners' rules name consent themselves; the guardrail adds nothing the database
    # must evaluate again (x AND x is x, also when x is null).
    document = parse(
        """rules:
  - name: distributors
    subjects: [{kind: distributor}]
    resource: Feedback
    rows: {customer.consent_share_with_partners: {eq: true}, visibility: {eq: partners}}
    read: {visible: [text]}
"""
    )
    rules = PolicyRules(1, document, sharing.operator_guardrails(), pseudonym_secret=b"k" * 32)
    partner = Principal(
        "c",
        uuid.uuid4(),
        "acme",
        OrgKind.DISTRIBUTOR,
        scopes=frozenset({"feedback:read"}),
    )
    where = rules.row_filter(partner, Resource.FEEDBACK)
    terms = conjuncts(where)
    assert len(terms) == 2
    sql = str(where.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert sql.count("consent_share_with_partners") == 1
    assert "visibility" in sql
