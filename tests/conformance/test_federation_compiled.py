"""Remote fields on the compiled read path (``schema/compiled``) answer exactly as the
resolver path does: the same queries, selecting ``loyaltyTier`` and ``loyalty`` of the
Node loyalty subgraph (``loyalty_subgraph.mjs``) at the root page, below feedback, by
``node``/``nodes``/``customer``, masked for a partner (audited), withheld on the rows a
row condition leaves out, and with the subgraph stopped, go to an app with compiled reads
and to one without. Status, data, errors, extensions, the read audit's disclosures and the
number of ``_entities`` requests the subgraph receives (one per level) must be equal, and
the compiled app must have answered every one of them from the compiled path (its
``hub_graphql_read_paths_total`` metric).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import create_app
from hub.db import Database
from hub.federation.state import Federation, federation
from hub.runtime import Runtime
from policies.masks import REDACTED
from schema import compiled as compiled_package
from schema.audit import extension as audit_extension
from schema.compiled import CompiledReads
from schema.compiled.plan import Unsupported
from tests.conformance.conftest import NodeTools
from tests.conformance.loyalty import LoyaltyService, loyalty_service, tier_of
from tests.conformance.test_federation_remote import (
    SALES_LOYALTY,
    Hub,
    _entity_requests_since,
    policy,
    publish,
    register,
)
from tests.conformance.test_federation_remote import pytestmark as _marks
from tests.conftest import Caller, make_caller, make_settings, token_for
from tests.hub.factories import assign, make_customers, make_feedback

pytestmark = _marks
compiled_execute = importlib.import_module("schema.compiled.execute")

CUSTOMERS = 24

# Sales sees ``loyalty`` everywhere, ``loyaltyTier`` only on the customers who opted in
# to marketing (a second rule with a row condition): withheld on the others.
OPTED_IN_TIER = """
  - name: sales-loyalty-tier-opted-in
    subjects: [{kind: department, role: sales}]
    resource: Customer
    rows: {consent_marketing_opt_in: {eq: true}}
    read: {visible: [id, loyaltyTier]}
"""


def differential_policy() -> str:
    """The federation tests' policy (loyalty fields for sales, ``loyaltyTier`` masked for
    distributors), sales' ``loyaltyTier`` moved to the row-conditional rule."""
    source = policy(distributor_mask=True)
    assert SALES_LOYALTY in source
    source = source.replace(SALES_LOYALTY, SALES_LOYALTY.replace("loyaltyTier, ", ""), 1)
    rules, _, expect = source.partition("\nexpect:")
    return f"{rules.rstrip()}\n{OPTED_IN_TIER}\nexpect:{expect}"


@dataclass
class Pair:
    compiled: httpx.AsyncClient
    resolvers: httpx.AsyncClient
    runtimes: tuple[Runtime, Runtime]
    apps: tuple[Starlette, Starlette]
    sales: Caller
    distributor: Caller
    customers: list[str]
    postgresql: bool


