"""Outbound URLs are an SSRF door: https only, no private, loopback, link-local or
metadata addresses unless explicitly allowed, the address checked is the one connected
to (a real server on 127.0.0.1), no redirects followed."""

from __future__ import annotations

import ipaddress
from collections import Counter

import httpx
import pytest

from hub import delivery
from hub.access import access
from hub.db import Database
from hub.delivery import DeliveryWorker, PolicyFollower
from hub.delivery.settings import DeliverySettings
from hub.errors import InvalidInputError
from hub.netguard import GuardedTransport, NetPolicy, Resolver, UnsafeURLError, check_url
from tests.conftest import SECRET
from tests.hub.delivery_helpers import (
    drain,
    fast_settings,
    make_worker,
    make_world,
    policy_in_force,
    principal_of,
    receiver,
    subscribe,
    touch,
)
from tests.hub.factories import assign, make_customer
from tests.hub.webhook_receiver import WebhookReceiver

__all__ = ["policy_in_force", "receiver"]  # fixtures


def resolver_of(table: dict[str, list[str]], calls: Counter[str] | None = None) -> Resolver:
    """A resolver answering from ``table`` (as a DNS server under test control)."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls[host] += 1
        return list(table[host])

    return resolve


DNS = {
    "public.example.test": ["93.184.216.34"],
    "loopback.example.test": ["127.0.0.1"],
    "metadata.example.test": ["169.254.169.254"],
    "mixed.example.test": ["93.184.216.34", "10.0.0.7"],
    "private.example.test": ["10.1.2.3"],
    "v6-metadata.example.test": ["fd00:ec2::254"],
}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://public.example.test/hook", "https://"),
        ("ftp://public.example.test/hook", "https://"),
        ("https://user:pw@public.example.test/hook", "user name"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://loopback.example.test/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://metadata.example.test/", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://10.0.0.1/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://100.64.0.1/hook", "private"),
        ("https://v6-metadata.example.test/", "private"),
        ("https://mixed.example.test/hook", "private"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://public.example.test:0/hook", "port"),
        ("https:///hook", "no host"),
        ("https://public.example.test/a b", "spaces"),
    ],
)
async def test_refused_by_default(url: str, reason: str) -> None:
    table = {**DNS, "localhost": ["127.0.0.1", "::1"]}
    with pytest.raises(UnsafeURLError, match=reason):
        await check_url(url, NetPolicy(), resolver_of(table))


async def test_the_system_resolver_is_checked_too() -> None:
    # localhost resolves (through /etc/hosts) to 127.0.0.1.
    with pytest.raises(UnsafeURLError, match="loopback"):
        await check_url("https://localhost/hook", NetPolicy())


async def test_allowed_destinations() -> None:
    resolve = resolver_of(DNS)
    assert await check_url("https://public.example.test/h", NetPolicy(), resolve) == [
        "93.184.216.34"
    ]
    allow_private = NetPolicy(allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    assert await check_url("https://private.example.test/h", allow_private, resolve)
    loopback = NetPolicy(allow_loopback=True)
    assert await check_url("http://127.0.0.1:8080/h", loopback, resolve)
    # Loopback allowed is not private allowed, nor metadata, nor http elsewhere.
    for url in ("https://10.0.0.1/", "https://169.254.169.254/", "http://public.example.test/"):
        with pytest.raises(UnsafeURLError):
            await check_url(url, loopback, resolve)


async def test_registration_refuses_loopback_and_metadata(
    db: Database, policy_in_force: None
) -> None:
    world = await make_world(db)
    settings = DeliverySettings()  # the defaults
    for url in ("https://127.0.0.1/hook", "https://metadata.example.test/", "http://x.test/"):
        async with db.transaction() as session:
            with pytest.raises(InvalidInputError) as raised:
                await delivery.create(
                    session,
                    principal_of(world.distributor),
                    delivery.SubscriptionRequest(url=url, resources=["Customer"]),
                    settings,
                    resolver=resolver_of(DNS),
                )
        [problem] = raised.value.problems
        assert problem.path == ("input", "url")


async def test_the_checked_address_is_the_one_connected_to(receiver: WebhookReceiver) -> None:
    calls: Counter[str] = Counter()
    resolve = resolver_of({"hooks.example.test": ["127.0.0.1"]}, calls)
    transport = GuardedTransport(NetPolicy(allow_loopback=True), resolve)
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.post(
            f"http://hooks.example.test:{receiver.port}/hooks", content=b"{}"
        )
    # The request reached the receiver on 127.0.0.1 under the name it was made for.
    assert response.status_code == 400  # unsigned: the receiver refuses it
    assert receiver.hosts == [f"hooks.example.test:{receiver.port}"]
    assert calls == {"hooks.example.test": 1}  # resolved once, by the guard

    # Refused under the default policy: no connection is made at all.
    transport = GuardedTransport(NetPolicy(), resolve)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError, match="loopback"):
            await http.post(f"http://hooks.example.test:{receiver.port}/hooks", content=b"{}")
    assert len(receiver.hosts) == 1


async def test_a_name_that_changes_address_after_registration_is_refused_at_send(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    """DNS rebinding: public when registered, loopback when sent to."""
    table = {"rebind.example.test": ["93.184.216.34"]}
    resolve = resolver_of(table)
    settings = fast_settings(allow_loopback=False, retry_delays=(0.0,))
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    async with db.transaction() as session:
        await delivery.create(
            session,
            principal_of(world.distributor),
            delivery.SubscriptionRequest(
                url=f"https://rebind.example.test:{receiver.port}/hooks", resources=["Customer"]
            ),
            settings,
            resolver=resolve,
        )
    table["rebind.example.test"] = ["127.0.0.1"]
    await touch(db, world.operator, customer, city="Tours")
    http = httpx.AsyncClient(
        transport=GuardedTransport(settings.net_policy(), resolve), follow_redirects=False
    )
    worker = DeliveryWorker(
        db, access, settings, http, follow=PolicyFollower(db, access, SECRET.encode())
    )
    await drain(worker)
    await http.aclose()
    assert receiver.hosts == []  # never connected
    async with db.session() as session:
        [row] = await delivery.list_deliveries(session)
    assert (row.status, row.attempts) == ("dead", 2)
    assert "loopback" in (row.last_error or "")


async def test_redirects_are_not_followed(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings(retry_delays=())
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    await subscribe(db, world.distributor, receiver, settings)
    receiver.status = 307
    receiver.extra_headers = {"location": "http://169.254.169.254/latest/meta-data/"}
    await touch(db, world.operator, customer, city="Blois")
    await drain(make_worker(db, settings))
    assert sum(receiver.attempts.values()) == 1
    async with db.session() as session:
        [row] = await delivery.list_deliveries(session)
    assert (row.status, row.response_status) == ("dead", 307)
    assert "redirects are not followed" in (row.last_error or "")
