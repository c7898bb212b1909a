"""Client secrets rotate with an overlap; clients can be disabled; key clients register
a public JWKS (``hub clients rotate|disable|create --jwks``)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import Database
from hub.models import Client
from hub.models._types import utcnow
from hub.oauth.client_keys import ClientKeysError, validate_client_jwks
from hub.oauth.clients import rotate_secret
from tests.conftest import Caller, make_caller
from tests.hub.oauth_helpers import new_key, public_jwks

GRANT = {"grant_type": "client_credentials"}


async def token_status(http: httpx.AsyncClient, caller: Caller, secret: str) -> int:
    response = await http.post(
        "/oauth/token",
        data={**GRANT, "client_id": caller.client_id, "client_secret": secret},
    )
    return response.status_code


async def test_old_secret_works_during_the_overlap_only(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    async with db.transaction() as session:
        _, new_secret = await rotate_secret(session, caller.client_id, overlap=3600)

    assert await token_status(client, caller, caller.secret) == 200
    assert await token_status(client, caller, new_secret) == 200

    async with db.transaction() as session:
        await session.execute(
            update(Client)
            .where(col(Client.client_id) == caller.client_id)
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await token_status(client, caller, caller.secret) == 401
    assert await token_status(client, caller, new_secret) == 200


async def test_rotation_without_overlap_stops_the_old_secret(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    async with db.transaction() as session:
        _, new_secret = await rotate_secret(session, caller.client_id, overlap=0)
    assert await token_status(client, caller, caller.secret) == 401
    assert await token_status(client, caller, new_secret) == 200


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "HUB_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
    }
    assert CliRunner().invoke(cli, ["init", "--operator-slug", "acme"], env=env).exit_code == 0
    return env


def run_json(env: dict[str, str], *args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_rotate_and_disable_commands(env: dict[str, str]) -> None:
    created = run_json(env, "clients", "create", "--org", "acme", "--scopes", "customers:read")
    rotated = run_json(env, "clients", "rotate", str(created["client_id"]), "--overlap", "60")
    assert rotated["client_secret"] != created["client_secret"]
    assert isinstance(rotated["previous_secret_valid_until"], str)

    result = CliRunner().invoke(cli, ["clients", "disable", str(created["client_id"])], env=env)
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(cli, ["clients", "rotate", "hub_nobody"], env=env)
    assert missing.exit_code == 2
    assert "no client with id 'hub_nobody'" in missing.output


def test_create_with_jwks(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(new_key("ES256"), new_key("RS256"))))
    created = run_json(
        env, "clients", "create", "--org", "acme", "--scopes", "customers:read", "--jwks", str(path)
    )
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in created


def test_create_refuses_a_private_key(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [new_key("ES256").as_dict(private=True)]}))
    result = CliRunner().invoke(
        cli,
        ["clients", "create", "--org", "acme", "--scopes", "customers:read", "--jwks", str(path)],
        env=env,
    )
    assert result.exit_code == 2
    assert "PRIVATE key" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "symmetric"),
        ({"keys": [{**new_key("ES256").as_dict(private=False), "alg": "HS256"}]}, "alg"),
        ({"keys": [new_key("EdDSA").as_dict(private=True)]}, "PRIVATE"),
        ({"keys": []}, "no keys"),
        ([], "keys"),
        ({"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}]}, "not allowed"),
    ],
)
def test_jwks_validation(document: object, message: str) -> None:
    with pytest.raises(ClientKeysError, match=message):
        validate_client_jwks(document)


def test_jwks_validation_keeps_public_keys_with_kid_and_alg() -> None:
    key = new_key("EdDSA")
    checked = validate_client_jwks(public_jwks(key))
    assert checked["keys"][0]["alg"] == "EdDSA"
    assert checked["keys"][0]["kid"] == key.kid
    assert "d" not in checked["keys"][0]
