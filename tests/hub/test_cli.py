"""The `hub` command line, in-process (typer's runner), on a throw-away SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import Database, make_engine
from hub.models import Organization, OrgKind
from hub.oauth.clients import hash_secret


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "HUB_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
        "HUB_LOG_JSON": "false",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def test_init_then_create_client(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "init", "--operator-slug", "northwind", "--operator-name", "Northwind")
    assert code == 0, out
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert run(env, "init")[0] == 0  # idempotent

    result = CliRunner().invoke(
        cli,
        ["clients", "create", "--org", "northwind", "--scopes", "customers:read feedback:read"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["org"] == "northwind"
    assert created["scopes"] == ["customers:read", "feedback:read"]
    assert created["client_id"].startswith("hub_")
    assert len(created["client_secret"]) >= 43
    assert hash_secret(created["client_secret"]) != created["client_secret"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--org", "nobody", "--scopes", "customers:read"],
            "--org: no organization with slug 'nobody'",
        ),
        (
            ["--org", "northwind", "--scopes", "customers:read hub:root"],
            "--scopes: unknown scope(s) hub:root",
        ),
    ],
)
def test_create_client_refuses_bad_input(
    env: dict[str, str], args: list[str], message: str
) -> None:
    assert run(env, "init", "--operator-slug", "northwind")[0] == 0
    code, out = run(env, "clients", "create", *args)
    assert code == 2
    assert message in out


def test_hub_admin_is_refused_for_a_partner_organization(env: dict[str, str]) -> None:
    assert run(env, "init", "--operator-slug", "northwind")[0] == 0

    async def add_partner() -> None:
        database = Database(make_engine(env["HUB_DATABASE_URL"]))
        async with database.transaction() as session:
            session.add(Organization(slug="acme", name="Acme", kind=OrgKind.DISTRIBUTOR))
        await database.dispose()

    asyncio.run(add_partner())
    code, out = run(
        env, "clients", "create", "--org", "acme", "--scopes", "customers:read hub:admin"
    )
    assert code == 2
    assert "--scopes: hub:admin may not be granted to a client of a partner organization" in out
    code, out = run(env, "clients", "create", "--org", "northwind", "--scopes", "hub:admin")
    assert code == 0, out  # the operator may hold it


def test_bad_setting_names_the_variable(env: dict[str, str]) -> None:
    code, out = run({**env, "HUB_DATABASE_URL": "mysql://x/y"}, "migrate")
    assert code == 2
    assert "HUB_DATABASE_URL" in out


def test_administrative_commands_are_audited(env: dict[str, str]) -> None:
    """Changes made from the shell land in the hash-chained audit log too, without
    secrets, and the chain still verifies."""
    assert run(env, "init", "--operator-slug", "northwind", "--operator-name", "N")[0] == 0
    result = CliRunner().invoke(
        cli, ["clients", "create", "--org", "northwind", "--scopes", "customers:read"], env=env
    )
    created = json.loads(result.stdout)
    client_id, secret = created["client_id"], created["client_secret"]
    assert run(env, "clients", "rotate", client_id)[0] == 0
    assert run(env, "clients", "disable", client_id)[0] == 0
    assert run(env, "keys", "rotate")[0] == 0

    from sqlalchemy import select
    from sqlmodel import col

    from hub.models import AuditEvent

    async def events() -> list[AuditEvent]:
        database = Database(make_engine(env["HUB_DATABASE_URL"]))
        try:
            async with database.session() as session:
                rows = await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))
                return list(rows.scalars())
        finally:
            await database.dispose()

    found = asyncio.run(events())
    actions = [e.action for e in found if e.actor.startswith("cli:")]
    assert actions == ["client.register", "client.rotate_secret", "client.disable", "keys.rotate"]
    assert all(e.target == f"client:{client_id}" for e in found[1:4])
    assert secret not in str([e.details for e in found])
    code, out = run(env, "audit", "verify")
    assert code == 0 and "intact" in out, out
