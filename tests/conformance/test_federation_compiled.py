"""Remote fields on the compiled read path (``schema/compiled``) answer exactly as the
resolver path does: the same queries, selecting ``loyaltyTier`` and ``loyalty`` of the
Node loyalty subgraph (``loyalty_subgraph.mjs``) at the root page, below feedback, by
``node``/``nodes``/``customer``, masked for a partner (audited), withheld on the rows a
row condition leaves out, and with the subgraph stopped, go to an app with compiled reads
and to one without. Status, data, errors, extensions, the read audit's disclosures and the
number of ``_entities`` requests the subgraph receives (one per level) must be equal, and
the compiled app must have answered every one of them from the compiled path (its
``hub_graphql_read_paths_total`` metric). The same for the fields a second subgraph (the
service's ``support`` variant) adds to ``Feedback`` and ``Case``, with the compiled
path's requests counted: one per subgraph per level.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import create_app
from hub.db import Database
from hub.federation import store
from hub.federation.state import Federation, federation
from hub.models.case import Case
from hub.runtime import Runtime
from policies.masks import REDACTED
from schema import compiled as compiled_package
from schema.audit import extension as audit_extension
from schema.compiled import CompiledReads
from schema.compiled.plan import Unsupported
from schema.ids import to_global_id
from tests.conformance.conftest import NodeTools
from tests.conformance.loyalty import (
    LoyaltyService,
    loyalty_service,
    sentiment_of,
    sla_hours_of,
    tier_of,
    urgency_of,
)
from tests.conformance.test_federation_remote import (
    SALES_LOYALTY,
    Hub,
    _entity_requests_since,
    policy,
    publish,
    register,
)
from tests.conformance.test_federation_remote import pytestmark as _marks
from tests.conftest import Caller, gql, make_caller, make_settings, token_for
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
    sql: bool  # the compiled path answers from SQL statements on this database


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
                db.engine.dialect.name
                in getattr(compiled_execute, "SQL_DIALECTS", ("postgresql",)),
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
    more: tuple[LoyaltyService, ...] = (),
) -> dict[str, Any]:
    """Ask both apps; assert they answer alike, with the same disclosures and requests to
    the subgraph (and to those in ``more``), the compiled one from the compiled path. The
    compiled answer; ``observed["sent"]`` gets the number of ``_entities`` requests each
    service received from the compiled app.

    With ``more``, the resolver path may split a level in two (its batches close when
    the loop goes quiet, and a ``Feedback.customer`` waits for its loader): the same
    entities and fields must be asked, the compiled path in no more requests."""
    answers: list[tuple[int, dict[str, Any]]] = []
    disclosed: list[list[Any]] = []
    requests: list[list[dict[str, Any]]] = []
    services = ([] if service is None else [service]) + list(more)
    for http in (pair.compiled, pair.resolvers):
        before_paths = _paths((await http.get("/metrics")).text)
        before_reads = len(observed["reads"])
        before_sql = len(observed["sql"])
        before_requests = [len(await s.received()) for s in services]
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {caller.token}"},
        )
        answers.append((response.status_code, response.json()))
        disclosed.append(observed["reads"][before_reads:])
        if services:
            sent: list[dict[str, Any]] = []
            counts: list[int] = []
            for s, before in zip(services, before_requests, strict=True):
                received = await _entity_requests_since(s, before)
                sent += received
                counts.append(len(received))
            requests.append(sent)
            if http is pair.compiled:
                observed["sent"] = counts
        after_paths = _paths((await http.get("/metrics")).text)
        if http is pair.compiled:
            assert observed["fallbacks"] == [], (observed["fallbacks"], answers)
            assert after_paths["compiled"] == before_paths["compiled"] + 1, query
            # From the SQL statements where the dialect has them (not the records'
            # fallback).
            ran_sql = observed["sql"][before_sql:]
            assert ran_sql == (["sql"] if pair.sql else []), ran_sql
    if more:
        # Errors of the resolver path's separate batches come in the order the batches
        # fail (GraphQL leaves the order of errors open): compared in path order.
        answers = [(status, _errors_in_path_order(body)) for status, body in answers]
    assert answers[0] == answers[1], query
    assert disclosed[0] == disclosed[1], query
    if more:
        assert len(requests[0]) <= len(requests[1]), query
        assert _asked(requests[0]) == _asked(requests[1]), query
    elif services:
        # The same requests: one per level, the same entities and fields.
        assert len(requests[0]) == len(requests[1]), query
        for ours, theirs in zip(*requests, strict=True):
            assert _sent(ours) == _sent(theirs), query
    status, body = answers[0]
    assert status == 200
    return body


def _errors_in_path_order(body: dict[str, Any]) -> dict[str, Any]:
    if "errors" not in body:
        return body
    errors = sorted(body["errors"], key=lambda e: (json.dumps(e.get("path")), e["message"]))
    return {**body, "errors": errors}


def _asked(requests: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (entity, field) the requests ask, however they are grouped and aliased."""
    found: set[tuple[str, str]] = set()
    for request in requests:
        ids, fields = _sent(request)
        if len(request["variables"]) > 1:
            # Groups wanting different fields: read each group's own selection.
            for alias, reps in request["variables"].items():
                part = request["query"].split(f"(representations: ${alias})", 1)[1]
                part = part.split("_entities", 1)[0]
                found |= {(r["id"], f) for r in reps for f in _sent_fields(part)}
        else:
            found |= {(i, f) for i in ids for f in fields}
    return found


