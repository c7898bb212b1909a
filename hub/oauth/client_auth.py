"""Client authentication at the token, introspection and revocation endpoints.

Three methods (RFC 8414 ``token_endpoint_auth_methods_supported``): ``client_secret_basic``
(RFC 6749 §2.3.1, HTTP Basic), ``client_secret_post`` (§2.3.1, secret in the body) and
``private_key_jwt`` (RFC 7523 §2.2, see :mod:`hub.oauth.assertions`). A request uses one
method only (§2.3). Unknown client, wrong credentials and disabled client get one answer,
``invalid_client`` with 401 (§5.2), so the endpoint cannot be used to probe for accounts.

Failures are budgeted per claimed client id and source address
(:class:`hub.oauth.ratelimit.FailureLimiter`): a blocked id gets 429 ``slow_down`` before
its credentials are looked at, and unknown ids are counted like known ones.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from urllib.parse import unquote_plus

from sqlalchemy import select
from sqlmodel import col
from starlette.requests import Request

from hub.models import Client, Organization
from hub.oauth._http import OAuthError
from hub.oauth.assertions import (
    ASSERTION_TYPE,
    InvalidAssertionError,
    assertion_subject,
    record_assertion,
    verify_assertion,
)
from hub.oauth.clients import secret_matches
from hub.oauth.context import OAuthContext

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
_FAILED = "client authentication failed"
audit = logging.getLogger("hub.audit")


@dataclass(frozen=True)
class AuthenticatedClient:
    client: Client
    organization: Organization
    method: str


def invalid_client(description: str = _FAILED) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined for Basic auth."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("the Basic credentials are malformed") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("the Basic credentials are malformed")
    return unquote_plus(client_id), unquote_plus(secret)


async def load_client(
    runtime: OAuthContext, client_id: str, *, fresh: bool = False
) -> tuple[Client, Organization] | None:
    """The client and its organization, from a cache of ``HUB_CLIENT_CACHE_TTL`` seconds
    (``fresh``: read now, e.g. after a secret mismatch, so a rotated secret works at once).

    The cache keeps a database read off most token requests (the bench's hot path); a
    disabled client is refused within the same time as its tokens at the resource side.
    """
    if "\x00" in client_id:
        # No client id holds NUL, and PostgreSQL text cannot even be compared with one:
        # unknown, like any other id that exists nowhere (never a database error).
        return None

    async def read() -> tuple[Client, Organization] | None:
        async with runtime.database.session() as session:
            row = (
                await session.execute(
                    select(Client, Organization)
                    .join(Organization, col(Organization.id) == col(Client.organization_id))
                    .where(col(Client.client_id) == client_id)
                )
            ).first()
        return None if row is None else (row[0], row[1])

    ttl = 0.0 if fresh else runtime.settings.client_cache_ttl
    return await runtime.client_rows.get(client_id, ttl, read)


def _usable(found: tuple[Client, Organization] | None) -> tuple[Client, Organization]:
    if found is None or not found[0].active or not found[1].active:
        raise invalid_client()
    return found


async def _by_secret(
    runtime: OAuthContext, client_id: str, secret: str, method: str
) -> AuthenticatedClient:
    found = await load_client(runtime, client_id)
    if found is None or not secret_matches(found[0], secret):
        # A secret rotated since the row was cached must work at once: read it again.
        found = await load_client(runtime, client_id, fresh=True)
        if found is None or not secret_matches(found[0], secret):
            raise invalid_client()
    client, org = _usable(found)
    return AuthenticatedClient(client, org, method)


def _audiences(runtime: OAuthContext) -> tuple[str, ...]:
    """The ``aud`` values an assertion may carry: the issuer identifier only
    (draft-ietf-oauth-rfc7523bis: an audience-injection attack makes a client sign an
    assertion for one server's endpoint URL that another server then accepts); the token
    endpoint URL too for legacy clients when ``HUB_ASSERTION_ACCEPT_TOKEN_ENDPOINT_AUD``."""
    issuer = runtime.settings.issuer
    if runtime.settings.assertion_accept_token_endpoint_aud:
        return (issuer, f"{issuer}/oauth/token")
    return (issuer,)


async def _by_assertion(runtime: OAuthContext, form: dict[str, str]) -> AuthenticatedClient:
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion")
    if not assertion:
        raise invalid_client("client_assertion is missing")
    try:
        client_id = assertion_subject(assertion)
        if form.get("client_id", client_id) != client_id:
            raise InvalidAssertionError("client_id differs from the assertion's iss and sub")
        found = await load_client(runtime, client_id)
        if found is None or not found[0].jwks:
            raise invalid_client()
        verified = verify_assertion(
            assertion, found[0].jwks, client_id=client_id, audiences=_audiences(runtime)
        )
        client, org = _usable(found)
        await record_assertion(runtime.database, verified)
    except InvalidAssertionError as error:
        raise invalid_client(str(error)) from None
    return AuthenticatedClient(client, org, "private_key_jwt")


def source_address(request: Request) -> str:
    """The peer address the request came from (the proxy's, behind one whose address is
    not in uvicorn's ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client is not None else "unknown"


def _method_and_claimed_id(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """Which method a request tried and the client id it claimed (unverified), for the log."""
    header = request.headers.get("authorization", "")
    claimed: str | None = None
    if header.lower().startswith("basic "):
        method = "client_secret_basic"
        try:
            basic = _basic_credentials(header)
        except OAuthError:
            basic = None
        claimed = None if basic is None else basic[0]
    elif "client_assertion" in form or "client_assertion_type" in form:
        method = "private_key_jwt"
        try:
            claimed = assertion_subject(form.get("client_assertion", ""))
        except InvalidAssertionError:
            claimed = form.get("client_id")
    else:
        method = "client_secret_post" if "client_secret" in form else "none"
        claimed = form.get("client_id")
    # Caller-chosen text: bounded so a flood of huge ids cannot flood the log.
    return method, None if claimed is None else claimed[:128]


def _audit_failure(request: Request, method: str, claimed: str | None, reason: str) -> None:
    """A structured ``hub.audit`` event for a failed client authentication.

    Never the secret or the assertion: only the id tried, the address, the method and the
    reason. The tamper-evident audit table arrives in a later issue; until then the event
    goes to the log only.
    """
    fields = {
        "event": "client_authentication_failed",
        "client_id": claimed,
        "source_address": source_address(request),
        "method": method,
        "reason": reason,
        "path": request.url.path,
    }
    audit.warning("client authentication failed", extra={"fields": fields})


def _audit_block(request: Request, claimed: str, limit: str, seconds: int) -> None:
    """A ``hub.audit`` event when a failure budget runs out (once per block, not per
    refused request, so an attack cannot flood the log through it)."""
    fields = {
        "event": "client_authentication_blocked",
        "client_id": claimed,
        "source_address": source_address(request),
        "limit": limit,
        "seconds": seconds,
        "path": request.url.path,
    }
    audit.warning("client authentication blocked", extra={"fields": fields})


async def _is_public(runtime: OAuthContext, client_id: str) -> bool:
    """A registered public client has no credential to guess: failures naming it are not
    budgeted, since a block could only keep staff from signing in. (Its id is no secret:
    it travels in every authorization request.)"""
    found = await load_client(runtime, client_id)
    return found is not None and found[0].secret_hash is None and not found[0].jwks


async def _public(runtime: OAuthContext, client_id: str) -> AuthenticatedClient:
    """RFC 6749 §2.1 public client (``none``, RFC 7591 §2): only one registered without a
    secret or keys, and only for the authorization code grant (PKCE protects its codes)."""
    found = await load_client(runtime, client_id)
    if found is None or found[0].secret_hash is not None or found[0].jwks:
        raise invalid_client()
    client, org = _usable(found)
    return AuthenticatedClient(client, org, "none")


async def authenticate_client(
    request: Request, form: dict[str, str], runtime: OAuthContext, *, allow_public: bool = False
) -> AuthenticatedClient:
    """Authenticate the calling client or raise :class:`OAuthError` (``invalid_client``,
    or :class:`~hub.oauth.ratelimit.RateLimitedError` when the claimed client's failure
    budget is used up); every ``invalid_client`` is logged to ``hub.audit``.
    ``allow_public`` (the token endpoint) accepts a bare ``client_id`` of a public client."""
    method, claimed = _method_and_claimed_id(request, form)
    address = source_address(request)
    failures = runtime.rate_limiter.failures
    # Decided before any credential is read: a refused guess reveals nothing about itself.
    known = None if claimed is None else await failures.check(claimed, address)
    try:
        caller = await _authenticate(request, form, runtime, allow_public)
    except OAuthError as error:
        if error.error == "invalid_client":
            _audit_failure(request, method, claimed, error.description)
            if claimed is not None and not await _is_public(runtime, claimed):
                for limit, seconds in await failures.failed(claimed, address):
                    _audit_block(request, claimed, limit, seconds)
        raise
    await failures.succeeded(caller.client.client_id, address, known)
    return caller


async def _authenticate(
    request: Request, form: dict[str, str], runtime: OAuthContext, allow_public: bool
) -> AuthenticatedClient:
    header = request.headers.get("authorization")
    basic = _basic_credentials(header) if header else None
    posted = "client_secret" in form
    asserted = "client_assertion" in form or "client_assertion_type" in form
    if basic is not None and "client_id" in form and form["client_id"] != basic[0]:
        raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
    if (basic is not None) + posted + asserted > 1:
        raise OAuthError("invalid_request", "use exactly one client authentication method")
    if basic is not None:
        return await _by_secret(runtime, basic[0], basic[1], "client_secret_basic")
    if posted:
        client_id = form.get("client_id")
        if not client_id:
            raise invalid_client("client_secret_post needs client_id in the body")
        return await _by_secret(runtime, client_id, form["client_secret"], "client_secret_post")
    if asserted:
        return await _by_assertion(runtime, form)
    if allow_public and form.get("client_id"):
        return await _public(runtime, form["client_id"])
    raise invalid_client(
        "authenticate with client_secret_basic, client_secret_post or private_key_jwt"
    )
