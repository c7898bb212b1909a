"""hub.validation.Problems: pure checks, one problem per bad field, paths under a root."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.errors import FieldProblem, InvalidInputError
from hub.validation import Problems


def codes(p: Problems) -> list[tuple[tuple[str, ...], str]]:
    return [(item.path, item.code) for item in p.items]


def refused(p: Problems, code: str, field: str = "f") -> bool:
    return codes(p) == [(("input", field), code)] and bool(p.items[0].message)


# --- accumulation ---------------------------------------------------------------------


def test_problems_accumulate_under_their_root_and_raise_together() -> None:
    p = Problems("patch")
    p.raise_any()  # nothing found: nothing raised
    p.email("email", "nope")
    p.country("country", "XX")
    p.text("name", "", max_length=10, required=True)
    with pytest.raises(InvalidInputError) as raised:
        p.raise_any()
    assert [(item.path, item.code) for item in raised.value.problems] == [
        (("patch", "email"), "INVALID_EMAIL"),
        (("patch", "country"), "INVALID_COUNTRY"),
        (("patch", "name"), "REQUIRED"),
    ]
    assert raised.value.code == "BAD_USER_INPUT"
    assert "patch.email" in str(raised.value)


def test_add_defaults_to_invalid() -> None:
    p = Problems()
    p.add("traits", "must be a JSON object")
    assert p.items == [FieldProblem(("input", "traits"), "must be a JSON object", "INVALID")]


# --- text and choice ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "required", "expected", "code"),
    [
        (None, False, None, None),
        (None, True, None, "REQUIRED"),
        ("", False, None, None),
        ("   ", True, None, "REQUIRED"),
        ("  Ada  ", True, "Ada", None),
        ("x" * 10, False, "x" * 10, None),
        ("  " + "x" * 10 + "  ", False, "x" * 10, None),  # length after stripping
        ("x" * 11, False, None, "TOO_LONG"),
        ("é" * 10, False, "é" * 10, None),  # characters, not bytes
        ("é" * 11, False, None, "TOO_LONG"),
    ],
)
def test_text(value: str | None, required: bool, expected: str | None, code: str | None) -> None:
    p = Problems()
    assert p.text("f", value, max_length=10, required=required) == expected
    assert codes(p) == ([] if code is None else [(("input", "f"), code)])


@pytest.mark.parametrize(
    ("value", "required", "expected", "code"),
    [
        ("smb", False, "smb", None),
        (None, False, None, None),
        (None, True, None, "REQUIRED"),
        ("SMB", False, None, "NOT_ALLOWED"),
        ("other", True, None, "NOT_ALLOWED"),
    ],
)
def test_choice(value: str | None, required: bool, expected: str | None, code: str | None) -> None:
    p = Problems()
    assert p.choice("f", value, ("smb", "enterprise"), required=required) == expected
    assert codes(p) == ([] if code is None else [(("input", "f"), code)])


# --- email ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM ", "Ada.Lovelace@example.com"),
        ("ada+crm@sub.example.co.uk", "ada+crm@sub.example.co.uk"),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_email_accepted(value: str | None, expected: str | None) -> None:
    p = Problems()
    assert p.email("f", value) == expected
    assert p.items == []


@pytest.mark.parametrize(
    "value",
    [
        "not-an-email",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "ada@example",
        "Ada <ada@example.com>",
        "ada @example.com",
        "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com",  # over 254 in all
    ],
)
def test_email_refused(value: str) -> None:
    p = Problems()
    assert p.email("f", value) is None
    assert refused(p, "INVALID_EMAIL")


# --- phone ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("+14155552671", None, "+14155552671"),
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+44 20 7946 0958", "FR", "+442079460958"),  # international wins
        ("(415) 555-2671", "US", "+14155552671"),
        ("030 12345678", "DE", "+493012345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("020 7946 0958", "GB", "+442079460958"),
        (None, "US", None),
        ("  ", "US", None),
    ],
)
def test_phone_normalised_to_e164(value: str | None, country: str | None, expected: str) -> None:
    p = Problems()
    assert p.phone("f", value, country=country) == expected
    assert p.items == []


@pytest.mark.parametrize(
    ("value", "country"),
    [
        ("(415) 555-2671", None),  # national without a country
        ("12345", None),
        ("12345", "US"),
        ("+1 555 0100", None),  # parses, not a valid number
        ("phone me", None),
        ("+999 1234 5678", None),  # no such country code
        ("0612", "FR"),
    ],
)
def test_phone_refused(value: str, country: str | None) -> None:
    p = Problems()
    assert p.phone("f", value, country=country) is None
    assert refused(p, "INVALID_PHONE")


# --- country and currency -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("DE", "DE"), ("de", "DE"), (" fr ", "FR"), ("GB", "GB"), (None, None), ("", None)],
)
def test_country_accepted(value: str | None, expected: str | None) -> None:
    p = Problems()
    assert p.country("f", value) == expected
    assert p.items == []


@pytest.mark.parametrize("value", ["XX", "ZZ", "DEU", "UK", "D", "001", "1A", "D E"])
def test_country_refused(value: str) -> None:
    p = Problems()
    assert p.country("f", value) is None
    assert refused(p, "INVALID_COUNTRY")


@pytest.mark.parametrize(("value", "expected"), [("EUR", "EUR"), ("usd", "USD"), (" chf ", "CHF")])
def test_currency_accepted(value: str, expected: str) -> None:
    p = Problems()
    assert p.currency("f", value) == expected
    assert p.items == []


@pytest.mark.parametrize("value", ["EURO", "EU", "", "   ", "E1R", "€", "E R", "US$"])
def test_currency_refused(value: str) -> None:
    p = Problems()
    assert p.currency("f", value) is None
    assert refused(p, "INVALID_CURRENCY")


# --- money and integers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), Decimal("0.00")),
        (Decimal("10"), Decimal("10.00")),
        (Decimal("19.999"), Decimal("20.00")),
        (Decimal("0.01"), Decimal("0.01")),
        (Decimal("999999999999.99"), Decimal("999999999999.99")),
        (None, None),
    ],
)
def test_money_accepted(value: Decimal | None, expected: Decimal | None) -> None:
    p = Problems()
    got = p.money("f", value, minimum=Decimal(0))
    assert got == expected
    if got is not None:
        assert got.as_tuple().exponent == -2
    assert p.items == []


@pytest.mark.parametrize(
    "value",
    [
        Decimal("-0.01"),
        Decimal("-100"),
        Decimal("1000000000000"),
        Decimal("999999999999.995"),  # rounds to 10^12
        Decimal("1e30"),  # an amount, far too large
    ],
)
def test_money_out_of_range(value: Decimal) -> None:
    p = Problems()
    assert p.money("f", value, minimum=Decimal(0)) is None
    assert refused(p, "OUT_OF_RANGE")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_money_refuses_non_numbers(value: Decimal) -> None:
    p = Problems()
    assert p.money("f", value, minimum=Decimal(0)) is None
    assert len(p.items) == 1
    assert p.items[0].path == ("input", "f")


def test_money_minimum_is_the_callers() -> None:
    p = Problems()
    assert p.money("f", Decimal("0.99"), minimum=Decimal(1)) is None
    assert p.money("g", Decimal("1"), minimum=Decimal(1)) == Decimal("1.00")
    assert codes(p) == [(("input", "f"), "OUT_OF_RANGE")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [(None, True), (1, True), (5, True), (3, True), (0, False), (6, False), (-1, False)],
)
def test_integer_bounds_are_inclusive(value: int | None, ok: bool) -> None:
    p = Problems()
    result = p.integer("f", value, low=1, high=5)
    if ok:
        assert result == value
        assert p.items == []
    else:
        assert result is None
        assert refused(p, "OUT_OF_RANGE")
        assert p.items[0].message == "must be between 1 and 5"
