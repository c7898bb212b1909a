"""Source precedence (hub.provenance): pure rules, and the setting that configures them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.provenance import TIERS, Precedence, tier_of
from hub.settings import Settings

KINDS = ("operator", "department", "supplier", "vendor", "distributor")


def stamp(kind: str, org: str = "x") -> dict[str, str]:
    return {"organization": org, "kind": kind}


def test_default_order_is_operator_then_department_then_partner() -> None:
    order = Precedence()
    assert order.overrides("name", stamp("operator"), stamp("department"))
    assert order.overrides("name", stamp("department"), stamp("distributor"))
    assert not order.overrides("name", stamp("distributor"), stamp("department"))
    assert not order.overrides("name", stamp("supplier"), stamp("operator"))
    # Equal rank: the newest word wins; an unstamped field is anyone's.
    assert order.overrides("name", stamp("vendor"), stamp("distributor"))
    assert order.overrides("name", stamp("vendor"), None)


def test_per_field_orders_and_named_organizations() -> None:
    order = Precedence.from_config(
        {"*": ["operator", "department"], "lifecycle_stage": ["org:acme", "operator"]}
    )
    # acme outranks even the operator on lifecycle_stage, and only acme does.
    assert order.overrides("lifecycle_stage", stamp("distributor", "acme"), stamp("operator"))
    assert not order.overrides("lifecycle_stage", stamp("distributor", "other"), stamp("operator"))
    # Partners are not listed in the default: they rank below everyone listed.
    assert not order.overrides("city", stamp("distributor"), stamp("department"))
    assert order.overrides("city", stamp("department"), stamp("supplier"))


@given(
    st.sampled_from(KINDS),
    st.sampled_from(KINDS),
    st.sampled_from(KINDS),
    st.sampled_from(["name", "city", "lifecycle_stage"]),
)
def test_precedence_is_a_total_preorder(a: str, b: str, c: str, field: str) -> None:
    order = Precedence.from_config({"*": list(TIERS), "city": ["partner", "operator"]})
    x, y, z = stamp(a), stamp(b), stamp(c)
    # Total: one of any two may overwrite the other; transitive.
    assert order.overrides(field, x, y) or order.overrides(field, y, x)
    if order.overrides(field, x, y) and order.overrides(field, y, z):
        assert order.overrides(field, x, z)
    assert order.overrides(field, x, x)


def test_tiers() -> None:
    assert [tier_of(k) for k in KINDS] == [
        "operator",
        "department",
        "partner",
        "partner",
        "partner",
    ]


@pytest.mark.parametrize("kind", [{}, {"kind": None}, {"kind": ""}, {"kind": "distributer"}])
def test_a_stamp_of_unknown_kind_ranks_highest(kind: dict[str, str | None]) -> None:
    # The demo once seeded stamps without a kind: ranked as partners, any partner could
    # overwrite them. Unknown origin now yields only to the top of the order.
    held = {"organization": "legacy-crm", **kind}
    order = Precedence()
    assert order.overrides("name", stamp("operator"), held)
    assert not order.overrides("name", stamp("department"), held)
    assert not order.overrides("name", stamp("distributor"), held)
    named = Precedence.from_config({"*": ["org:acme", "operator"]})
    assert named.overrides("name", stamp("distributor", "acme"), held)
    assert not named.overrides("name", stamp("operator"), held)
    # An organization the order names ranks where it is named, kind or not.
    second = Precedence.from_config({"*": ["operator", "org:acme"]})
    assert named.rank("name", {"organization": "acme"}) == 0
    assert second.rank("name", {"organization": "acme"}) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"*": []}, "must be a non-empty list"),
        ({"name": ["operator", "boss"]}, "'boss' is neither a tier"),
        ({"name": ["org:"]}, "is neither a tier"),
    ],
)
def test_a_bad_setting_is_refused_with_a_reason(config: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(source_precedence=config)
