"""``hub subgraphs add|refresh|list`` against the Node loyalty service on 127.0.0.1, and
policies over its fields through ``hub policy publish``: shown or masked are accepted,
a row condition on one is refused with a message naming it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub import sharing
from hub.cli import app as cli
from tests.conformance.conftest import HERE, REQUIRED

pytestmark = [pytest.mark.conformance]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "HUB_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
        "HUB_LOG_JSON": "false",
        "HUB_FEDERATION_ALLOW_LOOPBACK": "true",
    }


@pytest.fixture
def service(node_tools: object) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    assert all((HERE / "node_modules" / name).exists() for name in REQUIRED)
    process = subprocess.Popen(
        ["node", str(HERE / "loyalty_subgraph.mjs"), "0"], cwd=HERE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    url = json.loads(process.stdout.readline())["url"]
    try:
        yield url, process
    finally:
        process.terminate()
        process.wait()


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def test_subgraphs_add_list_refresh_and_policies_over_their_fields(
    env: dict[str, str], service: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, process = service
    assert run(env, "init")[0] == 0
    code, out = run(env, "subgraphs", "list")
    assert code == 0 and "no subgraphs" in out

    code, out = run(
        env, "subgraphs", "add", "loyalty", url, "--header", "X-Api-Key: s3cret", "--timeout", "2"
    )
    assert code == 0, out
    assert "loyalty: accepted; fields: Customer.loyalty, Customer.loyaltyPoints, " in out
    code, out = run(env, "subgraphs", "add", "loyalty", url)
    assert code == 2 and "a subgraph named 'loyalty' is registered already" in out
    code, out = run(env, "subgraphs", "add", "private", "http://10.1.2.3/graphql")
    assert code == 2 and out.startswith("error: url: "), out

    result = CliRunner().invoke(cli, ["subgraphs", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.stdout)
    assert listed["status"] == "ok" and listed["auth"] == "header"
    assert listed["fields"] == [
        "Customer.loyalty",
        "Customer.loyaltyPoints",
        "Customer.loyaltyTier",
    ]
    assert "s3cret" not in result.stdout

    # A policy may show or mask the subgraph's fields...
    base, _, expect = sharing.default_source().partition("\nexpect:")
    shown = tmp_path / "shown.yaml"
    shown.write_text(
        base
        + "  - name: sales-loyalty\n"
        + "    subjects: [{kind: department, role: sales}]\n"
        + "    resource: Customer\n"
        + "    read: {visible: [id, loyaltyTier, loyalty]}\n"
        + "\nexpect:"
        + expect
    )
    code, out = run(env, "policy", "publish", str(shown), "--reason", "loyalty for sales")
    assert code == 0, out
    # (a mask must fit the field: an object cannot carry one)
    masked = tmp_path / "masked.yaml"
    masked.write_text(
        shown.read_text().replace("[id, loyaltyTier, loyalty]}", "[id], masked: {loyalty: redact}}")
    )
    code, out = run(env, "policy", "publish", str(masked), "--reason", "masked")
    assert code == 2 and "mask 'redact' on Customer.loyalty: the API field is a json" in out, out
    # ...but not test them in a row condition (they are not in the database).
    scoped = tmp_path / "scoped.yaml"
    scoped.write_text(
        shown.read_text().replace(
            "    read: {visible: [id, loyaltyTier, loyalty]}",
            "    rows: {loyaltyTier: {eq: gold}}\n    read: {visible: [id, loyaltyTier, loyalty]}",
        )
    )
    code, out = run(env, "policy", "publish", str(scoped), "--reason", "gold only")
    assert code == 2, out
    assert (
        "'loyaltyTier' comes from the subgraph 'loyalty', not the database: a row "
        "condition cannot test it"
    ) in out

    # The service goes away: a refresh fails, the accepted SDL stays in force.
    process.terminate()
    process.wait()
    code, out = run(env, "subgraphs", "refresh", "loyalty")
    assert code == 1 and "loyalty: unreachable" in out and "cannot be reached" in out, out
    result = CliRunner().invoke(cli, ["subgraphs", "list", "--json"], env=env)
    [listed] = json.loads(result.stdout)
    assert listed["status"] == "unreachable" and "Customer.loyaltyTier" in listed["fields"]

    # Removing it is refused while the policy in force names its fields...
    code, out = run(env, "subgraphs", "remove", "loyalty")
    assert code == 2, out
    assert "the sharing policy in force names Customer.loyalty, Customer.loyaltyTier" in out
    # ...and done once a policy without them is published.
    plain = tmp_path / "plain.yaml"
    plain.write_text(sharing.default_source())
    assert run(env, "policy", "publish", str(plain), "--reason", "no loyalty")[0] == 0
    assert run(env, "subgraphs", "remove", "loyalty") == (0, "loyalty: removed")
    assert "no subgraphs" in run(env, "subgraphs", "list")[1]
