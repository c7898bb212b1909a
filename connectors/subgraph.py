"""A GraphQL subgraph (Apollo Federation v2) the hub composes: the client that reads its
``_service { sdl }`` and sends it batched ``_entities`` requests.

Plain GraphQL over HTTP (a JSON POST, ``application/json`` back), through a small
keep-alive HTTP/1.1 client (:mod:`connectors._http1`): these calls are made inside a
partner's request, where httpx cost three times its CPU and aiohttp twice
(docs/federation.md). The caller supplies the connections (the hub's SSRF-checked dial,
:func:`hub.netguard.guarded_dial`) and the authentication, never the caller's own token:

- :class:`HeaderAuth`: a static header (``Authorization: Bearer ...``, ``X-Api-Key``);
- :class:`ClientCredentials`: an OAuth 2.0 client-credentials token (RFC 6749 §4.4) from
  the subgraph's own authorization server, through authlib's httpx client, which fetches
  a token on first use and a new one when it expires.

Redirects are never followed (a redirect could lead anywhere the transport's check did
not see), the answer is read up to :data:`MAX_BODY` bytes, and every failure is a
:class:`SubgraphError` whose message says what went wrong, never a traceback.

Example::

    url = "https://loyalty.example.com/graphql"
    client = SubgraphClient(url, timeout=2.0, dial=guarded_dial(url, NetPolicy()),
                            auth=HeaderAuth("Authorization", "Bearer s3cret"))
    sdl = await client.sdl()
    data = await client.query("query($r: [_Any!]!) { _entities(representations: $r) "
                              "{ ... on Customer { loyaltyTier } } }", {"r": [...]})
    await client.aclose()
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from connectors._http1 import BodyTooLargeError, Dial, Http1Client, HttpError

with warnings.catch_warnings():
    # authlib prefers the `httpx2` fork and warns when it falls back to httpx; the hub's
    # token transports (hub.netguard) are httpx transports, so httpx it is.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

USER_AGENT = "PartnerHub-Federation/1"
MAX_BODY = 16 * 1024 * 1024
SDL_QUERY = "{ _service { sdl } }"


class SubgraphError(Exception):
    """A subgraph could not be asked or answered badly; the message says which (for its
    administrators: it may name addresses and repeat the subgraph's own error).
    ``public`` says the same without details, for the hub's callers."""

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True)
class HeaderAuth:
    """A static header sent with every request (its value is a secret)."""

    name: str
    value: str


@dataclass(frozen=True)
class ClientCredentials:
    """OAuth 2.0 client credentials against the subgraph's own authorization server."""

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    method: str = "client_secret_basic"  # or client_secret_post


Auth = HeaderAuth | ClientCredentials | None


class SubgraphClient:
    """One subgraph's client: keeps its connections and (OAuth) its token between calls.

    ``dial`` opens the connections the requests go through (the hub's SSRF-checked one,
    :func:`hub.netguard.guarded_dial`); ``token_transport`` is the httpx transport authlib
    fetches OAuth tokens through (also checked), needed with :class:`ClientCredentials`
    only."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        dial: Dial,
        token_transport: httpx.AsyncBaseTransport | None = None,
        auth: Auth = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._http = Http1Client(url, dial, limit_bytes=MAX_BODY)
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if isinstance(auth, HeaderAuth):
            self._headers[auth.name] = auth.value
        self._oauth: AsyncOAuth2Client | None = None
        self._token_lock = asyncio.Lock()
        if isinstance(auth, ClientCredentials):
            if token_transport is None:
                raise ValueError("client credentials need a token transport")
            self._oauth = AsyncOAuth2Client(
                client_id=auth.client_id,
                client_secret=auth.client_secret,
                token_endpoint_auth_method=auth.method,
                scope=auth.scope,
                token_endpoint=auth.token_url,
                grant_type="client_credentials",
                transport=token_transport,
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(timeout),
                headers={"User-Agent": USER_AGENT},
            )

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._oauth is not None:
            await self._oauth.aclose()

    async def sdl(self) -> str:
        """The subgraph's SDL (``_service { sdl }``)."""
        data = await self.query(SDL_QUERY)
        service = data.get("_service")
        sdl = service.get("sdl") if isinstance(service, dict) else None
        if not isinstance(sdl, str) or not sdl.strip():
            raise SubgraphError("the subgraph answered _service without an SDL")
        return sdl

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """``data`` of one GraphQL request; any error in the answer is a
        :class:`SubgraphError` naming the first one."""
        body = await self._post(orjson.dumps({"query": document, "variables": variables or {}}))
        errors = body.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) and errors else errors
            message = first.get("message") if isinstance(first, dict) else first
            raise SubgraphError(
                f"the subgraph answered with an error: {str(message)[:300]}",
                "the subgraph answered with an error",
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise SubgraphError("the subgraph answered without data")
        return data

    async def _bearer(self) -> dict[str, str] | None:
        """The ``Authorization`` header of an OAuth client: a token fetched on first use
        and again once it has expired (one fetch at a time)."""
        oauth = self._oauth
        if oauth is None:
            return None
        token = oauth.token
        if not token or token.is_expired():
            async with self._token_lock:
                token = oauth.token
                if not token or token.is_expired():
                    token = await oauth.fetch_token(grant_type="client_credentials")
        return {"Authorization": f"Bearer {token['access_token']}"}

    async def _post(self, content: bytes) -> dict[str, Any]:
        try:
            bearer = await self._bearer()
            headers = self._headers if bearer is None else {**self._headers, **bearer}
            async with asyncio.timeout(self.timeout):
                answer = await self._http.post(content, headers)
        except TimeoutError:
            raise SubgraphError(f"the subgraph did not answer within {self.timeout:g} s") from None
        except BodyTooLargeError:
            limit = self._http.limit_bytes
            raise SubgraphError(f"the subgraph's answer is over {limit} bytes") from None
        except ValueError as error:  # a header value with a line break (Http1Client)
            raise SubgraphError(
                f"the request to the subgraph cannot be sent: {error}",
                "the hub's request to the subgraph is misconfigured",
            ) from None
        except (HttpError, OSError, httpx.HTTPError) as error:
            raise SubgraphError(
                f"the subgraph cannot be reached: {_reason(error)}",
                "the subgraph cannot be reached",
            ) from None
        except OAuthError as error:
            raise SubgraphError(
                f"the subgraph's authorization server refused the client: {error.error}",
                "the hub could not authenticate to the subgraph",
            ) from None
        if answer.status != 200:
            raise SubgraphError(f"the subgraph answered HTTP {answer.status}")
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise SubgraphError("the subgraph's answer is not JSON") from None
        if not isinstance(body, dict):
            raise SubgraphError("the subgraph's answer is not a JSON object")
        return body


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text[:300] if text else type(error).__name__


__all__ = [
    "Auth",
    "ClientCredentials",
    "HeaderAuth",
    "SubgraphClient",
    "SubgraphError",
]
