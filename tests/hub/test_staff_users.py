"""Staff users: `hub users create`, argon2 hashes, who may have staff, and a disabled user's
token refused at the resource side; `hub clients create --grant authorization_code`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import Database, make_engine
from hub.models import AuditEvent, StaffUser
from hub.staff import StaffUserError, create_staff_user, sign_in
from tests.conftest import make_org
from tests.hub.staff_helpers import (
    PASSWORD,
    exchange,
    get_code,
    make_code_client,
    make_staff,
    me,
    pkce_pair,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "HUB_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
        "HUB_LOG_JSON": "false",
    }
    result = CliRunner().invoke(cli, ["init", "--operator-slug", "northwind"], env=env)
    assert result.exit_code == 0, result.output
    return env


def _users_create(env: dict[str, str], *args: str, stdin: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["users", "create", *args], env=env, input=stdin)
    return result.exit_code, result.stdout


def _rows(env: dict[str, str]) -> list[StaffUser]:
    async def read() -> list[StaffUser]:
        database = Database(make_engine(env["HUB_DATABASE_URL"]))
        try:
            async with database.session() as session:
                return list((await session.execute(select(StaffUser))).scalars())
        finally:
            await database.dispose()

    return asyncio.run(read())


def test_users_create_reads_the_password_from_stdin(env: dict[str, str]) -> None:
    args = ["--org", "northwind", "--role", "analyst", "--role", "admin"]
    code, out = _users_create(
        env,
        *args,
        "--email",
        "Ada@Example.COM",
        "--name",
        "Ada",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, out
    created = json.loads(out)
    assert created["email"] == "ada@example.com"
    assert created["roles"] == ["admin", "analyst"]

    async def audited() -> list[tuple[str, str, dict[str, object]]]:
        database = Database(make_engine(env["HUB_DATABASE_URL"]))
        try:
            async with database.session() as session:
                rows = await session.execute(
                    select(
                        col(AuditEvent.action), col(AuditEvent.target), col(AuditEvent.details)
                    ).where(col(AuditEvent.action) == "staff_user.create")
                )
                return [tuple(row) for row in rows]
        finally:
            await database.dispose()

    # Audited without the password (or its hash).
    assert asyncio.run(audited()) == [
        (
            "staff_user.create",
            f"staff_user:{created['id']}",
            {"organization": "northwind", "roles": ["admin", "analyst"]},
        )
    ]
    assert PASSWORD not in out and "password" not in out
    [row] = _rows(env)
    assert row.password_hash.startswith("$argon2id$")


def test_users_create_prompts_for_the_password(env: dict[str, str]) -> None:
    code, out = _users_create(
        env,
        "--org",
        "northwind",
        "--role",
        "member",
        "--email",
        "b@x.test",
        "--name",
        "B",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert code == 0, out
    # The prompt goes to stderr: stdout is the JSON document alone.
    assert json.loads(out)["email"] == "b@x.test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "northwind", "--role", "root"], "unknown role(s) root"),
        (["--org", "nobody", "--role", "member"], "no organization with slug"),
    ],
)
def test_users_create_refuses_bad_input(env: dict[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["users", "create", *args, "--email", "c@x.test", "--name", "C", "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_users_create_refuses_a_short_password(env: dict[str, str]) -> None:
    code, _ = _users_create(
        env,
        "--org",
        "northwind",
        "--role",
        "member",
        "--email",
        "d@x.test",
        "--name",
        "D",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 2


def test_clients_create_authorization_code(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "clients",
            "create",
            "--org",
            "northwind",
            "--scopes",
            "customers:read",
            "--grant",
            "authorization_code",
            "--public",
            "--redirect-uri",
            "https://console.test/cb",
            "--redirect-uri",
            "http://127.0.0.1:9999/cb",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in created
    assert created["redirect_uris"] == ["https://console.test/cb", "http://127.0.0.1:9999/cb"]

    bad = CliRunner().invoke(
        cli,
        [
            "clients",
            "create",
            "--org",
            "northwind",
            "--scopes",
            "customers:read",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "http://evil.test/cb",
        ],
        env=env,
    )
    assert bad.exit_code == 2
    assert "--redirect-uri" in bad.output


async def test_partner_kinds_cannot_have_staff(db: Database) -> None:
    for kind in ("supplier", "vendor", "distributor"):
        org = await make_org(db, kind)
        async with db.transaction() as session:
            with pytest.raises(StaffUserError, match="only operator and department"):
                await create_staff_user(
                    session,
                    organization=org,
                    email=f"{kind}@x.test",
                    name="P",
                    password=PASSWORD,
                    roles=["member"],
                )


async def test_email_is_unique_case_insensitively(db: Database) -> None:
    staff = await make_staff(db, kind="department")
    async with db.transaction() as session:
        with pytest.raises(StaffUserError, match="already exists"):
            await create_staff_user(
                session,
                organization=staff.org,
                email=staff.email.upper(),
                name="X",
                password=PASSWORD,
                roles=["member"],
            )
    async with db.session() as session:
        assert await sign_in(session, staff.email.upper(), PASSWORD) is not None
        assert await sign_in(session, staff.email, "wrong" + PASSWORD) is None
        assert await sign_in(session, "nobody@x.test", PASSWORD) is None


async def test_disabled_staff_users_token_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    staff = await make_staff(db, roles=("analyst",))
    registered = await make_code_client(db, staff.org)
    verifier, challenge = pkce_pair()
    code = await get_code(client, registered.client_id, staff.email, challenge)
    token = (await exchange(client, registered, code, verifier)).json()["access_token"]
    assert (await me(client, token)).status_code == 200

    async with db.transaction() as session:
        user = await session.get(StaffUser, staff.user.id)
        assert user is not None
        user.active = False

    # HUB_CLIENT_CACHE_TTL is 0 in the tests: refused at the next request.
    response = await me(client, token)
    assert response.status_code == 401
    assert "staff user" in response.headers["www-authenticate"]
