"""Properties of the evaluator and masks over random policies, callers and records."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    Caller,
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
    project,
)
from policies.masks import pseudonym
from tests.policies.factories import make_catalog

CATALOG = make_catalog()
FIELDS = sorted(CATALOG.fields("Customer"))
# Rules may name fields outside the catalog; they must never be exposed.
NAMES = [*FIELDS, "secret", "internal_notes"]
STRING_MASKS = ["redact", "partial_email", "last4", "initials", "pseudonym"]

subjects = st.sampled_from(
    [
        Subject(kind="distributor"),
        Subject(kind="supplier"),
        Subject(org="acme"),
        Subject(org="globex"),
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
    st.builds(
        Compare, st.just("lifetime_value"), st.sampled_from(["gt", "lte"]), st.integers(0, 2000)
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
conditions = st.one_of(st.none(), compares, compares.map(Not))


@st.composite
def rules(draw: st.DrawFn, effect: Effect | None = None) -> Rule:
    chosen = draw(st.sampled_from(Effect)) if effect is None else effect
    common: dict[str, Any] = {
        "name": f"r{draw(st.integers(0, 10**9))}",
        "resource": "Customer",
        "subjects": tuple(draw(st.lists(subjects, min_size=1, max_size=2))),
        "effect": chosen,
        "rows": draw(conditions),
    }
    if chosen is Effect.DENY:
        return Rule(**common, fields=tuple(draw(st.lists(st.sampled_from(NAMES), max_size=3))))
    visible = draw(st.lists(st.sampled_from(NAMES), max_size=5, unique=True))
    masked_names = draw(
        st.lists(st.sampled_from(["name", "email", "phone", "region"]), max_size=3, unique=True)
    )
    masked = {n: MaskSpec(draw(st.sampled_from(STRING_MASKS))) for n in masked_names}
    if draw(st.booleans()):
        masked["lifetime_value"] = MaskSpec("bucket", (0, 1000))
    return Rule(**common, read=Read(tuple(visible), masked))


documents = st.lists(rules(), max_size=5).map(lambda rs: Document(tuple(rs)))
callers = st.builds(
    Caller,
    org=st.sampled_from(["acme", "globex"]),
    kind=st.sampled_from(["distributor", "supplier"]),
    attributes=st.fixed_dictionaries(
        {"regions": st.sampled_from([["north"], ["north", "south"], []])}
    ),
)
records = st.fixed_dictionaries(
    {
        "id": st.uuids().map(str),
        "name": st.sampled_from(["Ada Lovelace", "Grace Hopper", None]),
        "email": st.one_of(st.none(), st.emails()),
        "phone": st.one_of(st.none(), st.from_regex(r"\+[0-9 ]{6,14}", fullmatch=True)),
        "region": st.sampled_from(["north", "south", None]),
        "lifetime_value": st.one_of(st.none(), st.integers(-10, 3000)),
        "consent_share_with_partners": st.booleans(),
        "traits": st.just({"internal_notes": "x"}),
        "secret": st.just("never"),
        "assignments": st.lists(
            st.fixed_dictionaries({"organization": st.sampled_from(["acme", "globex"])}), max_size=2
        ),
    }
)


def at_least(a: Document, b: Document, caller: Caller, record: dict[str, Any]) -> bool:
    """Whether ``a`` shows ``caller`` at least what ``b`` shows, field by field."""
    da = evaluate(a, CATALOG, caller, "Customer", record)
    db = evaluate(b, CATALOG, caller, "Customer", record)
    return (da.row_visible or not db.row_visible) and all(
        da.outcome(f) >= db.outcome(f) for f in FIELDS
    )


@settings(max_examples=200)
@given(documents, rules(Effect.ALLOW), callers, records)
def test_adding_an_allow_rule_never_reduces_visibility(
    doc: Document, extra: Rule, caller: Caller, record: dict[str, Any]
) -> None:
    more = dataclasses.replace(doc, rules=(*doc.rules, extra))
    assert at_least(more, doc, caller, record)


@settings(max_examples=200)
@given(documents, rules(Effect.DENY), callers, records)
def test_adding_a_deny_rule_never_increases_visibility(
    doc: Document, extra: Rule, caller: Caller, record: dict[str, Any]
) -> None:
    more = dataclasses.replace(doc, rules=(extra, *doc.rules))
    assert at_least(doc, more, caller, record)


@settings(max_examples=200)
@given(documents, callers, records)
def test_projection_shows_true_or_masked_values_of_catalog_fields_only(
    doc: Document, caller: Caller, record: dict[str, Any]
) -> None:
    decision = evaluate(doc, CATALOG, caller, "Customer", record)
    assert set(decision.fields) == set(FIELDS)
    seen = project(decision, record, secret=b"k", partner=caller.org)
    assert set(seen) <= set(FIELDS)
    assert "secret" not in seen
    if not decision.row_visible:
        assert seen == {}
    for name, value in seen.items():
        fd = decision.fields[name]
        if fd.outcome is Outcome.VISIBLE:
            assert value == record.get(name)
        else:
            assert fd.outcome is Outcome.MASKED and fd.mask is not None
            assert value == apply_mask(fd.mask, record.get(name), secret=b"k", partner=caller.org)


@settings(max_examples=200)
@given(documents, callers, records)
def test_a_visible_row_is_admitted_by_an_allow_rule_whose_rows_hold(
    doc: Document, caller: Caller, record: dict[str, Any]
) -> None:
    decision = evaluate(doc, CATALOG, caller, "Customer", record)
    held = {t.name for t in decision.trace if t.rows_hold and t.effect is Effect.ALLOW}
    if decision.row_visible:
        assert held and set(decision.row_rules) <= held
    for fd in decision.fields.values():
        if fd.outcome is not Outcome.HIDDEN:
            assert fd.rule in held


@settings(max_examples=200)
@given(
    st.one_of(st.text(), st.integers(), st.uuids().map(str)),
    st.text(min_size=1, max_size=12),
    st.text(min_size=1, max_size=12),
)
def test_pseudonym_is_stable_per_partner_and_unlinkable_across(
    value: str | int, partner: str, other: str
) -> None:
    first = pseudonym(value, secret=b"hub-secret", partner=partner)
    assert first == pseudonym(value, secret=b"hub-secret", partner=partner)
    if other != partner:
        assert first != pseudonym(value, secret=b"hub-secret", partner=other)
