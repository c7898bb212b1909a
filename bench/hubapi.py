"""The few hub calls the benchmark makes before loading it: tokens, ids, a captured page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

CUSTOMER_FIELDS = "id name company city region country segment lifecycleStage"
# (a) one customer by global id, as an operator.
CUSTOMER_QUERY = f"query Customer($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}"
# (b) a partner's page: 50 customers with their 5 latest feedback each; (d) sends the same
# query with the operator's token.
PAGE_SIZE = 50
PARTNER_PAGE_QUERY = (
    f"{{ customers(first: {PAGE_SIZE}) {{ edges {{ node {{ {CUSTOMER_FIELDS} "
    "feedback(first: 5) { edges { node { kind text createdAt } } } } } } }"
)
_IDS_QUERY = (
    "query Ids($after: String) { customers(first: 100, after: $after) "
    "{ pageInfo { hasNextPage endCursor } edges { node { id } } } }"
)


class HubCallError(Exception):
    """The hub answered a set-up call with an error."""


@dataclass(frozen=True)
class PageShape:
    """What a captured (b) or (d) reply holds."""

    bytes: int
    customers: int
    customers_with_feedback: int
    feedback: int


def page_shape(body: bytes) -> PageShape:
    """Count the customers and feedback in a reply to ``PARTNER_PAGE_QUERY``."""
    try:
        edges = json.loads(body)["data"]["customers"]["edges"]
        counts = [len(edge["node"]["feedback"]["edges"]) for edge in edges]
    except (ValueError, KeyError, TypeError) as error:
        raise HubCallError(f"not a customers page ({error!r}): {body[:300]!r}") from None
    return PageShape(len(body), len(counts), sum(1 for n in counts if n), sum(counts))


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
    """A synchronous client for the set-up calls (never used to measure)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
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
        self, token: str, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        response = self._http.post(
            "/graphql",
            content=request_body(query, variables),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        if response.status_code != 200 or "errors" in response.json():
            raise HubCallError(f"GraphQL {response.status_code}: {response.text[:300]}")
        return response

    def customer_ids(self, token: str, limit: int) -> list[str]:
        """Up to ``limit`` customer global ids, paging ``customers(first: 100)``."""
        ids: list[str] = []
        after: str | None = None
        while len(ids) < limit:
            page = self.graphql(token, _IDS_QUERY, {"after": after}).json()["data"]["customers"]
            ids.extend(edge["node"]["id"] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return ids[:limit]


def request_body(query: str, variables: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    return json.dumps(payload)
