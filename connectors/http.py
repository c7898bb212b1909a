"""HTTP/JSON APIs: records pulled page by page, with next-link, cursor or page-number
pagination, a static header or OAuth 2.0 client credentials, and retries.

Configuration (``config`` of an ``http`` connector; secrets live in its credentials)::

    url: https://desk.example.com/api/v2/tickets
    params: {status: solved}             # query parameters of the first request
    headers: {Accept: application/json}  # static, not secret
    records: data                        # where the page's records are (dotted path;
                                         # default: the body itself, a JSON array)
    pagination:
      type: next_link                    # next_link, cursor, page or none
      next: links.next                   # next_link: dotted path, or "header" (Link rel=next)
    # pagination: {type: cursor, cursor: meta.next_cursor, param: cursor}
    # pagination: {type: page, param: page, start: 1, size_param: per_page, size: 100}
    auth: {type: header, header: Authorization}         # credentials: {token: "Bearer ..."}
    # auth: {type: oauth2, token_url: https://desk.example.com/oauth/token,
    #        method: private_key_jwt, scope: tickets.read}
    #        credentials: {client_id: ..., client_secret: ...} or {client_id: ..., private_key: PEM}
    retry: {attempts: 5, backoff: 1.0, max_delay: 60}
    timeout: 30

**Checkpoint.** A record's cursor is the page it came from (the next link, the API's
cursor or the page number) and how many of that page's records come before it, so a run
killed mid-page resumes by fetching that page again and skipping what was stored. After
the last record of the last page, the cursor stays on that page: the next run fetches it
again and reads only what was added since (or follows a next link that appeared).

**Retries.** 408, 425, 429 and 5xx answers, timeouts and failed connections are retried
with exponential backoff and jitter, honouring ``Retry-After`` (seconds or an HTTP date),
up to ``retry.attempts`` times; a wait longer than ``retry.max_delay`` is not slept here
but reported as a :class:`~connectors.base.TransientSourceError` (the runtime retries the
run later). Other answers (401, 403, 404, a redirect, a body that is not JSON) end the
run: :class:`~connectors.base.SourceError`.

**Where it may connect.** The source connects through the ``httpx`` transport its
runtime hands it (:meth:`HttpSource.with_transport`); the hub's checks every address it
connects to (``hub.netguard``), the token endpoint's included. Redirects are never
followed, and a next link to another origin than ``url`` ends the run: the credentials
go only where the definition says.

OAuth 2.0 tokens are fetched and refreshed by authlib's ``AsyncOAuth2Client`` (client
credentials grant; ``client_secret_basic``, ``client_secret_post`` or ``private_key_jwt``
per RFC 7523 §2.2, the assertion's ``aud`` being ``audience``, default the token URL).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

from connectors._http_config import HttpConfig, Pagination
from connectors.base import Record, Source, SourceError, TransientSourceError, unstorable
from connectors.mapping import lookup
from connectors.outbound import retry_after

with warnings.catch_warnings():
    # authlib prefers the `httpx2` fork and warns when it falls back to httpx; the hub's
    # transports (hub.netguard) are httpx transports, so httpx it is. (Importing
    # authlib.deprecate first: it installs an "always" filter that would win otherwise.)
    warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

RETRIED = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "PartnerHub-Sync/1"
MAX_BODY = 32 * 1024 * 1024
"""Bytes of one page's body read at most: a larger answer ends the run."""


def _shown(item: Any) -> str:
    """An item's JSON for its dead letter, cut to 2,000 characters: ``ensure_ascii``
    keeps a lone surrogate as its escape; an item too deep even to write is not shown."""
    try:
        shown = json.dumps(item, ensure_ascii=False)
        if unstorable(shown) is not None:
            shown = json.dumps(item)
    except RecursionError:
        return "(nested too deep to show)"
    return shown[:2000]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


@dataclass(frozen=True)
class _Page:
    """Where a page is: the next link, the API's cursor or the page number (``None``: the
    first page), and how many of its records were stored already."""

    ref: str | int | None
    skip: int = 0

    @classmethod
    def parse(cls, text: str | None) -> _Page:
        if text is None:
            return cls(None)
        try:
            value = json.loads(text)
            ref, skip = value["page"], value["skip"]
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"the checkpoint {text!r} is not an http connector's") from None
        if not isinstance(ref, str | int | None) or not isinstance(skip, int):
            raise SourceError(f"the checkpoint {text!r} is not an http connector's")
        return cls(ref, skip)

    def text(self) -> str:
        return json.dumps({"page": self.ref, "skip": self.skip}, separators=(",", ":"))


