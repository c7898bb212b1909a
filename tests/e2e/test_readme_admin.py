"""The README's administration of the demo, run as written: ``hub demo`` in a fresh folder,
then, from another shell in that folder, the "Administration" block (a token for the admin
client of ``demo-credentials.json``, GraphQL admin queries, ``hub`` commands on the demo's
database) and the "Sharing policies" lifecycle block."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import (
    HUB,
    HubServer,
    _admin,
    basic_auth,
    free_port,
    hub_env,
    postgres_database,
    stop,
    wait_ready,
)
from tests.e2e.test_readme_walkthrough import README_ORIGIN, readme_steps

pytestmark = pytest.mark.e2e

DEMO_READY_TIMEOUT = 180.0
DATA_SCOPES = ["customers:read", "customers:write", "feedback:read", "feedback:write"]
RENAME = """
mutation($id: ID!, $v: Int!) {
  updateCustomer(id: $id, expectedVersion: $v, patch: {name: "Renamed by Sales"}) {
    outcome proposedChanges { field status } userErrors { code }
  }
}"""


@dataclass
class Demo:
    """A running ``hub demo`` and the folder it runs in."""

    base_url: str
    workdir: Path
    env: dict[str, str]
    stderr_path: Path

    def credentials(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(
            (self.workdir / "demo-credentials.json").read_text()
        )
        return rows

    async def gql(self, org: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        row = next(r for r in self.credentials() if r["org"] == org and "role" not in r)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            token = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": basic_auth(row["client_id"], row["client_secret"])},
            )
            assert token.status_code == 200, token.text
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", "postgresql"])
async def demo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Demo]:
    """``hub demo`` as the README starts it (on PostgreSQL: with ``HUB_DATABASE_URL``)."""
    env = hub_env(PATH=f"{Path(HUB).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    dropped: tuple[str, str] | None = None
    if request.param == "postgresql":
        url, admin_url, name = await postgres_database()
        env["HUB_DATABASE_URL"] = url
        dropped = (admin_url, name)
    port = free_port()
    stderr_path = tmp_path / "demo.stderr"
    try:
        with stderr_path.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                HUB, "demo", "--customers", "40", "--port", str(port),
                cwd=tmp_path, env=env, stdout=out, stderr=out,
            )  # fmt: skip
        try:
            base_url = f"http://127.0.0.1:{port}"
            problem = await wait_ready(f"{base_url}/readyz", process, DEMO_READY_TIMEOUT)
            assert problem is None, f"{problem}\n{stderr_path.read_text()}"
            yield Demo(base_url, tmp_path, env, stderr_path)
        finally:
            await stop(process)
    finally:
        if dropped is not None:
            await _admin(dropped[0], f'DROP DATABASE IF EXISTS "{dropped[1]}" WITH (FORCE)')


async def run_block(demo: Demo, commands: list[str]) -> list[str]:
    """Run README commands in one shell in the demo's folder, as a reader pastes them;
    each command's output (stdout, then stderr)."""
    script = ["set -e"]
    for index, command in enumerate(commands):
        command = command.replace(README_ORIGIN, demo.base_url)
        # A brace group runs in this shell: variables set by one step reach the next.
        script.append(f"{{ {command}\n}} >step{index}.out 2>step{index}.err")
    shell = await asyncio.create_subprocess_exec(
        "bash", "-c", "\n".join(script), cwd=demo.workdir, env=demo.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.wait_for(shell.communicate(), timeout=120)
    outputs = []
    for index in range(len(commands)):
        out, err = demo.workdir / f"step{index}.out", demo.workdir / f"step{index}.err"
        if not out.exists():
            break
        outputs.append(out.read_text() + err.read_text())
    failed = len(outputs) - 1
    assert shell.returncode == 0, (
        f"the README command {commands[failed]!r} failed ({shell.returncode}):\n{outputs[-1]}"
    )
    return outputs


def graphql_body(output: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = json.loads(output)
    except json.JSONDecodeError:
        pytest.fail(f"the README's curl did not print JSON:\n{output}")
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def test_the_readme_administers_the_demo_as_written(demo: Demo) -> None:
    # The demo says where it serves.
    served = f"Serving Partner Hub on {demo.base_url} (GraphQL at /graphql)"
    assert served in demo.stderr_path.read_text().splitlines()
    # Something for the review queue: sales renames a customer the operator seeded.
    page = await demo.gql("sales", "{ customers(first: 1) { edges { node { id version } } } }", {})
    node = page["customers"]["edges"][0]["node"]
    renamed = await demo.gql("sales", RENAME, {"id": node["id"], "v": node["version"]})
    assert renamed["updateCustomer"]["outcome"] == "QUEUED", renamed

    commands = readme_steps("## Administration")
    kinds = [command.split("=", 1)[0] if "=$(" in command else command[:14] for command in commands]
    assert kinds == [
        "ADMIN", "ADMIN_TOKEN", "curl -s http:/", "hub clients cr", "hub policy exp",
        "hub policy val", "hub audit veri",
    ], commands  # fmt: skip
    outputs = await run_block(demo, commands)

    listed = graphql_body(outputs[2])
    slugs = {(org["slug"], org["kind"]) for org in listed["organizations"]}
    assert {("operator", "OPERATOR"), ("sales", "DEPARTMENT")} <= slugs
    assert len(slugs) == 11
    [acme] = listed["clients"]
    assert (sorted(acme["scopes"]), acme["active"]) == (DATA_SCOPES, True)
    [proposal] = listed["proposedChanges"]
    assert (proposal["field"], proposal["value"], proposal["organization"]) == (
        "name",
        "Renamed by Sales",
        "sales",
    )

    created = json.loads(outputs[3].split("\n}", 1)[0] + "\n}")
    assert (created["org"], sorted(created["scopes"])) == ("operator", DATA_SCOPES)
    assert created["client_secret"]
    assert (
        "version: 1" in (demo.workdir / "policy.yaml").read_text()
        or (demo.workdir / "policy.yaml").stat().st_size > 1000
    )
    assert "valid" in outputs[5], outputs[5]
    assert "chain intact" in outputs[6], outputs[6]

    # The sharing-policy lifecycle, as written, on the same demo.
    lifecycle = readme_steps("## Sharing policies")
    assert [c.split()[:3] for c in lifecycle] == [
        ["hub", "policy", "export"], ["hub", "policy", "validate"], ["hub", "policy", "preview"],
        ["hub", "policy", "publish"], ["hub", "policy", "list;"],
    ], lifecycle  # fmt: skip
    outputs = await run_block(demo, lifecycle)
    assert "no change for any organization" in outputs[2], outputs[2]
    assert "published version 2" in outputs[3], outputs[3]
    assert "rolled back: version 3 restores version 1" in outputs[4], outputs[4]
    # The demo keeps serving under the restored version.
    still = await demo.gql("sales", "{ customers(first: 1) { totalCount } }", {})
    assert still["customers"]["totalCount"] == 40


async def test_hub_serve_says_where_it_serves(hub_server: HubServer) -> None:
    served = f"Serving Partner Hub on {hub_server.base_url} (GraphQL at /graphql)"
    # Logs are JSON lines (HUB_LOG_JSON's default), and so is this one.
    lines = [json.loads(line) for line in hub_server.stderr_text().splitlines() if line]
    said = [line for line in lines if line["message"] == served]
    assert said and said[0]["url"] == hub_server.base_url, hub_server.stderr_text()
