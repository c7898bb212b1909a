"""The few calls the benchmark makes before loading a server: tokens, ids, captured pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from bench.queries import (
    HUB,
    PAGE_SIZE,
    Dialect,
    PageShape,
    ReplyError,
    customer_query,
    ids_query,
    nested_query,
    page_query,
)
from bench.queries import page_shape as _page_shape

__all__ = [
    "CUSTOMER_QUERY",
    "NESTED_QUERY",
    "PAGE_SIZE",
    "PARTNER_PAGE_QUERY",
    "Credential",
    "HubCallError",
    "HubClient",
    "PageShape",
    "credentials",
    "page_shape",
    "request_body",
]

# (a) one customer by global id, as an operator.
CUSTOMER_QUERY = customer_query(HUB)
# (b) a partner's page: 50 customers with their 5 latest feedback each; (d) sends the same
# query with the operator's token.
PARTNER_PAGE_QUERY = page_query(HUB)
# (e) three levels: 20 customers, their 5 latest feedback, each feedback's customer.
NESTED_QUERY = nested_query(HUB)


class HubCallError(Exception):
    """The hub (or a peer) answered a set-up call with an error."""


def page_shape(body: bytes, dialect: Dialect = HUB) -> PageShape:
    """Count the customers and feedback in a reply to a page query."""
    try:
        return _page_shape(body, dialect)
    except ReplyError as error:
        raise HubCallError(str(error)) from None


@dataclass(frozen=True)
class Credential:
    org: str
    kind: str
    client_id: str
    client_secret: str


def credentials(rows: list[dict[str, Any]], kind: str) -> Credential:
    """The first client of an organization of ``kind`` in ``hub demo``'s credentials file."""
    for row in rows:
        if row["kind"] == kind:
            return Credential(row["org"], row["kind"], row["client_id"], row["client_secret"])
    raise HubCallError(f"the demo credentials have no {kind} client")


class HubClient:
    """A synchronous client for the set-up calls (never used to measure); ``dialect``
    names the fields of the server's schema (the hub's, or a peer's)."""

    def __init__(self, base_url: str, dialect: Dialect = HUB) -> None:
        self.base_url = base_url
        self.dialect = dialect
        self._http = httpx.Client(base_url=base_url, timeout=60.0, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def token(self, credential: Credential) -> str:
        response = self._http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(credential.client_id, credential.client_secret),
        )
        if response.status_code != 200:
            raise HubCallError(f"token for {credential.org}: {response.text[:300]}")
        token: str = response.json()["access_token"]
        return token

    def graphql(
        self, token: str | None, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self._http.post(
            "/graphql", content=request_body(query, variables), headers=headers
        )
        if response.status_code != 200 or "errors" in response.json():
            raise HubCallError(f"GraphQL {response.status_code}: {response.text[:300]}")
        return response

    def customer_ids(self, token: str | None, limit: int) -> list[str]:
        """Up to ``limit`` customer global ids in the page order, paging by 100."""
        ids: list[str] = []
        after: str | None = None
        query, d = ids_query(self.dialect, 100, after=True), self.dialect
        while len(ids) < limit:
            page = self.graphql(token, query, {"after": after}).json()["data"][d.customers]
            ids.extend(edge["node"][d.id] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return ids[:limit]


def request_body(query: str, variables: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    return json.dumps(payload)
