"""Verified access tokens cached by hash (hub.oauth.verified_tokens): a cached token skips
verification, yet expiry, revocation, disabled clients and staff users and key changes are
honoured as without the cache."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import delete, select, update
from sqlmodel import col
from starlette.requests import HTTPConnection
from starlette.types import Scope

from app import create_app
from hub.db import Database
from hub.models import Client, Organization, SigningKey, StaffUser
from hub.models._types import utcnow
from hub.oauth import bearer, verified_tokens
from hub.oauth.bearer import BearerTokenBackend, PrincipalUser
from hub.oauth.keys import KeyRing, rotate_signing_keys
from hub.oauth.tokens import issue_access_token, verify_access_token
from hub.oauth.verified_tokens import VerifiedToken, VerifiedTokenCache, token_key
from hub.principal import Principal
from hub.runtime import Runtime
from tests.conftest import SECRET, Caller, make_caller, make_settings, token_for
from tests.hub.oauth_helpers import post_form
from tests.hub.staff_helpers import exchange, get_code, make_code_client, make_staff, pkce_pair

ISSUER = "http://hub.test"
QUERY = {"query": "{ me { clientId } }"}

Hub = tuple[httpx.AsyncClient, Runtime]


@asynccontextmanager
async def serving(database_url: str, **overrides: Any) -> AsyncIterator[Hub]:
    """An app on the test database, its lifespan running, and its runtime."""
    # model_copy: make_settings pins client_cache_ttl, which some tests set.
    application = create_app(make_settings(database_url).model_copy(update=overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http, application.state.runtime


@pytest.fixture
async def hub(db: Database, database_url: str) -> AsyncIterator[Hub]:
    async with serving(database_url) as served:
        yield served


class Verifications:
    """Counts full verifications done by the bearer check."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.count += 1
        return verify_access_token(*args, **kwargs)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Verifications:
    counter = Verifications()
    monkeypatch.setattr(bearer, "verify_access_token", counter)
    return counter


async def status(http: httpx.AsyncClient, token: str) -> int:
    response = await http.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(jws.extract_compact(token.encode()).payload)
    return claims


# --- at /graphql, on both backends ---


async def test_a_cached_token_keeps_working_without_verifying_again(
    hub: Hub, db: Database, verifications: Verifications
) -> None:
    http, runtime = hub
    caller = await make_caller(db, "distributor")
    token = await token_for(http, caller)

    for _ in range(5):
        assert await status(http, token) == 200

    assert verifications.count == 1
    assert len(runtime.verified_tokens) == 1


async def test_a_zero_ttl_turns_the_cache_off(
    db: Database, database_url: str, verifications: Verifications
) -> None:
    async with serving(database_url, access_token_cache_ttl=0) as (http, runtime):
        caller = await make_caller(db, "distributor")
        token = await token_for(http, caller)
        for _ in range(3):
            assert await status(http, token) == 200
        assert verifications.count == 3
        assert len(runtime.verified_tokens) == 0


async def test_the_cache_holds_digests_not_tokens(hub: Hub, db: Database) -> None:
    http, runtime = hub
    token = await token_for(http, await make_caller(db, "distributor"))
    assert await status(http, token) == 200

    keys = list(runtime.verified_tokens._entries)
    assert keys == [token_key(token)]
    assert len(keys[0]) == 32
    entry = runtime.verified_tokens._entries[keys[0]]
    assert all(getattr(entry, name) != token for name in VerifiedToken.__slots__)


