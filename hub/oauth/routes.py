"""Authorization-server endpoints: token (RFC 6749 §4.4), metadata (RFC 8414), JWKS,
introspection (RFC 7662, :mod:`hub.oauth.introspection`) and revocation (RFC 7009,
:mod:`hub.oauth.revoke`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.oauth._http import NO_STORE, OAuthError, read_form
from hub.oauth.client_auth import AUTH_METHODS, authenticate_client
from hub.oauth.client_keys import ASSERTION_ALGORITHMS
from hub.oauth.introspection import introspection_endpoint
from hub.oauth.keys import ALGORITHM
from hub.oauth.revoke import revocation_endpoint
from hub.oauth.scopes import ALL_SCOPES
from hub.oauth.tokens import issue_access_token
from hub.runtime import Runtime


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
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    try:
        form = await read_form(request)
        caller = await authenticate_client(request, form, runtime)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
        if "client_credentials" not in caller.client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use client_credentials")
        # RFC 8707 §2: the only protected resource is the hub itself.
        resource = form.get("resource")
        if resource is not None and resource != settings.token_audience:
            raise OAuthError("invalid_target", f"resource must be {settings.token_audience}")
        scopes = _granted_scopes(form, caller.client.scopes)
    except OAuthError as error:
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
    return JSONResponse(body, headers=NO_STORE)


async def metadata_endpoint(request: Request) -> Response:
    """RFC 8414 §2 authorization server metadata, for what the hub implements."""
    runtime: Runtime = request.app.state.runtime
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
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "scopes_supported": sorted(ALL_SCOPES),
            "token_endpoint_auth_methods_supported": methods,
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
    runtime: Runtime = request.app.state.runtime
    # Short cache: a rotation must reach resource servers within a token lifetime.
    return JSONResponse(runtime.keyring.jwks(), headers={"Cache-Control": "max-age=60"})


routes = [
    Route("/oauth/token", token_endpoint, methods=["POST"]),
    Route("/oauth/introspect", introspection_endpoint, methods=["POST"]),
    Route("/oauth/revoke", revocation_endpoint, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
]
