"""The masks, by example."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from policies import MaskSpec, apply_mask
from policies.masks import (
    REDACTED,
    bucket,
    initials,
    last4,
    partial_email,
    pseudonym,
    redact,
    year_only,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@example.com", "a***@example.com"),
        ("x@y.org", "x***@y.org"),
        ("no-at-sign", "n***"),
        (None, None),
    ],
)
def test_partial_email(value: str | None, expected: str | None) -> None:
    assert partial_email(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("+1 555 010 1234", "****1234"), ("4111-1111-1111-9876", "****9876"), ("1234", "****")],
)
def test_last4(value: str, expected: str) -> None:
    assert last4(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("Ada Lovelace", "A. L."), ("grace  brewster hopper", "G. B. H.")]
)
def test_initials(value: str, expected: str) -> None:
    assert initials(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(1815, 12, 10), 1815),
        (dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC), 2024),
        ("2021-06-30", 2021),
    ],
)
def test_year_only(value: dt.date | str, expected: int) -> None:
    assert year_only(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1234, "1000-4999"), (1000, "1000-4999"), (4999.9, "1000-4999"), (-1, "<0"), (7000, "5000+")],
)
def test_bucket_with_edges(value: float, expected: str) -> None:
    assert bucket(value, (0, 1000, 5000)) == expected


def test_bucket_default_edges_and_redact() -> None:
    assert bucket(250) == "100-999"
    assert redact("anything") == REDACTED
    assert redact(None) is None


def test_pseudonym_is_stable_per_partner_and_differs_across_partners() -> None:
    a1 = pseudonym("cust-1", secret=b"s3cret", partner="acme")
    assert a1 == pseudonym("cust-1", secret=b"s3cret", partner="acme")
    assert a1 != pseudonym("cust-1", secret=b"s3cret", partner="globex")
    assert a1 != pseudonym("cust-2", secret=b"s3cret", partner="acme")
    assert a1 != pseudonym("cust-1", secret=b"other", partner="acme")
    assert a1 is not None and len(a1) == 16 and a1.isalnum() and "cust" not in a1


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (MaskSpec("partial_email"), "bob@x.io", "b***@x.io"),
        (MaskSpec("bucket", (0, 10)), 3, "0-9"),
        (MaskSpec("initials"), None, None),
        (MaskSpec("pseudonym"), 7, pseudonym(7, secret=b"k", partner="p")),
    ],
)
def test_apply_mask(spec: MaskSpec, value: Any, expected: Any) -> None:
    assert apply_mask(spec, value, secret=b"k", partner="p") == expected


def test_apply_mask_rejects_an_unknown_mask() -> None:
    with pytest.raises(ValueError, match="unknown mask 'nope'"):
        apply_mask(MaskSpec("nope"), 1, secret=b"k", partner="p")