async def test_a_token_is_not_used_from_the_cache_past_its_exp(
    hub: Hub, db: Database, verifications: Verifications, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, runtime = hub
    token = await token_for(http, await make_caller(db, "distributor"))
    assert await status(http, token) == 200
    exp = int(claims_of(token)["exp"])

    # One second past exp: the cache no longer answers; full verification decides (it
    # tolerates 30 s of clock skew between replicas, as it did before the cache).
    monkeypatch.setattr(time, "time", lambda: exp + 1.0)
    assert await status(http, token) == 200
    assert verifications.count == 2
    assert len(runtime.verified_tokens) == 0  # an expired token is not stored again

    # Past the leeway the token is refused, although it was cached.
    monkeypatch.setattr(time, "time", lambda: exp + 120.0)
    assert await status(http, token) == 401
    assert verifications.count == 3


async def test_a_revoked_cached_token_is_refused_at_once_here(
    hub: Hub, db: Database, verifications: Verifications
) -> None:
    http, _runtime = hub
    caller = await make_caller(db, "distributor")
    token = await token_for(http, caller)
    assert await status(http, token) == 200

    revoked = await post_form(http, "/oauth/revoke", {"token": token}, caller.basic)
    assert revoked.status_code == 200

    assert await status(http, token) == 401
    assert verifications.count == 1  # refused from the cached entry, by the deny list


async def test_a_revoked_cached_token_is_refused_by_another_replica_within_its_interval(
    hub: Hub, db: Database, database_url: str, verifications: Verifications
) -> None:
    http, _runtime = hub
    caller = await make_caller(db, "distributor")
    token = await token_for(http, caller)
    async with serving(database_url, revocation_refresh_interval=0.1) as (replica, runtime):
        assert await status(replica, token) == 200
        assert await status(replica, token) == 200
        assert verifications.count == 1
        assert len(runtime.verified_tokens) == 1

        await post_form(http, "/oauth/revoke", {"token": token}, caller.basic)

        # HUB_REVOCATION_REFRESH_INTERVAL is 0.1 s here; allow the loaded machine slack.
        for _ in range(100):
            if await status(replica, token) == 401:
                break
            await asyncio.sleep(0.05)
        assert await status(replica, token) == 401
        assert verifications.count == 1


async def _disable_client(db: Database, caller: Caller) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Client).where(col(Client.client_id) == caller.client_id).values(active=False)
        )


async def _disable_org(db: Database, caller: Caller) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Organization).where(col(Organization.id) == caller.org.id).values(active=False)
        )


@pytest.mark.parametrize("disable", [_disable_client, _disable_org], ids=["client", "organization"])
async def test_a_disabled_clients_cached_token_is_refused_within_the_client_cache_ttl(
    db: Database,
    database_url: str,
    verifications: Verifications,
    disable: Callable[[Database, Caller], Any],
) -> None:
    ttl = 0.3
    async with serving(database_url, client_cache_ttl=ttl) as (http, _runtime):
        caller = await make_caller(db, "distributor")
        token = await token_for(http, caller)
        assert await status(http, token) == 200

        await disable(db, caller)
        # The client was read at most ttl ago, so one ttl from now it is read again.
        await asyncio.sleep(ttl + 0.05)

        assert await status(http, token) == 401
        assert verifications.count == 1


async def test_a_disabled_staff_users_cached_token_is_refused(
    hub: Hub, db: Database, verifications: Verifications
) -> None:
    http, _runtime = hub
    staff = await make_staff(db, roles=("analyst",))
    registered = await make_code_client(db, staff.org)
    verifier, challenge = pkce_pair()
    code = await get_code(http, registered.client_id, staff.email, challenge)
    token = (await exchange(http, registered, code, verifier)).json()["access_token"]
    assert await status(http, token) == 200
    assert await status(http, token) == 200
    assert verifications.count == 1

    async with db.transaction() as session:
        await session.execute(
            update(StaffUser).where(col(StaffUser.id) == staff.user.id).values(active=False)
        )

    # HUB_CLIENT_CACHE_TTL is 0 in the tests: refused at the next request.
    assert await status(http, token) == 401
    assert verifications.count == 1


@pytest.fixture
async def restore_keys(db: Database) -> AsyncIterator[None]:
    """Put the session's signing keys back as they were: other tests sign with them."""
    async with db.session() as session:
        saved = [
            (row.kid, row.created_at, row.retired_at)
            for row in (await session.execute(select(SigningKey))).scalars()
        ]
    yield
    async with db.transaction() as session:
        kids = [kid for kid, _, _ in saved]
        await session.execute(delete(SigningKey).where(col(SigningKey.kid).not_in(kids)))
        for kid, created_at, retired_at in saved:
            await session.execute(
                update(SigningKey)
                .where(col(SigningKey.kid) == kid)
                .values(created_at=created_at, retired_at=retired_at)
            )


