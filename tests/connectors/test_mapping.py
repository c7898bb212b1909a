"""Field mapping: each transform, their order, identity mappings, and errors naming the key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors import ConfigError
from connectors.mapping import FieldMapping, FieldRule, Problem


def mapped(spec: dict[str, Any], data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    result = FieldMapping.parse(spec).apply(data)
    return result.values, [str(p) for p in result.problems]


def test_rename_and_dotted_paths() -> None:
    spec = {"text": "body", "customer_email": "requester.email", "external_id": "id"}
    data = {"body": "Hi", "requester": {"email": "a@x.org"}, "id": 7, "other": 1}
    assert mapped(spec, data) == ({"text": "Hi", "customer_email": "a@x.org", "external_id": 7}, [])


def test_trim_lower_then_map_then_default() -> None:
    spec = {
        "kind": {
            "from": "type",
            "transforms": ["trim", "lower"],
            "map": {"incident": "complaint", "kudos": "praise"},
            "default": "question",
        }
    }
    assert mapped(spec, {"type": "  INCIDENT "})[0] == {"kind": "complaint"}
    assert mapped(spec, {"type": "Bug"})[0] == {"kind": "bug"}  # unlisted: unchanged
    assert mapped(spec, {"type": "   "})[0] == {"kind": "question"}  # empty after trim
    assert mapped(spec, {})[0] == {"kind": "question"}


def test_map_keys_match_numbers_as_text() -> None:
    spec = {"score": {"from": "stars", "map": {1: 1, 2: 1, 5: 5}}}
    assert mapped(spec, {"stars": 2})[0] == {"score": 1}
    assert mapped(spec, {"stars": "5"})[0] == {"score": 5}


def test_required() -> None:
    spec = {"text": {"from": "body", "required": True}, "product": "sku"}
    assert mapped(spec, {"body": "", "sku": ""}) == ({}, ["text: is required"])
    assert mapped(spec, {"body": "ok"}) == ({"text": "ok"}, [])


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("iso", "2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("iso", "2026-03-01T10:30:00Z", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        ("iso", "2026-03-01T12:30:00+02:00", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
        ("%d/%m/%Y %H:%M", "01/03/2026 10:30", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_dates(fmt: str, text: str, expected: datetime) -> None:
    values, problems = mapped({"at": {"from": "when", "date": fmt}}, {"when": text})
    assert problems == [] and values["at"] == expected


def test_a_bad_date_is_a_problem_naming_the_field_and_format() -> None:
    assert mapped({"at": {"from": "when", "date": "iso"}}, {"when": "31/02/2026"})[1] == [
        "at: '31/02/2026' is not an ISO 8601 date, e.g. 2026-01-31"
    ]
    assert mapped({"at": {"from": "w", "date": "%d/%m/%Y"}}, {"w": "2026-01-01"})[1] == [
        "at: '2026-01-01' is not a date as %d/%m/%Y"
    ]
    assert mapped({"at": {"from": "w", "date": "iso"}}, {"w": 12})[1] == [
        "at: must be an ISO 8601 date, e.g. 2026-01-31"
    ]


def test_identity_mapping_keeps_known_fields_and_names_unknown_ones() -> None:
    mapping = FieldMapping.identity({"text", "kind", "external_id"}, required={"external_id"})
    result = mapping.apply({"text": "Hi", "kind": "", "colour": "red"})
    assert result.values == {"text": "Hi"}
    assert set(result.problems) == {
        Problem("colour", "is not a field this connector can set"),
        Problem("external_id", "is required"),
    }
    assert mapping.targets == {"text", "kind", "external_id"}


@pytest.mark.parametrize("given", ["t1", "  t1 ", 7, "   ", "", None, ["a"], {"a": 1}])
def test_an_identity_mappings_required_field_is_what_its_rule_alone_gives(given: Any) -> None:
    """The identity pass takes a required field as it is; its rule (FieldRule.apply),
    which the pass no longer asks, gives the same value or problem."""
    mapping = FieldMapping.identity({"text", "external_id"}, required={"external_id"})
    result = mapping.apply({"text": "Hi", "external_id": given})
    value, problem = FieldRule("external_id", "external_id", required=True).apply(
        {"external_id": given}
    )
    assert result.values.get("external_id") == value
    assert result.problems == (() if problem is None else (Problem("external_id", problem),))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "mapping: must map target fields"),
        ({"text": 3}, "mapping.text: must be a source field name or a rule"),
        ({"text": {"form": "body"}}, "mapping.text.form: not a rule setting"),
        ({"text": {"transforms": ["trim", "shout"]}}, r"mapping.text.transforms\[1\]: unknown"),
        ({"text": {"map": ["a"]}}, "mapping.text.map: must map source values"),
        ({"at": {"date": "dd/mm/yyyy"}}, "mapping.at.date: 'dd/mm/yyyy' has no % directive"),
        ({"text": {"required": "yes"}}, "mapping.text.required: must be true or false"),
        ({"colour": "c"}, r"mapping.colour: not a field this connector can set \(known: text\)"),
    ],
)
def test_bad_mappings_name_the_key(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FieldMapping.parse(spec, targets={"text", "at"} if "at" in str(spec) else {"text"})
