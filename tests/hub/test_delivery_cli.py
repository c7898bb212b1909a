"""`hub deliveries list|replay|subscriptions|worker`, in-process (typer's runner), on
both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import Database, make_engine
from hub.delivery.fanout import message_id
from hub.delivery.subscriptions import new_secret
from hub.models import Organization, OrgKind
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from tests.conftest import SECRET

T = TypeVar("T")


def run_db(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        database = Database(make_engine(url))
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(go())


def invoke(database_url: str, *args: str) -> Any:
    env = {
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_LOG_JSON": "false",
        "COLUMNS": "250",
    }
    return CliRunner().invoke(cli, ["deliveries", *args], env=env)


@pytest.fixture
def seeded(db: Database, database_url: str) -> dict[str, Any]:
    """One subscription with a dead letter and a delivered event."""

    async def build(session: AsyncSession) -> dict[str, Any]:
        org = Organization(slug="acme", name="Acme", kind=OrgKind.DISTRIBUTOR)
        session.add(org)
        await session.flush()
        sub = WebhookSubscription(
            organization_id=org.id,
            client_id="acme-client",
            scopes=["customers:read"],
            url="https://hooks.acme.example/in",
            resources=["Customer"],
            secret=new_secret(),
            created_by="acme/acme-client",
        )
        session.add(sub)
        await session.flush()
        now = datetime.now(UTC)
        rows = {}
        for position, status in ((1, "delivered"), (2, "dead")):
            row = WebhookDelivery(
                subscription_id=sub.id,
                message_id=message_id(sub.id, position),
                position=position,
                resource="Customer",
                record_id=uuid.uuid4(),
                operation="update",
                fields=["city"],
                event_at=now,
                status=status,
                attempts=10 if status == "dead" else 1,
                response_status=500 if status == "dead" else 200,
                last_error="HTTP 500" if status == "dead" else None,
                delivered_at=now if status == "delivered" else None,
            )
            session.add(row)
            rows[status] = row
        return {"subscription": sub, **rows}

    return run_db(database_url, build)


def test_list_and_filters(seeded: dict[str, Any], database_url: str) -> None:
    result = invoke(database_url, "list")
    assert result.exit_code == 0, result.output
    assert seeded["dead"].message_id in result.stdout
    assert seeded["delivered"].message_id in result.stdout
    assert "#2 Customer.update" in result.stdout and "HTTP 500" in result.stdout

    result = invoke(database_url, "list", "--status", "dead")
    assert seeded["dead"].message_id in result.stdout
    assert seeded["delivered"].message_id not in result.stdout

    result = invoke(database_url, "list", "--subscription", str(uuid.uuid4()))
    assert result.exit_code == 0 and "no deliveries match" in result.output

    result = invoke(database_url, "list", "--subscription", "not-a-uuid")
    assert result.exit_code == 2
    assert "--subscription: 'not-a-uuid' is not a subscription id" in result.output

    result = invoke(database_url, "subscriptions")
    assert result.exit_code == 0, result.output
    assert str(seeded["subscription"].id) in result.stdout and "acme" in result.stdout


def test_replay(seeded: dict[str, Any], database_url: str) -> None:
    dead = seeded["dead"]
    result = invoke(database_url, "replay", dead.message_id)
    assert result.exit_code == 0, result.output
    assert f"delivery {dead.message_id} queued again (Customer.update)" in result.stdout
    result = invoke(database_url, "list", "--status", "pending")
    assert dead.message_id in result.stdout

    assert "0 dead letters queued again" in invoke(database_url, "replay", "--dead").stdout

    sub = seeded["subscription"].id
    result = invoke(database_url, "replay", "--from", "0", "--subscription", str(sub))
    assert result.exit_code == 0, result.output
    assert "2 deliveries already made queued again" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of"),
        (("--dead", "msg_x"), "give one of"),
        (("nope",), "no delivery has the id or webhook-id 'nope'"),
        (("--from", "3"), "--from needs --subscription"),
        (("--from", "3", "--subscription", str(uuid.UUID(int=1))), "no webhook subscription"),
        (("msg_x", "--subscription", str(uuid.UUID(int=1))), "goes with --dead or --from"),
    ],
)
def test_replay_errors_are_one_line(
    seeded: dict[str, Any], database_url: str, args: tuple[str, ...], message: str
) -> None:
    result = invoke(database_url, "replay", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_worker_once(seeded: dict[str, Any], database_url: str) -> None:
    result = invoke(database_url, "worker", "--once")
    assert result.exit_code == 0, result.output
    # The client the subscription acts as does not exist: it is disabled, nothing sent.
    assert "1 round: 0 queued, 0 delivered" in result.stdout
    assert "1 subscription disabled" in result.stdout