@pytest.fixture
async def pair(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Pair]:
    """Two apps on one database, compiled reads on and off."""
    monkeypatch.setenv("HUB_FEDERATION_ALLOW_LOOPBACK", "true")
    sales = await make_caller(db, "department", attributes={"roles": ["sales"]})
    distributor = await make_caller(db, "distributor", slug="acme-distribution")
    customers = await make_customers(
        db,
        [
            {
                "name": f"C{i:02d}",
                "consent_share_with_partners": True,
                "consent_marketing_opt_in": i % 2 == 0,
                "email": f"c{i}@x.test",
            }
            for i in range(CUSTOMERS)
        ],
    )
    for customer in customers[:8]:
        await assign(db, customer, distributor.org)
        await make_feedback(db, customer, sales.org, visibility="partners")
    apps = [
        create_app(make_settings(database_url, policy_refresh_interval=3600, compiled_reads=on))
        for on in (True, False)
    ]
    try:
        async with contextlib.AsyncExitStack() as stack:
            http: list[httpx.AsyncClient] = []
            for application in apps:
                await stack.enter_async_context(application.router.lifespan_context(application))
                transport = httpx.ASGITransport(app=application)
                http.append(
                    await stack.enter_async_context(
                        httpx.AsyncClient(transport=transport, base_url="http://hub.test")
                    )
                )
            for caller in (sales, distributor):
                caller.token = await token_for(http[0], caller)
            yield Pair(
                http[0],
                http[1],
                (apps[0].state.runtime, apps[1].state.runtime),
                (apps[0], apps[1]),
                sales,
                distributor,
                [str(c.id) for c in customers],
                database_url.startswith("postgresql"),
            )
    finally:
        old, federation.current = federation.current, Federation()
        await old.aclose()


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What each request handed to the read audit's writer, and why the compiled path
    fell back (if it did)."""
    seen: dict[str, list[Any]] = {"reads": [], "fallbacks": [], "sql": []}
    original = audit_extension.submit_reads
    run_sql = compiled_execute.execute_sql

    async def execute_sql(*args: Any) -> Any:
        try:
            answer = await run_sql(*args)
        except Unsupported as why:
            seen["sql"].append(str(why))
            raise
        seen["sql"].append("sql")
        return answer

    async def submit_reads(context: Any, reads: Any) -> None:
        seen["reads"].append(dict(reads.entry().details))
        await original(context, reads)

    def fallback(context: Any, why: str) -> None:
        del context
        seen["fallbacks"].append(why)

    monkeypatch.setattr(compiled_execute, "execute_sql", execute_sql)
    monkeypatch.setattr(audit_extension, "submit_reads", submit_reads)
    monkeypatch.setattr(compiled_package, "submit_reads", submit_reads)
    monkeypatch.setattr(CompiledReads, "_fallback", staticmethod(fallback))
    return seen


async def _setup(pair: Pair, url: str) -> None:
    hub = Hub(pair.compiled, pair.runtimes[0], pair.apps[0], pair.sales, pair.distributor)
    result = await register(hub, "loyalty", url)
    assert result.accepted, result.problems
    await publish(hub, differential_policy())
    await pair.runtimes[1].reload_policy()


def _paths(metrics: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for path in ("compiled", "resolvers"):
        line = f'hub_graphql_read_paths_total{{path="{path}"}}'
        rows = [row for row in metrics.splitlines() if row.startswith(line)]
        found[path] = float(rows[0].split()[-1]) if rows else 0.0
    return found


async def _both(
    pair: Pair,
    observed: dict[str, list[Any]],
    caller: Caller,
    query: str,
    variables: dict[str, Any] | None = None,
    service: LoyaltyService | None = None,
) -> dict[str, Any]:
    """Ask both apps; assert they answer alike, with the same disclosures and requests to
    the subgraph, the compiled one from the compiled path. The compiled answer."""
    answers: list[tuple[int, dict[str, Any]]] = []
    disclosed: list[list[Any]] = []
    requests: list[list[dict[str, Any]]] = []
    for http in (pair.compiled, pair.resolvers):
        before_paths = _paths((await http.get("/metrics")).text)
        before_reads = len(observed["reads"])
        before_sql = len(observed["sql"])
        before_requests = len(await service.received()) if service is not None else 0
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {caller.token}"},
        )
        answers.append((response.status_code, response.json()))
        disclosed.append(observed["reads"][before_reads:])
        if service is not None:
            requests.append(await _entity_requests_since(service, before_requests))
        after_paths = _paths((await http.get("/metrics")).text)
        if http is pair.compiled:
            assert observed["fallbacks"] == [], (observed["fallbacks"], answers)
            assert after_paths["compiled"] == before_paths["compiled"] + 1, query
            # On PostgreSQL, from the SQL statements (not the records' fallback).
            ran_sql = observed["sql"][before_sql:]
            assert ran_sql == (["sql"] if pair.postgresql else []), ran_sql
    assert answers[0] == answers[1], query
    assert disclosed[0] == disclosed[1], query
    if service is not None:
        # The same requests: one per level, the same entities and fields.
        assert len(requests[0]) == len(requests[1]), query
        for ours, theirs in zip(*requests, strict=True):
            assert _sent(ours) == _sent(theirs), query
    status, body = answers[0]
    assert status == 200
    return body


def _sent(request: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The entities an ``_entities`` request names and the fields it asks, whatever the
    aliases."""
    ids = frozenset(r["id"] for reps in request["variables"].values() for r in reps)
    asked = ("loyaltyTier", "loyalty", "loyaltyPoints", "tier", "points", "__typename")
    return ids, frozenset(f for f in asked if f in request["query"])


