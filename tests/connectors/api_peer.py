"""A real JSON API on 127.0.0.1 for the ``http`` connector's tests: a Starlette app
served by uvicorn in a thread of its own.

It pages a list of tickets three ways (``/links``: a next link in the body,
``/links-header``: an RFC 8288 ``Link`` header, ``/cursor``: an opaque cursor,
``/pages``: page numbers), answers with the failures a test scripts (``failures``:
status and headers for the n-th API request, counted from 1), and is its own OAuth 2.0
authorization server: ``POST /oauth/token`` grants client credentials to a client that
authenticates with its secret (basic or post) or with a private_key_jwt assertion
(RFC 7523), verified here with joserfc (signature with the registered public key,
``iss`` = ``sub`` = the client, ``aud`` = the token URL, ``exp``, ``jti`` never seen
before). The API accepts only the tokens it issued (or the static header a test sets).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class ApiPeer:
    tickets: list[dict[str, Any]]
    page_size: int = 3
    client_id: str = "hub"
    client_secret: str = "s3cret-value"
    public_key: RSAKey | ECKey | None = None
    static_header: tuple[str, str] | None = None
    token_lifetime: int = 3600
    failures: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    port: int = 0
    api_requests: int = 0
    token_requests: int = 0
    auth_methods: list[str] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    used_jti: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/oauth/token"

    # -- the authorization server ------------------------------------------------------

    def _client_of(self, request: Request, form: dict[str, str]) -> str | None:
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            self.auth_methods.append("client_secret_basic")
            ok = (user, password) == (self.client_id, self.client_secret)
            return user if ok else None
        if "client_assertion" in form:
            self.auth_methods.append("private_key_jwt")
            return self._assertion(form)
        if "client_secret" in form:
            self.auth_methods.append("client_secret_post")
            ok = (form.get("client_id"), form["client_secret"]) == (
                self.client_id,
                self.client_secret,
            )
            return form.get("client_id") if ok else None
        return None

    def _assertion(self, form: dict[str, str]) -> str | None:
        if form.get("client_assertion_type") != ASSERTION_TYPE or self.public_key is None:
            return None
        try:
            token = jwt.decode(
                form["client_assertion"], self.public_key, algorithms=["RS256", "ES256"]
            )
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.client_id},
                sub={"essential": True, "value": self.client_id},
                aud={"essential": True, "value": self.token_url},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except JoseError:
            return None
        if token.claims["jti"] in self.used_jti:  # RFC 7523 §3: replay refused
            return None
        self.used_jti.add(token.claims["jti"])
        return str(token.claims["iss"])

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if self._client_of(request, form) != self.client_id:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = secrets.token_urlsafe(16)
        self.issued.add(value)
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    # -- the API ----------------------------------------------------------------------

    def _refused(self, request: Request) -> Response | None:
        self.api_requests += 1
        self.requests.append(str(request.url.path) + "?" + str(request.url.query))
        scripted = self.failures.get(self.api_requests)
        if scripted is not None:
            status, headers = scripted
            return JSONResponse({"error": "scripted"}, status_code=status, headers=headers)
        if self.static_header is not None:
            name, value = self.static_header
            ok = request.headers.get(name) == value
        else:
            bearer = request.headers.get("authorization", "")
            ok = bearer.startswith("Bearer ") and bearer[7:] in self.issued
        return None if ok else JSONResponse({"error": "unauthorized"}, status_code=401)

    def _slice(self, start: int) -> list[dict[str, Any]]:
        return self.tickets[start : start + self.page_size]

    async def links(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        start = int(request.query_params.get("from", "0"))
        after = start + self.page_size
        following = f"/links?from={after}" if after < len(self.tickets) else None
        return JSONResponse({"data": self._slice(start), "links": {"next": following}})

    async def links_header(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        start = int(request.query_params.get("from", "0"))
        after = start + self.page_size
        headers = {}
        if after < len(self.tickets):
            headers["Link"] = f'<{self.base}/links-header?from={after}>; rel="next"'
        return JSONResponse(self._slice(start), headers=headers)

    async def cursor(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        given = request.query_params.get("after")
        start = 0 if given is None else int(base64.b64decode(given)) + 1
        page = self._slice(start)
        # Like many feeds: the cursor of the last item, even on the last page.
        last = start + len(page) - 1 if page else start - 1
        cursor = base64.b64encode(str(last).encode()).decode() if last >= 0 else None
        return JSONResponse({"items": page, "meta": {"next_cursor": cursor}})

    async def pages(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        number = int(request.query_params.get("page", "1"))
        size = int(request.query_params.get("per_page", str(self.page_size)))
        return JSONResponse({"results": self.tickets[(number - 1) * size : number * size]})

    async def elsewhere(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        return JSONResponse({"data": self._slice(0), "next": "http://evil.test/steal"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/links", self.links),
                Route("/links-header", self.links_header),
                Route("/cursor", self.cursor),
                Route("/pages", self.pages),
                Route("/elsewhere", self.elsewhere),
            ]
        )


def tickets(count: int, customers: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "id": f"T-{n}",
            "requester": {"email": f"person{n % customers}@example.com"},
            "description": f"Ticket number {n}",
            "type": "question",
        }
        for n in range(1, count + 1)
    ]


@contextmanager
def serving(peer: ApiPeer) -> Iterator[ApiPeer]:
    """Serve ``peer`` on a free port of 127.0.0.1 until the block ends."""
    config = uvicorn.Config(
        peer.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API peer did not start")
        time.sleep(0.01)
    peer.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield peer
    finally:
        server.should_exit = True
        thread.join(10)
