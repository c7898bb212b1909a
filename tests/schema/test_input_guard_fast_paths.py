"""The input guard's shortcuts (schema.input_guard) refuse exactly what its full checks do:
a document text found clean is not walked again, a refused one is walked every time; a
body whose brackets alone stay within the nesting limit is not counted; an accepted value
is walked without paths."""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import parse

from schema import input_guard
from schema.input_guard import InputRefused, check_json, literal_errors, load_json

CLEAN = 'query { customer(id: "Q3VzdG9tZXI6MQ==") { name } }'
NUL = 'mutation { createCustomer(input: {name: "a\\u0000b"}) { customer { id } } }'
BIG = "{ customers(first: 99999999999999999999) { totalCount } }"


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The document texts the guard walked."""
    walked: list[str] = []
    walk = input_guard._literal_errors

    def counted(document: Any) -> Any:
        walked.append(document.loc.source.body)
        return walk(document)

    monkeypatch.setattr(input_guard, "_literal_errors", counted)
    monkeypatch.setattr(input_guard, "_CLEAN_DOCUMENTS", {})
    return walked


def test_a_clean_document_text_is_walked_once(walks: list[str]) -> None:
    assert literal_errors(parse(CLEAN)) == []
    assert literal_errors(parse(CLEAN)) == []  # another parse of the same text
    assert walks == [CLEAN]


@pytest.mark.parametrize(
    ("text", "field"),
    [(NUL, ["createCustomer", "input", "name"]), (BIG, ["customers", "first"])],
)
def test_a_refused_document_is_refused_every_time(
    walks: list[str], text: str, field: list[str]
) -> None:
    document = parse(text)
    for _ in range(3):
        errors = literal_errors(document)
        assert [e.extensions["field"] for e in errors] == [field]  # type: ignore[index]
    assert walks == [text] * 3


def test_the_clean_texts_kept_are_bounded(
    walks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(input_guard, "_CLEAN_DOCUMENTS_KEPT", 2)
    texts = [f"{{ customers(first: {n}) {{ totalCount }} }}" for n in range(3)]
    for text in texts:
        literal_errors(parse(text))
    assert list(input_guard._CLEAN_DOCUMENTS) == texts[1:]
    literal_errors(parse(texts[0]))  # forgotten: walked again
    assert walks == [*texts, texts[0]]


def test_brackets_inside_strings_do_not_refuse_a_shallow_body() -> None:
    # Five brackets in all (three in the string), two levels deep: within a limit of 2.
    body = json.dumps({"query": "{ a { b } }", "variables": {"x": 1}})
    assert load_json(body, max_depth=2) == {"query": "{ a { b } }", "variables": {"x": 1}}
    with pytest.raises(InputRefused, match="nested 3 levels deep; the limit is 2"):
        load_json('{"a": {"b": [1]}}', max_depth=2)


def test_a_byte_order_mark_is_refused_as_json_loads_refuses_it() -> None:
    with pytest.raises(json.JSONDecodeError, match="BOM"):
        load_json('\ufeff{"query": "{ a }"}', max_depth=8)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"variables": {"input": {"name": "a\x00"}}}, ("variables", "input", "name")),
        ({"variables": {"tags": ["ok", "\ud800"]}}, ("variables", "tags", 1)),
        ({"variables": {"k\x00": 1}}, ("variables",)),
        ({"variables": {"n": load_json("[1e999]", max_depth=2)}}, ("variables", "n", 0)),
    ],
)
def test_a_refused_value_is_still_named_by_its_path(value: Any, path: tuple[Any, ...]) -> None:
    with pytest.raises(InputRefused) as refused:
        check_json(value)
    assert refused.value.path == path


def test_an_accepted_value_passes() -> None:
    check_json({"query": "{ a }", "variables": {"a": [1, 2.5, None, True, {"b": "c"}]}})