PAGE = """
query Page($first: Int) {
  customers(first: $first) {
    edges { cursor node {
      id name segment loyaltyTier ...Loyal
      feedback(first: 2) { edges { node { kind customer { name tier: loyaltyTier } } } }
    } }
  }
}
fragment Loyal on Customer { loyalty { __typename tier points } }
"""


async def test_remote_fields_on_the_compiled_path_answer_as_the_resolvers_do(
    pair: Pair, loyalty: LoyaltyService, observed: dict[str, list[Any]]
) -> None:
    await _setup(pair, loyalty.url)
    sales, distributor = pair.sales, pair.distributor

    # The root page and one level below, withheld on the rows the tier rule leaves out.
    body = await _both(pair, observed, sales, PAGE, {"first": CUSTOMERS}, loyalty)
    nodes = [e["node"] for e in body["data"]["customers"]["edges"]]
    assert len(nodes) == CUSTOMERS
    shown = [n for n in nodes if n["loyaltyTier"] is not None]
    assert 0 < len(shown) < CUSTOMERS
    assert all(n["loyaltyTier"] == tier_of(n["id"]) for n in shown)
    assert all(n["loyalty"]["tier"] == tier_of(n["id"]) for n in nodes)
    withheld = body["extensions"]["withheld"]
    assert {tuple(p) for p in withheld if len(p) == 5} == {
        ("customers", "edges", i, "node", "loyaltyTier")
        for i, n in enumerate(nodes)
        if n["loyaltyTier"] is None
    }

    # Partner: the tier masked, the read audited with it; nested below feedback too.
    body = await _both(
        pair,
        observed,
        distributor,
        "{ customers { totalCount edges { node { id loyaltyTier feedback { edges { node {"
        " customer { id loyaltyTier } } } } } } } }",
        service=loyalty,
    )
    tiers = {e["node"]["loyaltyTier"] for e in body["data"]["customers"]["edges"]}
    assert tiers == {REDACTED}
    assert observed["reads"], "the partner's reads are audited"

    # One record by id, by node, by nodes (alias, @include, a variable).
    first, second = nodes[0]["id"], nodes[1]["id"]
    for caller in (sales, distributor):
        await _both(
            pair,
            observed,
            caller,
            "query ($id: ID!, $more: Boolean!) { customer(id: $id) { name loyaltyTier }"
            " node(id: $id) { ... on Customer { t: loyaltyTier } }"
            " again: node(id: $id) { id ... on Customer { loyaltyTier @include(if: $more) } } }",
            {"id": first, "more": True},
            loyalty,
        )
        await _both(
            pair,
            observed,
            caller,
            "query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Customer { loyaltyTier } } }",
            {"ids": [first, second]},
            loyalty,
        )


async def test_with_the_subgraph_down_both_paths_answer_the_same_errors(
    pair: Pair, node_tools: NodeTools, observed: dict[str, list[Any]]
) -> None:
    async with loyalty_service(node_tools) as service:
        await _setup(pair, service.url)
    # Stopped now.
    body = await _both(pair, observed, pair.sales, PAGE, {"first": 6})
    assert body["errors"] and {e["extensions"]["code"] for e in body["errors"]} == {
        "SUBGRAPH_UNAVAILABLE"
    }
    assert all(e["node"]["name"] for e in body["data"]["customers"]["edges"])
    body = await _both(
        pair,
        observed,
        pair.distributor,
        "{ customers { edges { node { name loyaltyTier } } } }",
    )
    assert len(body["errors"]) == 8


@pytest.fixture(scope="module")
async def loyalty(node_tools: NodeTools) -> AsyncIterator[LoyaltyService]:
    async with loyalty_service(node_tools) as service:
        yield service
