"""`hub deliveries replay --from` past what a position can be (a 64-bit integer): one
line naming the option, as for any other bad argument. It was an internal OverflowError
on SQLite and the database's own refusal on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.test_delivery_cli import invoke, seeded

__all__ = ["seeded"]  # fixture


@pytest.mark.parametrize("position", ["9223372036854775808", "99999999999999999999999"])
def test_a_position_past_64_bits_is_a_bad_argument(
    seeded: dict[str, Any], database_url: str, position: str
) -> None:
    subscription = str(seeded["subscription"].id)
    result = invoke(database_url, "replay", "--from", position, "--subscription", subscription)
    assert result.exit_code == 2, result.output
    # typer's own refusal (the `hub` command prints it in one line), before any database
    assert "Invalid value for '--from'" in result.output, result.output
    assert "internal error" not in result.output and "database" not in result.output


def test_the_last_64_bit_position_is_taken(seeded: dict[str, Any], database_url: str) -> None:
    subscription = str(seeded["subscription"].id)
    last = str(2**63 - 1)
    result = invoke(database_url, "replay", "--from", last, "--subscription", subscription)
    assert result.exit_code == 0, result.output
    assert f"after position {last}" in result.output
