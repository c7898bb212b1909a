"""Connector definitions: credentials sealed at rest, definitions checked naming the key,
and which failures the runner retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from hub.db import Database
from hub.sync.config import load_connector, parse_spec, save_connector
from hub.sync.errors import ConnectorConfigError
from hub.sync.runner import transient
from tests.hub.sync_helpers import support_org


async def test_credentials_are_sealed_at_rest(db: Database, tmp_path: Path) -> None:
    await support_org(db)
    spec = parse_spec(
        {
            "name": "crm",
            "kind": "sql",
            "resource": "customers",
            "organization": "support",
            "config": {
                "url": "postgresql://crm@db/crm",
                "query": "SELECT 1",
                "cursor": "c",
                "key": "k",
            },
            "mapping": {"external_id": "id", "name": "full_name"},
            "credentials": {"password": "s3cret-pa55"},
        }
    )
    async with db.transaction() as session:
        await save_connector(session, spec)
    async with db.session() as session:
        raw = (await session.execute(text("SELECT credentials FROM sync_connector"))).scalar_one()
        loaded = await load_connector(session, "crm")
    assert "s3cret" not in raw
    assert loaded.credentials == {"password": "s3cret-pa55"}
    assert loaded.principal().client_id == "connector:crm"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"kind": "files"}, "connector.name: required"),
        (
            {"name": "x", "kind": "ftp"},
            "connector.kind: must be one of files, http, sql, webhook, not 'ftp'",
        ),
        (
            {"name": "x", "kind": "files", "resource": "orders"},
            "connector.resource: unknown resource 'orders'",
        ),
        (
            {"name": "x", "kind": "files", "resource": "feedback"},
            "connector.organization: required",
        ),
        (
            {
                "name": "x",
                "kind": "files",
                "resource": "feedback",
                "organization": "o",
                "config": {},
            },
            "connector.config.path: required",
        ),
        (
            {
                "name": "x",
                "kind": "files",
                "resource": "feedback",
                "organization": "o",
                "config": {"path": "p"},
                "mapping": {"text": "body"},
            },
            "connector.mapping.external_id: required",
        ),
        (
            {
                "name": "x",
                "kind": "files",
                "resource": "feedback",
                "organization": "o",
                "config": {"path": "p"},
                "schedule": "often",
            },
            "connector.schedule: a number of seconds",
        ),
        ({"name": "x", "colour": "red"}, "connector.colour: not a connector setting"),
    ],
)
def test_definitions_are_checked_naming_the_key(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorConfigError, match=message):
        parse_spec(definition)


async def test_unreachable_databases_are_retried_bad_statements_are_not(db: Database) -> None:
    down = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(Exception) as refused:  # noqa: PT011 — whatever the driver raises
            async with down.connect():
                pass
    finally:
        await down.dispose()
    assert transient(refused.value)
    with pytest.raises(DBAPIError) as bad:
        async with db.session() as session:
            await session.execute(text("SELECT no_such_column FROM sync_connector"))
    assert not transient(bad.value)
