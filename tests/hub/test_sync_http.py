"""An http connector end to end: a support desk's JSON API on 127.0.0.1 (its own OAuth
token endpoint, private_key_jwt) read into feedback through the runner, with a 429 and a
500 on the way; the outbound address rules of the hub apply to it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select

from hub.access import Resource
from hub.db import Database
from hub.models.sync import SyncCheckpoint
from hub.netguard import NetPolicy
from hub.settings import SettingsError
from hub.sync.config import mapping_of, parse_spec, save_connector, specs_from_yaml
from hub.sync.net import sync_net_policy
from tests.connectors.api_peer import ApiPeer, serving, tickets
from tests.hub.sync_helpers import customers, dead_letters, feedback_count, runner, support_org

LOOPBACK = NetPolicy(allow_loopback=True)
MAPPING = {
    "external_id": "id",
    "customer_email": "requester.email",
    "text": "description",
    "kind": "type",
    "channel": {"from": "via", "default": "email"},
}


@pytest.fixture
def peer() -> Iterator[ApiPeer]:
    with serving(ApiPeer(tickets(11), page_size=4)) as running:
        yield running


async def define(db: Database, peer: ApiPeer, credentials: dict[str, str]) -> None:
    definition: dict[str, Any] = {
        "name": "desk-api",
        "kind": "http",
        "resource": "feedback",
        "organization": "support",
        "config": {
            "url": f"{peer.base}/links",
            "records": "data",
            "pagination": {"type": "next_link", "next": "links.next"},
            "auth": {"type": "oauth2", "token_url": peer.token_url, "method": "private_key_jwt"},
            "retry": {"attempts": 3, "backoff": 0.01},
        },
        "mapping": MAPPING,
        "credentials": credentials,
    }
    async with db.transaction() as session:
        await save_connector(session, parse_spec(definition))


def key_pair(peer: ApiPeer) -> dict[str, str]:
    key = RSAKey.generate_key(2048)
    peer.public_key = RSAKey.import_key(key.as_dict(private=False))
    return {"client_id": "hub", "private_key": key.as_pem(private=True).decode()}


async def test_an_http_connector_imports_each_record_once(db: Database, peer: ApiPeer) -> None:
    await support_org(db)
    await customers(db, 3)
    peer.tickets[6]["requester"]["email"] = "not an address"  # T-7: a dead letter
    # A 429 (wait 1 s: past the token's life, so authlib fetches another) and a 500.
    peer.failures = {2: (429, {"Retry-After": "1"}), 3: (500, {})}
    peer.token_lifetime = 61  # authlib renews a token 60 s before it expires
    await define(db, peer, key_pair(peer))
    first = await runner(db, batch_size=3, net_policy=LOOPBACK).run("desk-api")
    assert first.status == "succeeded", first.error
    counts = first.counts
    assert (counts.read, counts.created, counts.dead_lettered) == (11, 10, 1)
    assert await feedback_count(db) == 10
    letters = await dead_letters(db)
    assert [d.position for d in letters] == ["page /links?from=4 item 3"]
    assert letters[0].reason.startswith("customer_email: is not a valid email address")
    assert peer.token_requests >= 2 and len(peer.used_jti) == peer.token_requests
    # A rerun reads the last page again and finds nothing new.
    requests = peer.api_requests
    again = await runner(db, net_policy=LOOPBACK).run("desk-api")
    assert (again.status, again.counts.read, again.counts.created) == ("succeeded", 0, 0)
    assert peer.api_requests == requests + 1
    # New tickets appear on the last page and past it: only they are read.
    peer.tickets.extend(tickets(14)[11:])
    more = await runner(db, net_policy=LOOPBACK).run("desk-api")
    assert (more.counts.read, more.counts.created) == (3, 3)
    assert await feedback_count(db) == 13


async def test_a_run_that_fails_midway_resumes_from_its_checkpoint(
    db: Database, peer: ApiPeer
) -> None:
    await support_org(db)
    await customers(db, 3)
    await define(db, peer, key_pair(peer))
    peer.failures = {3: (403, {})}  # the third page is refused: a permanent failure
    failed = await runner(db, batch_size=2, net_policy=LOOPBACK).run("desk-api")
    assert failed.status == "failed" and "HTTP 403" in (failed.error or "")
    assert failed.counts.created == 8  # the two pages read before it are stored
    async with db.session() as session:
        checkpoint = (await session.execute(select(SyncCheckpoint))).scalar_one()
    assert checkpoint.cursor is not None and "from=8" in checkpoint.cursor
    resumed = await runner(db, batch_size=2, net_policy=LOOPBACK).run("desk-api")
    assert (resumed.status, resumed.counts.read, resumed.counts.created) == ("succeeded", 3, 3)
    assert await feedback_count(db) == 11


async def test_loopback_is_refused_by_default(db: Database, peer: ApiPeer) -> None:
    await support_org(db)
    await define(db, peer, key_pair(peer))
    report = await runner(db).run("desk-api")  # the hub's default rules: public addresses
    assert report.status == "failed"
    assert "loopback" in (report.error or "") and peer.token_requests == 0
    assert peer.api_requests == 0


def test_the_example_is_a_valid_definition(repo_root: Path) -> None:
    (spec,) = specs_from_yaml(repo_root / "connectors" / "examples" / "desk-api.yaml")
    assert (spec.name, spec.kind, spec.schedule_seconds) == ("desk-api", "http", 600)
    mapped = mapping_of(Resource.FEEDBACK, spec.mapping).apply(
        {
            "id": 7,
            "requester": {"email": " A@B.org "},
            "description": "Broken",
            "type": "Incident",
            "via": {"channel": "web"},
            "created_at": "2026-12-01T10:00:00Z",
        }
    )
    assert mapped.problems == ()
    assert (mapped.values["kind"], mapped.values["channel"]) == ("complaint", "website")


def test_the_outbound_rules_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sync_net_policy() == NetPolicy()  # nothing set: public addresses only
    monkeypatch.setenv("HUB_SYNC_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("HUB_SYNC_ALLOWED_NETWORKS", '["10.20.0.0/16"]')
    policy = sync_net_policy()
    assert policy.allow_loopback and policy.allows(ipaddress.ip_address("10.20.3.4"))
    monkeypatch.setenv("HUB_SYNC_ALLOWED_NETWORKS", '["10.20.0.0/33"]')
    with pytest.raises(SettingsError, match=r"HUB_SYNC_ALLOWED_NETWORKS: '10\.20\.0\.0/33' is not"):
        sync_net_policy()