async def test_a_cached_token_of_a_key_no_longer_published_is_refused(
    hub: Hub, db: Database, restore_keys: None, verifications: Verifications
) -> None:
    http, runtime = hub
    caller = await make_caller(db, "distributor")
    token = await token_for(http, caller)
    assert await status(http, token) == 200
    async with db.transaction() as session:
        new = await rotate_signing_keys(session, SECRET.encode(), max_token_lifetime=900)
        # Its successor is older than the longest token lifetime: the old key is retired.
        long_ago = utcnow() - timedelta(seconds=900 + 120)
        await session.execute(
            update(SigningKey).where(col(SigningKey.kid) == new.new_kid).values(created_at=long_ago)
        )
        await session.execute(
            update(SigningKey)
            .where(col(SigningKey.kid) != new.new_kid)
            .values(created_at=long_ago - timedelta(days=1))
        )
    await runtime.reload_keys()

    assert await status(http, token) == 401
    assert verifications.count == 2


async def test_the_cache_is_bounded_least_recently_used_out_first(
    db: Database, database_url: str, verifications: Verifications
) -> None:
    async with serving(database_url, access_token_cache_size=3) as (http, runtime):
        caller = await make_caller(db, "distributor")
        tokens = [await token_for(http, caller) for _ in range(5)]
        for token in tokens:
            assert await status(http, token) == 200
        assert len(runtime.verified_tokens) == 3
        assert verifications.count == 5

        assert await status(http, tokens[-1]) == 200  # still cached
        assert verifications.count == 5
        assert await status(http, tokens[0]) == 200  # evicted: verified again
        assert verifications.count == 6
        assert len(runtime.verified_tokens) == 3


def _hub_signed(runtime: Runtime, caller: Caller, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": caller.client_id,
        "aud": ISSUER,
        "exp": now + 300,
        "iat": now,
        "jti": f"jti-{now}-{len(overrides)}",
        "client_id": caller.client_id,
        "scope": "customers:read",
        **overrides,
    }
    header = {"alg": "ES256", "typ": "at+jwt", "kid": runtime.keyring.signing_kid}
    return jwt.encode(header, claims, runtime.keyring.signing_key, algorithms=["ES256"])


@pytest.mark.parametrize(
    "overrides",
    [{"exp": -100}, {"nbf": 3600}, {"aud": "http://other.test"}, {"roles": "admin"}],
    ids=["expired", "not yet valid", "wrong audience", "malformed roles"],
)
async def test_a_token_that_fails_verification_is_not_cached(
    hub: Hub, db: Database, verifications: Verifications, overrides: dict[str, Any]
) -> None:
    http, runtime = hub
    caller = await make_caller(db, "distributor")
    now = int(time.time())
    values = {
        name: now + value if name in {"exp", "nbf"} and isinstance(value, int) else value
        for name, value in overrides.items()
    }
    token = _hub_signed(runtime, caller, **values)

    for _ in range(3):
        assert await status(http, token) == 401

    assert verifications.count == 3
    assert len(runtime.verified_tokens) == 0


def _connection(runtime_app: Any, token: str) -> HTTPConnection:
    scope: Scope = {
        "type": "http",
        "app": runtime_app,
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }
    return HTTPConnection(scope)


async def _principal(backend: BearerTokenBackend, app: Any, token: str) -> Principal:
    result = await backend.authenticate(_connection(app, token))
    assert result is not None
    user = result[1]
    assert isinstance(user, PrincipalUser)
    return user.principal