def _sent_fields(text: str) -> frozenset[str]:
    return frozenset(
        f
        for f in (
            *("loyaltyTier", "loyalty", "loyaltyPoints", "tier", "points", "__typename"),
            *("sentiment", "triage", "urgency", "slaHours"),
        )
        if f in text
    )


def _sent(request: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The entities an ``_entities`` request names and the fields it asks, whatever the
    aliases."""
    ids = frozenset(r["id"] for reps in request["variables"].values() for r in reps)
    return ids, _sent_fields(request["query"])


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


# --- remote fields of Feedback and Case (the support desk's subgraph) -------------------

PRODUCT = "Trailhead 2P Tent"

SUPPORT_RULES = """
  - name: support-desk-feedback
    subjects: [{kind: department, role: support}]
    resource: Feedback
    read: {visible: [id, sentiment, triage]}
  - name: support-desk-cases
    subjects: [{kind: department, role: support}]
    resource: Case
    read: {visible: [id, slaHours]}
  - name: suppliers-complaint-triage
    subjects: [{kind: supplier}]
    resource: Feedback
    rows:
      and:
        - product: {in: $subject.attributes.products}
        - customer.consent_share_with_partners: {eq: true}
        - kind: {eq: complaint}
    read: {visible: [id, triage]}
"""


def support_policy() -> str:
    """:func:`differential_policy` plus the support desk's fields: all of them for the
    support role; for suppliers ``sentiment`` masked, ``triage`` on complaints only
    (withheld on their other feedback), ``slaHours`` on their cases."""
    source = differential_policy()
    for old, new in (
        (
            "      masked: {customer_ref: pseudonym}\n\n  - name: suppliers-assigned-cases",
            "      masked: {customer_ref: pseudonym, sentiment: redact}\n\n"
            "  - name: suppliers-assigned-cases",
        ),
        (
            "                priority, status, version, created_at, updated_at]\n"
            "      masked: {customer_ref: pseudonym}\n    write:",
            "                priority, status, version, created_at, updated_at, slaHours]\n"
            "      masked: {customer_ref: pseudonym}\n    write:",
        ),
    ):
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    rules, _, expect = source.partition("\nexpect:")
    return f"{rules.rstrip()}\n{SUPPORT_RULES}\nexpect:{expect}"


@pytest.fixture(scope="module")
async def support(node_tools: NodeTools) -> AsyncIterator[LoyaltyService]:
    async with loyalty_service(node_tools, "support") as service:
        yield service


@dataclass
class Desk:
    """The support desk's callers and records on top of :class:`Pair`'s."""

    support: Caller  # a department with the sales and support roles
    supplier: Caller
    feedback: list[str]  # global ids: the supplier's product, complaints and praise
    cases: list[str]  # assigned to the supplier


async def _desk(db: Database, pair: Pair, loyalty_url: str, support_url: str) -> Desk:
    support = await make_caller(db, "department", attributes={"roles": ["sales", "support"]})
    supplier = await make_caller(db, "supplier", slug="alpine", attributes={"products": [PRODUCT]})
    customers = await make_customers(
        db, [{"name": f"D{i}", "consent_share_with_partners": True} for i in range(6)]
    )
    feedback, cases = [], []
    for i, customer in enumerate(customers):
        made = await make_feedback(
            db, customer, support.org, product=PRODUCT, kind="complaint" if i % 2 else "praise"
        )
        feedback.append(to_global_id("Feedback", made.id))
        case = Case(
            customer_id=customer.id,
            organization_id=supplier.org.id,
            opened_by_id=support.org.id,
            product=PRODUCT,
            subject=f"Zip {i}",
            description="The tent's zip broke.",
        )
        async with db.transaction() as session:
            session.add(case)
        cases.append(to_global_id("Case", case.id))
    hub = Hub(pair.compiled, pair.runtimes[0], pair.apps[0], pair.sales, pair.distributor)
    for name, url in (("loyalty", loyalty_url), ("desk", support_url)):
        result = await register(hub, name, url)
        assert result.accepted, result.problems
    await publish(hub, support_policy())
    await pair.runtimes[1].reload_policy()
    for caller in (support, supplier):
        caller.token = await token_for(pair.compiled, caller)
    return Desk(support, supplier, feedback, cases)


ROOT_LISTS = """
{
  feedback(first: 40) { edges { node {
    id kind sentiment triage { sentiment urgency }
    customer { id name loyaltyTier }
  } } }
  cases(first: 40) { edges { node { id slaHours customer { loyaltyTier } } } }
}
"""


async def test_remote_fields_of_feedback_and_cases_on_the_compiled_path(
    db: Database,
    pair: Pair,
    loyalty: LoyaltyService,
    support: LoyaltyService,
    observed: dict[str, list[Any]],
) -> None:
    desk = await _desk(db, pair, loyalty.url, support.url)
    services = (loyalty, support)

    # Root lists of feedback and cases (level 1: the desk), their customers (level 2:
    # loyalty): one request per subgraph per level, on each path (two apps: two each).
    body = await _both(pair, observed, desk.support, ROOT_LISTS, more=services)
    assert observed["sent"] == [1, 1]
    feedback = [e["node"] for e in body["data"]["feedback"]["edges"]]
    assert {f["id"] for f in feedback} >= set(desk.feedback)
    for item in feedback:
        assert item["sentiment"] == sentiment_of(item["id"])
        assert item["triage"] == {
            "sentiment": sentiment_of(item["id"]),
            "urgency": urgency_of(item["id"]),
        }
        assert item["customer"]["loyaltyTier"] in (None, tier_of(item["customer"]["id"]))
    assert any(item["customer"]["loyaltyTier"] for item in feedback)
    cases = [e["node"] for e in body["data"]["cases"]["edges"]]
    assert {c["id"] for c in cases} == set(desk.cases)
    assert all(c["slaHours"] == sla_hours_of(c["id"]) for c in cases)

    # Below customers (level 2), by id, by node, by nodes, through _entities.
    await _both(
        pair,
        observed,
        desk.support,
        "{ customers(first: 40) { edges { node { name loyaltyTier"
        " feedback(first: 3) { edges { node { kind sentiment } } }"
        " cases { edges { node { slaHours s: slaHours } } } } } } }",
        more=services,
    )
    assert observed["sent"] == [1, 1]
    first_feedback, first_case = desk.feedback[0], desk.cases[0]
    await _both(
        pair,
        observed,
        desk.support,
        "query ($f: ID!, $c: ID!, $ids: [ID!]!, $reps: [_Any!]!) {"
        " node(id: $f) { ... on Feedback { sentiment triage { urgency } } }"
        " case(id: $c) { slaHours }"
        " nodes(ids: $ids) { ... on Feedback { sentiment } ... on Case { slaHours } }"
        " _entities(representations: $reps) {"
        " ... on Feedback { triage { sentiment } } ... on Case { slaHours } } }",
        {
            "f": first_feedback,
            "c": first_case,
            "ids": [first_feedback, first_case],
            "reps": [
                {"__typename": "Feedback", "id": desk.feedback[1]},
                {"__typename": "Case", "id": desk.cases[1]},
            ],
        },
        more=services,
    )
    assert observed["sent"] == [0, 1]

    # A supplier: sentiment masked, triage withheld on its praise, audited.
    body = await _both(
        pair,
        observed,
        desk.supplier,
        "{ feedback { edges { node { id kind customerRef sentiment triage { sentiment } } } }"
        " cases { edges { node { id slaHours } } } }",
        more=services,
    )
    assert observed["sent"] == [0, 1]
    feedback = [e["node"] for e in body["data"]["feedback"]["edges"]]
    assert {f["id"] for f in feedback} == set(desk.feedback)
    assert {f["sentiment"] for f in feedback} == {REDACTED}
    assert all((f["triage"] is not None) == (f["kind"] == "COMPLAINT") for f in feedback)
    withheld = {tuple(p) for p in body["extensions"]["withheld"]}
    assert {p for p in withheld if p[-1] == "triage"} == {
        ("feedback", "edges", i, "node", "triage")
        for i, f in enumerate(feedback)
        if f["kind"] != "COMPLAINT"
    }
    cases = [e["node"] for e in body["data"]["cases"]["edges"]]
    assert {c["id"] for c in cases} == set(desk.cases)
    assert all(c["slaHours"] == sla_hours_of(c["id"]) for c in cases)
    disclosed = observed["reads"][-1]
    assert "sentiment" in json.dumps(disclosed) and "slaHours" in json.dumps(disclosed)


async def test_feedback_and_case_fields_with_their_subgraph_down(
    db: Database,
    pair: Pair,
    loyalty: LoyaltyService,
    node_tools: NodeTools,
    observed: dict[str, list[Any]],
) -> None:
    async with loyalty_service(node_tools, "support") as service:
        desk = await _desk(db, pair, loyalty.url, service.url)
    # Stopped now: the desk's fields fail, the loyalty tier and the local data stand.
    body = await _both(pair, observed, desk.support, ROOT_LISTS, service=loyalty)
    failed = {tuple(e["path"][-1:]) for e in body["errors"]}
    assert failed == {("sentiment",), ("triage",), ("slaHours",)}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"SUBGRAPH_UNAVAILABLE"}
    assert all(e["node"]["kind"] for e in body["data"]["feedback"]["edges"])
    assert any(e["node"]["customer"]["loyaltyTier"] for e in body["data"]["feedback"]["edges"])


async def test_the_hub_and_both_subgraphs_compose_with_apollo(
    db: Database,
    pair: Pair,
    loyalty: LoyaltyService,
    support: LoyaltyService,
    node_tools: NodeTools,
) -> None:
    admin = await make_caller(db, "operator", scopes=["customers:read", "hub:admin"])
    admin.token = await token_for(pair.compiled, admin)
    # The hub's own SDL (before it composes the subgraphs' fields into it).
    answer = await gql(pair.compiled, admin, "{ _service { sdl } }")
    subgraphs = [
        {"name": "hub", "url": "http://hub.test/graphql", "sdl": answer["data"]["_service"]["sdl"]}
    ]
    await _desk(db, pair, loyalty.url, support.url)
    async with pair.runtimes[0].database.session() as session:
        for name, service in (("loyalty", loyalty), ("desk", support)):
            accepted = (await store.get_subgraph(session, name)).sdl
            assert accepted is not None
            subgraphs.append({"name": name, "url": service.url, "sdl": accepted})
    result = await node_tools.run("compose.mjs", stdin={"subgraphs": subgraphs})
    assert result["errors"] == []
    assert "slaHours" in result["supergraphSdl"] and "loyaltyTier" in result["supergraphSdl"]
