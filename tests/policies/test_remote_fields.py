"""Remote fields (a federated subgraph's, DESIGN §7) in the catalog: rules show, mask or
hide them; no condition tests them and no write sets them, each refusal naming the field
and where it comes from."""

from __future__ import annotations

import pytest

from policies import Catalog, CatalogError, parse, validate
from policies.catalog import FieldType
from tests.policies.factories import make_catalog

FROM = "the subgraph 'loyalty'"


def catalog() -> Catalog:
    return make_catalog().with_remote(
        {"Customer": {"loyaltyTier": (FieldType.STRING, FROM), "loyalty": (FieldType.JSON, FROM)}}
    )


def rule(body: str, resource: str = "Customer") -> str:
    return (
        "rules:\n  - name: r\n    subjects: [{kind: distributor}]\n"
        f"    resource: {resource}\n{body}"
    )


def test_rules_may_show_or_mask_remote_fields() -> None:
    source = rule(
        "    read:\n      visible: [name, loyalty]\n      masked: {loyaltyTier: redact}\n"
    )
    assert validate(parse(source), catalog()) == []
    # Without the subgraph, the field is unknown like any other.
    errors = [e.message for e in validate(parse(source), make_catalog())]
    assert any("unknown field 'loyalty'" in e for e in errors), errors
    assert any("unknown field 'loyaltyTier'" in e for e in errors), errors


@pytest.mark.parametrize(
    ("body", "resource", "message"),
    [
        (
            "    rows: {loyaltyTier: {eq: gold}}\n",
            "Customer",
            "'loyaltyTier' comes from the subgraph 'loyalty', not the database: a row "
            "condition cannot test it",
        ),
        (
            "    rows: {loyalty.points: {gt: 3}}\n",
            "Customer",
            "'loyalty.points' comes from the subgraph 'loyalty'",
        ),
        (
            "    rows: {customer.loyaltyTier: {is_null: false}}\n",
            "Feedback",
            "'customer.loyaltyTier' comes from the subgraph 'loyalty'",
        ),
        (
            "    write: {fields: [name, loyaltyTier]}\n",
            "Customer",
            "'loyaltyTier' comes from the subgraph 'loyalty': the hub cannot write it",
        ),
        (
            "    write: {fields: [name], check: {loyaltyTier: {eq: gold}}}\n",
            "Customer",
            "'loyaltyTier' comes from the subgraph 'loyalty', not the database",
        ),
        (
            "    create: {fields: [name], presets: {loyaltyTier: gold}}\n",
            "Customer",
            "'loyaltyTier' comes from the subgraph 'loyalty': the hub cannot write it",
        ),
    ],
    ids=["rows", "json-path", "through-a-relation", "write", "check", "preset"],
)
def test_conditions_and_writes_on_remote_fields_are_refused(
    body: str, resource: str, message: str
) -> None:
    errors = validate(parse(rule(body, resource)), catalog())
    assert [e.message for e in errors if message in e.message], [e.message for e in errors]


def test_remote_fields_may_not_shadow_the_resource_s_own() -> None:
    with pytest.raises(CatalogError, match="Customer already has name"):
        make_catalog().with_remote({"Customer": {"name": (FieldType.STRING, FROM)}})
    with pytest.raises(CatalogError, match="unknown resource 'Nope'"):
        make_catalog().with_remote({"Nope": {"x": (FieldType.STRING, FROM)}})
