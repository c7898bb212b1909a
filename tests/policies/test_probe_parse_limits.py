"""Hostile policy sources are syntax errors at a line and column, never an internal error
(found by probing the GraphQL admin's validatePolicy and the console's draft editor)."""

from __future__ import annotations

import pytest

from policies.errors import PolicySyntaxError
from policies.parse import parse

DEEP = [
    ("yaml", "[" * 30_000),
    ("yaml", "rules: " + "[" * 30_000),
    ("yaml", "- " * 20_000 + "x"),
    ("yaml", "{a: " * 20_000),
    ("json", "[" * 30_000),
    ("json", '{"a":' * 30_000 + "1" + "}" * 30_000),
]


@pytest.mark.parametrize(("fmt", "source"), DEEP, ids=lambda v: str(v)[:12])
def test_a_source_nested_past_the_recursion_limit_is_a_syntax_error(fmt: str, source: str) -> None:
    with pytest.raises(PolicySyntaxError) as raised:
        parse(source, format=fmt)  # type: ignore[arg-type]
    assert raised.value.pos.line == 1


def test_a_json_number_past_the_digit_limit_is_a_syntax_error() -> None:
    with pytest.raises(PolicySyntaxError, match="too long"):
        parse('{"rules": ' + "9" * 5000 + "}", format="json")


def test_a_yaml_operand_past_the_digit_limit_is_a_syntax_error_at_its_line() -> None:
    source = (
        "rules:\n"
        "  - name: big\n"
        "    subjects: [{kind: distributor}]\n"
        "    resource: Customer\n"
        f"    rows: {{lifetime_value: {{gt: {'9' * 5000}}}}}\n"
        "    read: {visible: [name]}\n"
    )
    with pytest.raises(PolicySyntaxError, match="too long") as raised:
        parse(source)
    assert raised.value.pos.line == 5