async def test_the_cached_path_gives_the_principal_full_verification_gives(
    db: Database, database_url: str
) -> None:
    """A client's token and a staff user's (roles, subject, the user's organization)."""
    application = create_app(make_settings(database_url).model_copy(update={"client_cache_ttl": 5}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            caller = await make_caller(db, "distributor", attributes={"region": "north"})
            client_token = await token_for(http, caller)
            staff = await make_staff(db, roles=("analyst", "policy_editor"))
            registered = await make_code_client(db, staff.org)
            verifier, challenge = pkce_pair()
            code = await get_code(http, registered.client_id, staff.email, challenge)
            staff_token = (await exchange(http, registered, code, verifier)).json()["access_token"]
        runtime: Runtime = application.state.runtime
        backend = BearerTokenBackend()
        for token in (client_token, staff_token):
            first = await _principal(backend, application, token)
            cached = await _principal(backend, application, token)
            assert cached is first  # the same directory identities: the memo answers
            runtime.verified_tokens.clear()
            fresh = await _principal(backend, application, token)
            assert fresh == first
            assert fresh.attributes == first.attributes
        staff_principal = await _principal(backend, application, staff_token)
        assert staff_principal.roles == frozenset({"analyst", "policy_editor"})
        assert staff_principal.subject == str(staff.user.id)
        assert staff_principal.organization_id == staff.org.id
        assert staff_principal.client_id == registered.client_id


# --- the cache alone ---


class FakeClock:
    """Stands in for the ``time`` module inside :mod:`hub.oauth.verified_tokens`."""

    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(verified_tokens, "time", fake)
    return fake


def _keyring() -> KeyRing:
    key = ECKey.generate_key("P-256", private=True)
    public = {**key.as_dict(private=False), "kid": key.thumbprint()}
    return KeyRing(
        signing_kid=key.thumbprint(),
        signing_key=key,
        public_keys=KeySet([ECKey.import_key(public)]),
        public_jwks=[public],
    )


def _entry(keyring: KeyRing, expires_at: float, jti: str = "j") -> VerifiedToken:
    return VerifiedToken(
        jti=jti,
        client_id="c",
        subject="c",
        scopes=frozenset(),
        roles=None,
        expires_at=expires_at,
        keyring=keyring,
    )


def test_an_entry_stops_at_exp_and_at_the_max_age(clock: FakeClock) -> None:
    keyring = _keyring()
    cache = VerifiedTokenCache(max_entries=10, max_age=60)
    cache.put(b"soon", _entry(keyring, clock.wall + 10))
    cache.put(b"late", _entry(keyring, clock.wall + 900))

    clock.advance(9.9)
    assert cache.get(b"soon", keyring) is not None
    clock.advance(0.1)  # exactly exp: no longer
    assert cache.get(b"soon", keyring) is None
    assert cache.get(b"late", keyring) is not None
    clock.advance(50)  # 60 s after verification
    assert cache.get(b"late", keyring) is None
    assert len(cache) == 0


def test_an_already_expired_entry_is_not_stored(clock: FakeClock) -> None:
    cache = VerifiedTokenCache(max_entries=10, max_age=60)
    cache.put(b"k", _entry(_keyring(), clock.wall))
    assert len(cache) == 0


def test_a_new_key_ring_with_the_same_keys_keeps_entries_other_keys_drop_them(
    clock: FakeClock,
) -> None:
    keyring = _keyring()
    cache = VerifiedTokenCache(max_entries=10, max_age=60)
    cache.put(b"k", _entry(keyring, clock.wall + 100))

    reloaded = KeyRing(
        signing_kid=keyring.signing_kid,
        signing_key=keyring.signing_key,
        public_keys=keyring.public_keys,
        public_jwks=[dict(jwk) for jwk in keyring.public_jwks],
    )
    entry = cache.get(b"k", reloaded)
    assert entry is not None and entry.keyring is reloaded

    assert cache.get(b"k", _keyring()) is None
    assert len(cache) == 0


def test_bounded_least_recently_used_out_first(clock: FakeClock) -> None:
    keyring = _keyring()
    cache = VerifiedTokenCache(max_entries=3, max_age=60)
    for name in (b"a", b"b", b"c"):
        cache.put(name, _entry(keyring, clock.wall + 100))
    assert cache.get(b"a", keyring) is not None  # a is now the most recently used
    cache.put(b"d", _entry(keyring, clock.wall + 100))
    cache.put(b"e", _entry(keyring, clock.wall + 100))

    assert len(cache) == 3
    assert [cache.get(name, keyring) is not None for name in (b"a", b"b", b"c", b"d", b"e")] == [
        True,
        False,
        False,
        True,
        True,
    ]


def test_a_token_key_is_its_sha256_digest() -> None:
    token = issue_access_token(
        _keyring(),
        issuer=ISSUER,
        audience=ISSUER,
        client_id="c",
        organization_slug="o",
        scopes=[],
        ttl=60,
    ).token
    key = token_key(token)
    assert len(key) == 32
    assert key == token_key(token) != token_key(token + "x")
    assert token.encode() not in key
