"""validatePolicy, previewPolicy and publishPolicy answer a hostile source with a syntax
problem, never an internal error (found by probing a running server: a draft of 30,000
"[" was INTERNAL_SERVER_ERROR, the parser's RecursionError)."""

from __future__ import annotations

import httpx
import pytest

from hub.access import access
from hub.db import Database
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller

PROBLEM = "problems { kind message line column }"
VALIDATE = f"""query($source: String!, $format: PolicyFormat) {{
  validatePolicy(source: $source, format: $format) {{ valid {PROBLEM} }} }}"""
PREVIEW = f"""query($source: String!, $format: PolicyFormat) {{
  previewPolicy(source: $source, format: $format) {{ {PROBLEM} }} }}"""
PUBLISH = f"""mutation($source: String!, $format: PolicyFormat) {{
  publishPolicy(source: $source, format: $format, reason: "probe") {{
    version {{ number }} {PROBLEM} }} }}"""
SOURCES = [
    ("YAML", "[" * 30_000),
    ("YAML", "rules: " + "[" * 30_000),
    ("YAML", "- " * 20_000 + "x"),
    ("JSON", "[" * 30_000),
    ("JSON", '{"rules": ' + "9" * 5000 + "}"),
]


@pytest.fixture(autouse=True)
def keep_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "rules", access.rules)


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=[*ALL_SCOPES, "hub:admin"], slug="operator")


@pytest.mark.parametrize(("fmt", "source"), SOURCES, ids=lambda v: str(v)[:12])
async def test_a_hostile_source_is_a_syntax_problem(
    client: httpx.AsyncClient, admin: Caller, fmt: str, source: str
) -> None:
    variables = {"source": source, "format": fmt}
    for operation, field in ((VALIDATE, "validatePolicy"), (PREVIEW, "previewPolicy")):
        result = (await gql(client, admin, operation, variables))["data"][field]
        assert [(p["kind"], p["line"]) for p in result["problems"]] == [("syntax", 1)], result
    published = (await gql(client, admin, PUBLISH, variables))["data"]["publishPolicy"]
    assert published["version"] is None
    assert [p["kind"] for p in published["problems"]] == ["syntax"], published
