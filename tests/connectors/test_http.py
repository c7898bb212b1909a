"""The http source against a real JSON API on 127.0.0.1 (tests/connectors/api_peer.py):
pagination by next link, Link header, cursor and page number; a 429 and a 500 on the
way; OAuth 2.0 client credentials (secret, private_key_jwt) fetched and refreshed by
authlib; checkpoints that resume mid-page; errors that end a run or ask for a retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey

from connectors import REGISTRY, ConfigError, Record, SourceError, TransientSourceError
from connectors.http import HttpConfig, HttpSource
from tests.connectors.api_peer import ApiPeer, serving, tickets


@pytest.fixture
def peer() -> Iterator[ApiPeer]:
    with serving(ApiPeer(tickets(10))) as running:
        yield running


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)  # recorded, not slept: the test stays fast


def source(
    config: dict[str, Any], credentials: dict[str, str] | None = None, sleeps: Sleeps | None = None
) -> HttpSource:
    parsed = HttpConfig.parse(config, credentials)
    return HttpSource(
        parsed, httpx.AsyncHTTPTransport(), sleep=Sleeps() if sleeps is None else sleeps
    )


async def read(src: HttpSource, cursor: str | None = None) -> list[Record]:
    return [record async for record in src.read(cursor)]


def links(peer: ApiPeer, **extra: Any) -> dict[str, Any]:
    return {
        "url": f"{peer.base}/links",
        "records": "data",
        "pagination": {"type": "next_link", "next": "links.next"},
        "auth": {"type": "oauth2", "token_url": peer.token_url},
        "retry": {"attempts": 3, "backoff": 0.5, "max_delay": 30},
        **extra,
    }


SECRET = {"client_id": "hub", "client_secret": "s3cret-value"}


async def test_next_links_with_a_429_and_a_500_on_the_way(peer: ApiPeer) -> None:
    peer.failures = {2: (429, {"Retry-After": "2"}), 3: (500, {})}
    sleeps = Sleeps()
    records = await read(source(links(peer), SECRET, sleeps))
    assert [r.data["id"] for r in records] == [f"T-{n}" for n in range(1, 11)]
    assert sleeps[0] == 2.0  # Retry-After honoured
    assert 0.5 <= sleeps[1] <= 1.0  # backoff with jitter (2nd retry: half to all of 1 s)
    assert peer.api_requests == 6 and peer.token_requests == 1  # 4 pages + 2 failures
    assert records[0].position == "first page item 1"
    assert records[4].position == "page /links?from=3 item 2"
    # The last record's checkpoint is the last page: read again, it holds nothing new.
    assert await read(source(links(peer), SECRET), records[-1].cursor) == []


async def test_a_checkpoint_mid_page_resumes_after_its_record(peer: ApiPeer) -> None:
    records = await read(source(links(peer), SECRET))
    resumed = await read(source(links(peer), SECRET), records[4].cursor)
    assert [r.data["id"] for r in resumed] == [f"T-{n}" for n in range(6, 11)]
    # The last record of a page points at the next page: nothing is fetched twice.
    assert json.loads(records[2].cursor) == {"page": f"{peer.base}/links?from=3", "skip": 0}


async def test_link_header_and_a_static_header(peer: ApiPeer) -> None:
    peer.static_header = ("X-Api-Key", "k-123")
    config = {
        "url": f"{peer.base}/links-header",
        "pagination": {"type": "next_link"},
        "auth": {"type": "header", "header": "X-Api-Key"},
    }
    records = await read(source(config, {"token": "k-123"}))
    assert len(records) == 10 and peer.token_requests == 0
    with pytest.raises(SourceError, match=r"HTTP 401 \(the API refused the credentials\)"):
        await read(source(config, {"token": "wrong"}))


async def test_cursor_pagination_reads_what_was_added_since(peer: ApiPeer) -> None:
    config = links(peer, url=f"{peer.base}/cursor", records="items")
    config["pagination"] = {"type": "cursor", "cursor": "meta.next_cursor", "param": "after"}
    records = await read(source(config, SECRET))
    assert len(records) == 10
    peer.tickets.extend(tickets(12)[10:])
    more = await read(source(config, SECRET), records[-1].cursor)
    assert [r.data["id"] for r in more] == ["T-11", "T-12"]
    assert await read(source(config, SECRET), more[-1].cursor) == []


async def test_page_numbers_stop_at_a_short_page(peer: ApiPeer) -> None:
    config = links(peer, url=f"{peer.base}/pages", records="results")
    config["pagination"] = {"type": "page", "size_param": "per_page", "size": 4}
    records = await read(source(config, SECRET))
    assert [r.position for r in records[3:5]] == ["page 1 item 4", "page 2 item 1"]
    assert len(records) == 10 and peer.requests[-1].endswith("page=3&per_page=4")
    assert await read(source(config, SECRET), records[-1].cursor) == []


def rsa_pem() -> tuple[str, RSAKey]:
    key = RSAKey.generate_key(2048)
    return key.as_pem(private=True).decode(), RSAKey.import_key(key.as_dict(private=False))


def ec_jwk() -> tuple[str, ECKey]:
    key = ECKey.generate_key("P-256")
    return json.dumps(key.as_dict(private=True)), ECKey.import_key(key.as_dict(private=False))


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "private_key_jwt", "es256"]
)
async def test_oauth_client_authentication(peer: ApiPeer, method: str) -> None:
    credentials = dict(SECRET)
    config = links(peer)
    config["auth"]["method"] = method
    if method == "private_key_jwt":
        credentials = {"client_id": "hub"}
        credentials["private_key"], peer.public_key = rsa_pem()
    elif method == "es256":
        config["auth"]["method"] = "private_key_jwt"
        credentials = {"client_id": "hub"}
        credentials["private_key"], peer.public_key = ec_jwk()
    # Tokens that expire within authlib's leeway: it fetches a new one before each call.
    peer.token_lifetime = 30
    records = await read(source(config, credentials))
    assert len(records) == 10
    assert peer.token_requests == 5  # the first, then one per page: every one accepted
    expected = "private_key_jwt" if method == "es256" else method
    assert set(peer.auth_methods) == {expected}
    if expected == "private_key_jwt":
        assert len(peer.used_jti) == 5  # a fresh assertion each time


async def test_a_refused_client_ends_the_run(peer: ApiPeer) -> None:
    with pytest.raises(SourceError, match="token endpoint refused the client: invalid_client"):
        await read(source(links(peer), {"client_id": "hub", "client_secret": "nope"}))


async def test_retry_after_as_a_date_and_too_long_a_wait(peer: ApiPeer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    peer.failures = {1: (503, {"Retry-After": when})}
    sleeps = Sleeps()
    assert len(await read(source(links(peer), SECRET, sleeps))) == 10
    assert 15 < sleeps[0] <= 20
    peer.api_requests, peer.failures = 0, {1: (429, {"Retry-After": "3600"})}
    with pytest.raises(TransientSourceError, match="asked to wait 3600 s"):
        await read(source(links(peer), SECRET))


async def test_failures_that_persist_or_are_permanent(peer: ApiPeer) -> None:
    peer.failures = {n: (502, {}) for n in range(1, 10)}
    sleeps = Sleeps()
    with pytest.raises(TransientSourceError, match=r"HTTP 502 \(3 retries\)"):
        await read(source(links(peer), SECRET, sleeps))
    assert len(sleeps) == 3 and sleeps[2] <= 2.0  # 0.5, 1, 2 s ceilings
    peer.api_requests, peer.failures = 0, {1: (404, {})}
    with pytest.raises(SourceError, match="HTTP 404") as error:
        await read(source(links(peer), SECRET))
    assert not isinstance(error.value, TransientSourceError)


async def test_a_closed_port_is_transient() -> None:
    config = {"url": "http://127.0.0.1:9/items", "retry": {"attempts": 1, "backoff": 0}}
    with pytest.raises(TransientSourceError, match="ConnectError"):
        await read(source(config))


async def test_a_next_link_to_another_origin_ends_the_run(peer: ApiPeer) -> None:
    config = links(peer, url=f"{peer.base}/elsewhere")
    config["pagination"]["next"] = "next"
    with pytest.raises(SourceError, match="another origin"):
        await read(source(config, SECRET))
    assert peer.api_requests == 1


async def test_an_item_that_is_not_an_object_is_a_bad_record(peer: ApiPeer) -> None:
    peer.tickets[1] = "just text"  # type: ignore[call-overload]
    records = await read(source(links(peer), SECRET))
    assert records[1].problem == "first page item 2 is not a JSON object"
    assert records[1].data == {"raw": '"just text"'} and records[2].problem is None


async def test_without_a_transport_nothing_is_called(peer: ApiPeer) -> None:
    plain = REGISTRY["http"](links(peer), SECRET)
    with pytest.raises(SourceError, match="needs the transport of its runtime"):
        await read(plain)  # type: ignore[arg-type]
    assert peer.token_requests == 0


@pytest.mark.parametrize(
    ("config", "credentials", "message"),
    [
        ({}, None, "config.url: required"),
        ({"url": "ftp://x"}, None, "config.url: an http(s) URL"),
        ({"url": "https://u:p@x"}, None, "config.url: no user name or password"),
        ({"url": "https://x", "colour": 1}, None, "config.colour: not a setting"),
        ({"url": "https://x", "pagination": {"type": "x"}}, None, "config.pagination.type"),
        ({"url": "https://x", "pagination": {"type": "cursor"}}, None, "pagination.cursor"),
        ({"url": "https://x", "auth": {"type": "header"}}, None, "credentials.token"),
        ({"url": "https://x", "auth": {"type": "basic"}}, None, "config.auth.type"),
        (
            {"url": "https://x", "auth": {"type": "oauth2", "token_url": "https://x/t"}},
            {"client_id": "c"},
            "credentials.client_secret: required by client_secret_basic",
        ),
        (
            {
                "url": "https://x",
                "auth": {"type": "oauth2", "token_url": "https://x/t", "method": "private_key_jwt"},
            },
            {"client_id": "c", "private_key": "not a key"},
            "credentials.private_key: not a private key",
        ),
        ({"url": "https://x", "retry": {"attempts": 99}}, None, "config.retry.attempts"),
        ({"url": "https://x", "timeout": 0}, None, "config.timeout"),
        ({"url": "https://x", "headers": {"Bad Name": "v"}}, None, "config.headers.Bad Name"),
    ],
)
def test_configuration_errors_name_the_key(
    config: dict[str, Any], credentials: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HttpConfig.parse(config, credentials)
