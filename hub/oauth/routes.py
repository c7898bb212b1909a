"""Authorization-server endpoints: token (RFC 6749 §4.4), metadata (RFC 8414), JWKS."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.models import Organization
from hub.oauth.clients import find_client, secret_matches
from hub.oauth.scopes import ALL_SCOPES
from hub.oauth.tokens import issue_access_token
from hub.runtime import Runtime

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """RFC 6749 §5.2 error response; ``invalid_client`` carries a Basic challenge."""
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="partner-hub"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _parse_form(body: bytes) -> dict[str, str] | None:
    """RFC 6749 §3.2: parameters sent without a value are omitted; none may repeat."""
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            return None
        if value:
            form[name] = value
    return form


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined for Basic auth."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


async def token_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = _parse_form(await request.body())
    if form is None:
        return oauth_error("invalid_request", "the body is malformed or repeats a parameter")
    credentials = _basic_credentials(request)
    if credentials is None:
        return oauth_error(
            "invalid_client", "authenticate with HTTP Basic (client_secret_basic)", 401
        )
    client_id, secret = credentials
    grant_type = form.get("grant_type")
    if not grant_type:
        return oauth_error("invalid_request", "grant_type is required")

    async with runtime.database.session() as session:
        client = await find_client(session, client_id)
        org = None if client is None else await session.get(Organization, client.organization_id)
    # One answer for unknown client, wrong secret and disabled client (no account probing).
    if client is None or org is None or not secret_matches(client, secret):
        return oauth_error("invalid_client", "client authentication failed", 401)
    if not client.active or not org.active:
        return oauth_error("invalid_client", "client authentication failed", 401)
    if grant_type != "client_credentials":
        return oauth_error("unsupported_grant_type", f"grant_type {grant_type} is not supported")
    if "client_credentials" not in client.grant_types:
        return oauth_error("unauthorized_client", "this client may not use client_credentials")

    requested = str(form.get("scope") or "").split()
    allowed = set(client.scopes)
    if requested:
        unknown = [s for s in requested if s not in ALL_SCOPES or s not in allowed]
        if unknown:
            return oauth_error("invalid_scope", f"scope not allowed: {' '.join(unknown)}")
        scopes = sorted(set(requested))
    else:
        scopes = sorted(allowed)

    settings = runtime.settings
    issued = issue_access_token(
        runtime.keyring,
        issuer=settings.issuer,
        audience=settings.token_audience,
        client_id=client.client_id,
        organization_slug=org.slug,
        scopes=scopes,
        ttl=settings.access_token_ttl,
    )
    body = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    return JSONResponse(body, headers=_NO_STORE)


async def metadata_endpoint(request: Request) -> Response:
    """RFC 8414 §2 authorization server metadata."""
    runtime: Runtime = request.app.state.runtime
    issuer = runtime.settings.issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": sorted(ALL_SCOPES),
            "access_token_signing_alg_values_supported": ["ES256"],
        }
    )


async def jwks_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return JSONResponse(runtime.keyring.jwks(), headers={"Cache-Control": "max-age=300"})


routes = [
    Route("/oauth/token", token_endpoint, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
]
