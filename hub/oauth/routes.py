"""Authorization-server endpoints: token (RFC 6749 §4.4), metadata (RFC 8414), JWKS,
introspection (RFC 7662, :mod:`hub.oauth.introspection`) and revocation (RFC 7009,
:mod:`hub.oauth.revoke`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.metrics import record_token
from hub.oauth._http import NO_STORE, OAuthError, read_form
from hub.oauth.authorize import authorization_endpoint
from hub.oauth.client_auth import AUTH_METHODS, authenticate_client, source_address
from hub.oauth.client_keys import ASSERTION_ALGORITHMS
from hub.oauth.context import OAuthContext
from hub.oauth.grants import STAFF_GRANTS
from hub.oauth.introspection import introspection_endpoint
from hub.oauth.keys import ALGORITHM
from hub.oauth.pkce import METHODS as PKCE_METHODS
from hub.oauth.ratelimit import RateLimitedError
from hub.oauth.revoke import revocation_endpoint
from hub.oauth.scopes import ADVERTISED_SCOPES, ALL_SCOPES, grantable_scopes
from hub.oauth.tokens import issue_access_token


def _granted_scopes(form: dict[str, str], allowed: list[str]) -> list[str]:
    """RFC 6749 §3.3: the requested scopes if all are allowed; all allowed if none asked."""
    requested = form.get("scope", "").split()
    if not requested:
        return sorted(allowed)
    unknown = [s for s in requested if s not in ALL_SCOPES or s not in allowed]
    if unknown:
        raise OAuthError("invalid_scope", f"scope not allowed: {' '.join(unknown)}")
    return sorted(set(requested))


async def token_endpoint(request: Request) -> Response:
    """RFC 6749 §4.4.2 client_credentials access token request."""
    runtime: OAuthContext = request.app.state.runtime
    settings = runtime.settings
    form: dict[str, str] = {}  # named by the outcome metric even if never read
    try:
        # Counted before client authentication: secret guessing is throttled per address.
        await runtime.rate_limiter.check_address(source_address(request))
        form = await read_form(request)
        caller = await authenticate_client(request, form, runtime, allow_public=True)
        await runtime.rate_limiter.check_client(caller.client.client_id)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type in STAFF_GRANTS:
            if grant_type not in caller.client.grant_types:
                raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
            body = await STAFF_GRANTS[grant_type](runtime, caller, form)
            record_token(request.scope, grant_type, "issued")
            return JSONResponse(body, headers=NO_STORE)
        if caller.method == "none":
            raise OAuthError("unauthorized_client", "a public client may not use this grant")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
        if "client_credentials" not in caller.client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use client_credentials")
        # RFC 8707 §2: the only protected resource is the hub itself.
        resource = form.get("resource")
        if resource is not None and resource != settings.token_audience:
            raise OAuthError("invalid_target", f"resource must be {settings.token_audience}")
        # Defence in depth: what is stored is narrowed to what the organization's kind may
        # hold, so a partner's client never gets hub:admin even if a row says so.
        allowed = grantable_scopes(caller.organization.kind, caller.client.scopes)
        scopes = _granted_scopes(form, allowed)
    # RateLimitedError is an OAuthError (429 slow_down with Retry-After): caught first.
    except RateLimitedError as error:
        record_token(request.scope, form.get("grant_type"), "rate_limited")
        return error.response()
    except OAuthError as error:
        record_token(request.scope, form.get("grant_type"), error.error)
        return error.response()

    issued = issue_access_token(
        runtime.keyring,
        issuer=settings.issuer,
        audience=settings.token_audience,
        client_id=caller.client.client_id,
        organization_slug=caller.organization.slug,
        scopes=scopes,
        ttl=settings.access_token_ttl,
    )
    body = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    record_token(request.scope, grant_type, "issued")
    return JSONResponse(body, headers=NO_STORE)


async def metadata_endpoint(request: Request) -> Response:
    """RFC 8414 §2 authorization server metadata, for what the hub implements."""
    runtime: OAuthContext = request.app.state.runtime
    issuer = runtime.settings.issuer
    methods = list(AUTH_METHODS)
    algorithms = list(ASSERTION_ALGORITHMS)
    return JSONResponse(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": list(PKCE_METHODS),
            # RFC 9207: the authorization response carries iss (mix-up defence).
            "authorization_response_iss_parameter_supported": True,
            "scopes_supported": sorted(ADVERTISED_SCOPES),
            # "none": public clients of the authorization code grant (RFC 7591 §2).
            "token_endpoint_auth_methods_supported": [*methods, "none"],
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
            "introspection_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
            "revocation_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
            "access_token_signing_alg_values_supported": [ALGORITHM],
        }
    )


async def jwks_endpoint(request: Request) -> Response:
    """RFC 7517 §5: the current and previous signing keys, never a retired one."""
    runtime: OAuthContext = request.app.state.runtime
    # Short cache: a rotation must reach resource servers within a token lifetime.
    return JSONResponse(runtime.keyring.jwks(), headers={"Cache-Control": "max-age=60"})


routes = [
    Route("/oauth/authorize", authorization_endpoint, methods=["GET", "POST"]),
    Route("/oauth/token", token_endpoint, methods=["POST"]),
    Route("/oauth/introspect", introspection_endpoint, methods=["POST"]),
    Route("/oauth/revoke", revocation_endpoint, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
]