Sleep = Callable[[float], Awaitable[None]]


class HttpSource:
    """Records of a paginated JSON API after a checkpoint.

    Example::

        source = HttpSource.from_config({"url": "https://api.example.com/items",
                                         "records": "items",
                                         "pagination": {"type": "next_link", "next": "next"}})
        async for record in source.with_transport(httpx.AsyncHTTPTransport()).read(None):
            ...
    """

    def __init__(
        self,
        config: HttpConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.transport = transport
        self.sleep = sleep
        self.rng = rng or random.Random()  # jitter, not a secret

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], credentials: Mapping[str, str] | None = None
    ) -> HttpSource:
        return cls(HttpConfig.parse(config, credentials))

    def with_transport(self, transport: httpx.AsyncBaseTransport) -> Source:
        """This source connecting through ``transport`` (the runtime's, which decides
        which addresses may be reached)."""
        return HttpSource(self.config, transport, sleep=self.sleep, rng=self.rng)

    def _client(self) -> httpx.AsyncClient:
        if self.transport is None:
            # Deny by default: without its runtime's transport nothing checks where the
            # source connects.
            raise SourceError("an http source needs the transport of its runtime to connect")
        auth = self.config.auth
        options: dict[str, Any] = {
            "transport": self.transport,
            "follow_redirects": False,
            "trust_env": False,
            "timeout": httpx.Timeout(self.config.timeout),
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"}
            | self.config.headers,
        }
        if auth.type != "oauth2":
            if auth.type == "header":
                options["headers"][auth.header] = auth.value
            return httpx.AsyncClient(**options)
        secret: Any = auth.private_key if auth.method == "private_key_jwt" else auth.secret
        oauth = AsyncOAuth2Client(
            client_id=auth.client_id,
            client_secret=secret,
            token_endpoint_auth_method=auth.method,
            scope=auth.scope,
            token_endpoint=auth.token_url,
            grant_type="client_credentials",
            **options,
        )
        if auth.method == "private_key_jwt":
            # authlib signs a new assertion (fresh jti) for each token request; its
            # "token_endpoint" argument is only the assertion's audience. No `claims`:
            # authlib stores its jti in that dict and would send the same one again.
            method = PrivateKeyJWT(auth.audience or auth.token_url, alg=auth.alg)
            oauth.register_client_auth_method(method)
        client: httpx.AsyncClient = oauth
        return client

    async def read(self, cursor: str | None) -> AsyncIterator[Record]:
        page = _Page.parse(cursor)
        async with self._client() as client:
            if isinstance(client, AsyncOAuth2Client):
                token = await self._retried(
                    "the token endpoint",
                    lambda: client.fetch_token(grant_type="client_credentials"),
                )
                if not isinstance(token, Mapping) or not token.get("access_token"):
                    raise SourceError("the token endpoint answered without an access token")
            seen: set[str | int | None] = set()
            while True:
                if page.ref in seen:
                    raise SourceError(f"the API's pagination loops (page {page.ref!r} again)")
                seen.add(page.ref)
                url, params = self._request(page.ref)
                response = await self._retried(
                    url, functools.partial(self._get, client, url, params)
                )
                items, following = self._parse(response, page.ref)
                label = self._label(page.ref)
                for index in range(page.skip, len(items)):
                    item = items[index]
                    last = index == len(items) - 1
                    after = (
                        _Page(following, 0)
                        if last and following is not None
                        else _Page(page.ref, index + 1)
                    )
                    position = f"{label} item {index + 1}"[:300]
                    # The stdlib's parser lets lone surrogates and any nesting through:
                    # such an item could be neither stored nor kept as a dead letter (its
                    # raw JSON, written by orjson), and failed the whole run.
                    problem = (
                        unstorable(item) if isinstance(item, Mapping) else "is not a JSON object"
                    )
                    if problem is None:
                        yield Record(item, position, after.text())
                    else:
                        raw = _shown(item)
                        yield Record({"raw": raw}, position, after.text(), f"{position} {problem}")
                if following is None:
                    return
                page = _Page(following, 0)

    def _request(self, ref: str | int | None) -> tuple[str, dict[str, str]]:
        config, pagination = self.config, self.config.pagination
        if pagination.type == "next_link" and isinstance(ref, str):
            return ref, {}  # a next link carries its own query
        params = dict(config.params)
        if pagination.type == "cursor" and ref is not None:
            params[pagination.param] = str(ref)
        if pagination.type == "page":
            params[pagination.param] = str(pagination.start if ref is None else ref)
            if pagination.size_param is not None:
                params[pagination.size_param] = str(pagination.size)
        return config.url, params

    def _label(self, ref: str | int | None) -> str:
        kind = self.config.pagination.type
        if ref is None:
            return f"page {self.config.pagination.start}" if kind == "page" else "first page"
        if kind == "page":
            return f"page {ref}"
        if kind == "cursor":
            return f"page after cursor {ref}"
        parts = urlsplit(str(ref))
        return f"page {parts.path}{'?' + parts.query if parts.query else ''}"

    async def _get(
        self, client: httpx.AsyncClient, url: str, params: dict[str, str]
    ) -> httpx.Response:
        # No params at all for a next link: httpx would replace the link's own query.
        async with client.stream("GET", url, params=params or None) as response:
            if not 200 <= response.status_code < 300:
                return response  # its status and headers decide; the body is not read
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_BODY:
                    raise SourceError(f"{url}: the answer is larger than {MAX_BODY} bytes")
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=bytes(body),
            request=response.request,
        )

    async def _retried(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()``, retried on transient failures (:data:`RETRIED` statuses, timeouts,
        connections that failed) with backoff and jitter, honouring ``Retry-After``."""
        retry = self.config.retry
        attempt = 0
        while True:
            wait: float | None = None
            try:
                result = await call()
            except OAuthError as error:
                raise SourceError(
                    f"the token endpoint refused the client: {error.error}"
                    + (f" ({error.description})" if error.description else "")
                ) from None
            except httpx.HTTPStatusError as error:  # authlib: the token endpoint's non-JSON
                status = error.response.status_code
                problem = f"{what}: HTTP {status}"
                if status not in RETRIED:
                    raise SourceError(problem + _why(status)) from None
                wait = retry_after(error.response.headers.get("Retry-After"))
            except ValueError:  # authlib: a token answer that is not a JSON object
                raise SourceError(f"{what}: the answer is not a JSON object") from None
            except (httpx.TimeoutException, httpx.TransportError) as error:
                problem = f"{what}: {type(error).__name__}: {str(error)[:200]}".rstrip(": ")
            else:
                if not isinstance(result, httpx.Response) or 200 <= result.status_code < 300:
                    return result
                status = result.status_code
                problem = f"{what}: HTTP {status}"
                if status not in RETRIED:
                    raise SourceError(problem + _why(status)) from None
                wait = retry_after(result.headers.get("Retry-After"))
            attempt += 1
            if attempt > retry.attempts:
                raise TransientSourceError(f"{problem} ({retry.attempts} retries)")
            if wait is not None and wait > retry.max_delay:
                raise TransientSourceError(f"{problem}; asked to wait {wait:.0f} s")
            await self.sleep(wait if wait is not None else retry.delay(attempt, self.rng))

    def _parse(
        self, response: httpx.Response, ref: str | int | None
    ) -> tuple[list[Any], str | int | None]:
        """The page's records and where the next page is (``None``: this is the last)."""
        url = str(response.request.url)
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, an integer too long, too deep
            raise SourceError(f"{url}: the answer is not JSON") from None
        path = self.config.records
        items = body if path is None else lookup(body, path) if isinstance(body, dict) else None
        if not isinstance(items, list):
            where = "the body" if path is None else f"{path!r}"
            raise SourceError(f"{url}: {where} is not a list of records")
        pagination = self.config.pagination
        if pagination.type == "next_link":
            link = (
                response.links.get("next", {}).get("url")
                if pagination.next == "header"
                else lookup(body, pagination.next)
                if isinstance(body, dict)
                else None
            )
            if not isinstance(link, str) or not link.strip():
                return items, None
            following = urljoin(url, link.strip())
            if _origin(following) != _origin(self.config.url):
                raise SourceError(f"{url}: the next link leads to another origin ({following})")
            return items, following
        if pagination.type == "cursor":
            value = lookup(body, pagination.cursor) if isinstance(body, dict) else None
            if not items or value is None or value == "" or isinstance(value, bool | dict | list):
                return items, None
            if str(value) == ref:  # the API answers with the cursor it was sent: the end
                return items, None
            return items, str(value)
        if pagination.type == "page":
            number = pagination.start if ref is None else int(ref)
            if not items or (pagination.size is not None and len(items) < pagination.size):
                return items, None
            return items, number + 1
        return items, None


def _why(status: int) -> str:
    if status in (401, 403):
        return " (the API refused the credentials)"
    if 300 <= status < 400:
        return " (redirects are not followed: put the final URL in the definition)"
    return ""


__all__ = ["HttpConfig", "HttpSource", "Pagination"]
