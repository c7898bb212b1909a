"""The compiled read path answers exactly as the resolver path (DESIGN §11).

A differential property test: random documents valid in the caller's schema (fields,
nested connections, fragments named and inline, aliases, repeated keys, ``@skip`` and
``@include`` with variables, arguments as literals and variables, filters, orders, page
sizes, ``pageInfo``, ``totalCount``, cursors, ``__typename``) x random sharing policies x
the demo's data, each sent to an app with compiled reads and to one without; the
responses (status, data, errors, extensions) and the recorded read disclosures must be
equal, and a successful read the compiled path covers must not fall back.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import random
import re
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Route

from app import create_app
from hub import sharing
from hub.access import Resource, access
from hub.access.catalog import API_ENUMS
from hub.access.policy_rules import PolicyRules
from hub.db import Database, DirectReads
from hub.demo import DemoCredential, seed_demo
from hub.models import Customer, Feedback, Organization
from hub.models.case import Case, CaseNote
from policies import Document
from schema.compiled import CompiledReads
from schema.compiled.plan import Unsupported
from schema.http import GraphQLEndpoint
from schema.ids import to_global_id
from schema.visibility import AudienceSchemas
from tests.conftest import make_settings
from tests.hub.test_policy_enforcement import documents

# Each example costs two requests and an audience schema (~35 ms on SQLite, ~45 ms on
# PostgreSQL here): 120 per backend by default, more with HUB_COMPILED_EXAMPLES (CI: 1,000).
EXAMPLES = int(os.environ.get("HUB_COMPILED_EXAMPLES", "120"))
CALLERS = (
    "acme-distribution",
    "eurotrade-partners",
    "sales",
    "marketing",
    "operator",
    "support",
    "alpine-textiles",
)

# Fields the compiled path does not plan yet: documents leave them out (a test below
# checks that they fall back to the resolver path and still answer alike).
NOT_PLANNED: dict[str, set[str]] = {}
# The module, not the function of the same name the package exports.
compiled_execute = importlib.import_module("schema.compiled.execute")
compiled_package = importlib.import_module("schema.compiled")
audit_extension = importlib.import_module("schema.audit.extension")


NESTED = {
    "Customer": ("feedback", "cases", "interactions", "purchases", "partners"),
    "Case": ("notes",),
}


class _Enum(str):
    """An enum value: a bare name in a literal, a string in variables."""


# What the root lists' filters are drawn from (a field the caller's schema lacks is left
# out; ``None`` stands for values read from the data: products, customer ids).
FILTERS: dict[str, dict[str, list[Any]]] = {
    "CustomerFilter": {
        "region": ["EMEA"],
        "segment": [_Enum("SMB")],
        "search": ["a"],
        "lifecycleStage": [_Enum("CUSTOMER")],
        "updatedSince": ["2020-01-01T00:00:00Z"],
    },
    "FeedbackFilter": {
        "kind": [_Enum("COMPLAINT"), _Enum("PRAISE"), _Enum("QUESTION")],
        "status": [_Enum("NEW"), _Enum("TRIAGED")],
        "product": [None, "nope"],
        "customerId": [None, "nope"],
        "since": ["2020-01-01T00:00:00Z", "2031-01-01T00:00:00+02:00", "2024-01-01T00:00:00"],
    },
    "CaseFilter": {
        "status": [_Enum("OPEN"), _Enum("RESOLVED")],
        "priority": [_Enum("HIGH"), _Enum("NORMAL")],
        "product": [None, "nope"],
        "customerId": [None],
        "assignedTo": ["alpine-textiles", "support", "nope"],
    },
}


AUDIENCES: dict[str, AudienceSchemas] = {}
"""The audience schemas the apps of :func:`clients` share, per database URL."""


@pytest.fixture
async def clients(
    db: Database, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(compiled, resolvers): two apps on one database, one with compiled reads off. No
    policy refresh: each example's rules stay in force. The apps share one cache of
    audience schemas (``AUDIENCES``: the schema of a caller under the rules in force, the
    same for both; building it is most of an example's cost), which the documents are
    drawn from too."""
    apps = [
        create_app(make_settings(database_url, policy_refresh_interval=3600, compiled_reads=on))
        for on in (True, False)
    ]
    endpoints = [
        next(
            r.endpoint
            for r in a.routes
            if isinstance(r, Route) and isinstance(r.endpoint, GraphQLEndpoint)
        )
        for a in apps
    ]
    assert isinstance(endpoints[0], GraphQLEndpoint) and isinstance(endpoints[1], GraphQLEndpoint)
    endpoints[1].audiences = endpoints[0].audiences
    AUDIENCES[database_url] = endpoints[0].audiences
    async with contextlib.AsyncExitStack() as stack:
        http = []
        for application in apps:
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            http.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://hub.test")
                )
            )
        yield http[0], http[1]


@pytest.fixture
def rules_restored() -> Iterator[None]:
    saved = access.rules
    yield
    access.rules = saved


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What each request handed to the read audit's writer (a compiled attempt that fell
    back hands nothing: the resolver path's reads are the record), and why the compiled
    path fell back."""
    seen: dict[str, list[Any]] = {"reads": [], "fallbacks": []}
    original = audit_extension.submit_reads

    async def submit_reads(context: Any, reads: Any) -> None:
        seen["reads"].append(reads)
        await original(context, reads)

    def fallback(context: Any, why: str) -> None:
        seen["fallbacks"].append(f"{why}\n{traceback.format_exc()}")

    seen["sql"] = []
    run_sql = compiled_execute.execute_sql

    async def execute_sql(*args: Any) -> Any:
        try:
            answer = await run_sql(*args)
        except Unsupported as why:
            seen["sql"].append(str(why))
            raise
        seen["sql"].append("sql")
        return answer

    monkeypatch.setattr(compiled_execute, "execute_sql", execute_sql)
    monkeypatch.setattr(audit_extension, "submit_reads", submit_reads)
    monkeypatch.setattr(compiled_package, "submit_reads", submit_reads)
    monkeypatch.setattr(CompiledReads, "_fallback", staticmethod(fallback))
    return seen


def _basic(credential: DemoCredential) -> str:
    raw = f"{credential.client_id}:{credential.client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def _bearer(http: httpx.AsyncClient, credential: DemoCredential) -> dict[str, str]:
    """The Authorization header of a fresh client-credentials token of ``credential``."""
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": _basic(credential)},
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# --- random documents valid in one caller's schema ----------------------------------------


class _Writer:
    """Renders a random operation against ``schema`` with ``rng``."""

    def __init__(
        self,
        rng: random.Random,
        schema: GraphQLSchema,
        ids: list[uuid.UUID],
        records: list[tuple[str, uuid.UUID]] = (),  # type: ignore[assignment]
        products: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        self.rng = rng
        self.schema = schema
        self.ids = ids
        self.records = list(records)
        self.products = list(products) or ["nope"]
        self.fragments: list[str] = []
        self.variables: dict[str, Any] = {}
        self.definitions: list[str] = []
        self.aliases = 0

    def var(self, type_: str, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = value
        self.definitions.append(f"${name}: {type_}")
        return f"${name}"

    def value(self, type_: str, value: Any, literal: str) -> str:
        return self.var(type_, value) if self.rng.random() < 0.3 else literal

    def key(self, name: str, *, aliased: bool = False) -> str:
        if not aliased and self.aliases < 8 and self.rng.random() < 0.15:
            self.aliases += 1
            return f"a{self.aliases}: {name}"
        return name

    def directive(self) -> str:
        roll = self.rng.random()
        if roll < 0.05:
            return " @skip(if: true)"
        if roll < 0.1:
            return f" @include(if: {self.value('Boolean!', self.rng.random() < 0.5, 'true')})"
        if roll < 0.13:
            return f" @skip(if: {self.var('Boolean!', self.rng.random() < 0.5)})"
        return ""

    def wrap(self, type_name: str, body: str) -> str:
        roll = self.rng.random()
        if roll < 0.15:
            return f"... on {type_name} {{ {body} }}"
        if roll < 0.3:
            name = f"F{len(self.fragments)}"
            self.fragments.append(f"fragment {name} on {type_name} {{ {body} }}")
            return f"...{name}"
        return body

    def fields_of(self, type_name: str) -> list[str]:
        type_ = self.schema.type_map.get(type_name)
        assert isinstance(type_, GraphQLObjectType)
        skip = NOT_PLANNED.get(type_name, set()) | set(NESTED.get(type_name, ()))
        return [n for n in type_.fields if n not in skip]

    def record(self, type_name: str, depth: int) -> str:
        rng = self.rng
        names = self.fields_of(type_name)
        chosen = rng.sample(names, k=rng.randint(1, min(len(names), 6)))
        if rng.random() < 0.2:
            chosen.append("__typename")
        if rng.random() < 0.1:
            chosen.append(chosen[0])  # the same key twice: merged
        parts = []
        type_ = self.schema.type_map[type_name]
        assert isinstance(type_, GraphQLObjectType)
        for name in chosen:
            target = get_named_type(type_.fields[name].type).name if name in type_.fields else ""
            if name == "consent":
                consent = self.fields_of("Consent")
                inner = " ".join(rng.sample(consent, k=rng.randint(1, len(consent))))
                parts.append(f"consent {{ {inner} }}")
            elif target == "Organization":  # who wrote it, who it is assigned to
                inner = " ".join(rng.sample(["slug", "name", "kind", "__typename"], k=2))
                parts.append(f"{self.key(name)}{self.directive()} {{ {inner} }}")
            elif isinstance(self.schema.type_map.get(target), GraphQLObjectType):
                # A link to one record (Feedback.customer, Case.feedback).
                if depth < 2:
                    parts.append(f"{self.key(name)} {{ {self.record(target, depth + 1)} }}")
                else:
                    parts.append("__typename")
            else:
                parts.append(f"{self.key(name)}{self.directive()}")
        if depth < 2:
            for name in NESTED.get(type_name, ()):
                if name in type_.fields and rng.random() < 0.35:
                    target = self.node_type(get_named_type(type_.fields[name].type).name)
                    parts.append(
                        f"{self.key(name)}{self.args(nested=True)} {self.connection(target, depth + 1)}"
                    )
        rng.shuffle(parts)
        return self.wrap(type_name, " ".join(parts))

    def node_type(self, connection: str) -> str:
        connection_type = self.schema.type_map[connection]
        assert isinstance(connection_type, GraphQLObjectType)
        edge = get_named_type(connection_type.fields["edges"].type)
        assert isinstance(edge, GraphQLObjectType)
        name: str = get_named_type(edge.fields["node"].type).name
        return name

    def args(self, *, nested: bool, filter_type: str = "CustomerFilter") -> str:
        rng = self.rng
        given = []
        first = rng.choice([None, 0, 1, 2, 3, 50])
        if first is not None:
            given.append(f"first: {self.value('Int', first, str(first))}")
        if not nested:
            order = self.order() if filter_type == "CustomerFilter" else None
            if order:
                given.append(order)
            flt = self.filter(filter_type)
            if flt:
                given.append(flt)
        return f"({', '.join(given)})" if given else ""

    def order(self) -> str | None:
        enum = self.schema.type_map.get("CustomerOrderField")
        if not isinstance(enum, GraphQLEnumType) or self.rng.random() < 0.5:
            return None
        field = self.rng.choice(sorted(enum.values))
        direction = self.rng.choice(["ASC", "DESC"])
        return f"orderBy: {{field: {field}, direction: {direction}}}"

    def filter(self, filter_type: str) -> str | None:
        """A root list's ``filter``: one or two fields, as a literal or a variable."""
        input_ = self.schema.type_map.get(filter_type)
        if not isinstance(input_, GraphQLInputObjectType) or self.rng.random() < 0.5:
            return None
        choices = {n: v for n, v in FILTERS[filter_type].items() if n in input_.fields}
        if not choices:
            return None
        names = self.rng.sample(sorted(choices), k=min(len(choices), self.rng.choice([1, 1, 2])))
        values: dict[str, Any] = {}
        for name in names:
            value = self.rng.choice(choices[name])
            if value is None:
                value = (
                    to_global_id("Customer", self.rng.choice(self.ids))
                    if name == "customerId"
                    else self.rng.choice(self.products)
                )
            values[name] = value
        if self.rng.random() < 0.3:
            return f"filter: {self.var(filter_type, {k: str(v) for k, v in values.items()})}"
        fields = ", ".join(
            f"{k}: {v if isinstance(v, _Enum) else json.dumps(v)}" for k, v in values.items()
        )
        return f"filter: {{{fields}}}"

    def connection(self, type_name: str, depth: int) -> str:
        rng = self.rng
        parts = []
        if rng.random() < 0.9:
            parts.append(f"{self.key('edges')} {{ {self.edge(type_name, depth)} }}")
        if rng.random() < 0.4:
            info = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
            parts.append(f"pageInfo {{ {' '.join(rng.sample(info, k=rng.randint(1, 5)))} }}")
        if rng.random() < 0.4:
            parts.append(f"totalCount{self.directive()}")
        if rng.random() < 0.1 or not parts:
            parts.append("__typename")
        rng.shuffle(parts)
        return "{ " + " ".join(parts) + " }"

    def edge(self, type_name: str, depth: int) -> str:
        parts = [f"node {{ {self.record(type_name, depth)} }}"]
        if self.rng.random() < 0.3:
            parts.append("cursor")
        return " ".join(parts)

    def global_ids(self) -> list[str]:
        """Ids of records of several types (some hidden from the caller), and non-ids."""
        found = [to_global_id(type_name, i) for type_name, i in self.records]
        return [*self.rng.sample(found, k=min(4, len(found))), "nope", str(uuid.uuid4())]

    def node_field(self, *, aliased: bool) -> str:
        """``node(id)`` or ``nodes(ids)`` with fragments on the node types in the schema."""
        parts = ["__typename", "id"] if self.rng.random() < 0.5 else ["id"]
        for type_name in ("Customer", "Feedback", "Case", "Interaction", "Purchase"):
            if type_name in self.schema.type_map and self.rng.random() < 0.7:
                parts.append(f"... on {type_name} {{ {self.record(type_name, 1)} }}")
        body = " ".join(parts)
        if self.rng.random() < 0.3:
            ids = self.rng.sample(self.global_ids(), k=3)
            listed = ", ".join(f'"{i}"' for i in ids)
            argument = self.value("[ID!]!", ids, f"[{listed}]")
            return f"{self.key('nodes', aliased=aliased)}(ids: {argument}) {{ {body} }}"
        target = self.rng.choice(self.global_ids())
        argument = self.value("ID!", target, f'"{target}"')
        return f"{self.key('node', aliased=aliased)}(id: {argument}) {{ {body} }}"

    def entities_field(self, *, aliased: bool) -> str:
        """Federation ``_entities`` with representations of the entity types in the
        schema (ids of other types, unknown ids; rarely one the resolvers refuse)."""
        union = self.schema.type_map.get("_Entity")
        members = sorted(t.name for t in getattr(union, "types", ()))
        representations: list[dict[str, str]] = []
        for _ in range(self.rng.randint(1, 4)):
            representations.append(
                {"__typename": self.rng.choice(members), "id": self.rng.choice(self.global_ids())}
            )
        if self.rng.random() < 0.03:
            representations.append({"__typename": members[0], "id": "x", "name": "extra"})
        parts = ["__typename"] if self.rng.random() < 0.4 else []
        for type_name in members:
            if self.rng.random() < 0.8:
                parts.append(f"... on {type_name} {{ {self.record(type_name, 1)} }}")
        if not parts:
            parts.append("__typename")
        listed = ", ".join(
            "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in r.items()) + "}"
            for r in representations
        )
        argument = self.value("[_Any!]!", representations, f"[{listed}]")
        return (
            f"{self.key('_entities', aliased=aliased)}(representations: {argument})"
            f" {{ {' '.join(parts)} }}"
        )

    def record_ids(self, type_name: str) -> list[str]:
        """Ids to look a record of ``type_name`` up by: its own, others', non-ids."""
        own = [to_global_id(t, i) for t, i in self.records if t == type_name][:5]
        return [*own, *self.rng.sample(self.global_ids(), k=2)]

    def operation(self) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        roots = []
        query = self.schema.query_type
        assert query is not None
        # Root fields by kind, as the caller's schema has them: by id, lists, node(s), _entities.
        kinds = [k for k in ROOT_WEIGHTS if k in query.fields]
        weights = [ROOT_WEIGHTS[k] for k in kinds]
        for index in range(rng.randint(1, 2)):
            # A second root field gets its own response key (equal keys need equal args).
            alias = f"r{index}: " if index else ""
            if not kinds:
                roots.append("__typename")
                continue
            kind = rng.choices(kinds, weights)[0]
            field = query.fields[kind]
            returned = get_named_type(field.type).name
            if kind in ("node", "nodes"):
                roots.append(f"{alias}{self.node_field(aliased=bool(alias))}")
            elif kind == "_entities":
                roots.append(f"{alias}{self.entities_field(aliased=bool(alias))}")
            elif "id" in field.args:  # customer(id), case(id)
                target = rng.choice([*self.record_ids(returned), str(uuid.uuid4())])
                literal = f'"{target}"'
                roots.append(
                    f"{alias}{self.key(kind, aliased=bool(alias))}(id: {self.value('ID!', target, literal)}) "
                    f"{{ {self.record(returned, 0)} }}"
                )
            else:  # a list: customers, feedback, cases
                filter_arg = field.args.get("filter")
                filter_type = get_named_type(filter_arg.type).name if filter_arg else ""
                roots.append(
                    f"{alias}{self.key(kind, aliased=bool(alias))}"
                    f"{self.args(nested=False, filter_type=filter_type)} "
                    f"{self.connection(self.node_type(returned), 0)}"
                )
        head = f"query Q({', '.join(self.definitions)})" if self.definitions else "query Q"
        return " ".join([f"{head} {{ {' '.join(roots)} }}", *self.fragments]), self.variables


ROOT_WEIGHTS = {
    "customers": 30,
    "customer": 12,
    "feedback": 20,
    "cases": 20,
    "case": 10,
    "node": 6,
    "nodes": 6,
    "_entities": 8,
}
"""How often each root field is drawn (when the caller's schema has it)."""


async def _escalate(session: AsyncSession, count: int, seed: int) -> None:
    """Support cases (with their notes) escalated from ``count`` feedback records, so a
    small demo has cases enough (it seeds one per 25 customers): assigned to a supplier
    or a department, opened by support, in any status and priority."""
    rng = random.Random(seed)
    orgs = {o.slug: o for o in (await session.execute(select(Organization))).scalars()}
    assignees = ["alpine-textiles", "pacific-components", "support", "technical-support"]
    authors = [*assignees, "operator"]
    found = (await session.execute(select(Feedback).order_by(Feedback.id).limit(count))).scalars()  # type: ignore[arg-type]
    for index, item in enumerate(found):
        created = item.created_at + timedelta(hours=index + 1, microseconds=index * 7)
        case = Case(
            customer_id=item.customer_id,
            organization_id=orgs[rng.choice(assignees)].id,
            opened_by_id=orgs["support"].id,
            feedback_id=item.id if index % 4 else None,
            product=item.product,
            subject=f"Escalated {item.kind}",
            description=item.text,
            priority=rng.choice(["low", "normal", "high", "urgent"]),
            status=rng.choice(["open", "waiting_on_partner", "resolved", "closed"]),
            created_at=created,
            updated_at=created,
        )
        session.add(case)
        for note in range(rng.randint(0, 3)):
            session.add(
                CaseNote(
                    case_id=case.id,
                    customer_id=item.customer_id,
                    organization_id=orgs[rng.choice(authors)].id,
                    text=f"note {note}",
                    created_at=created + timedelta(minutes=note, microseconds=note * 11),
                )
            )


def _no_enum_masks(document: Document) -> bool:
    # Masks on API enums are refused at publish (hub.sharing); leave them out here.
    enums = API_ENUMS[Resource.CUSTOMER]
    return not any(name in enums for rule in document.rules for name in rule.read.masked)


def _disclosed(reads: Any) -> dict[str, Any]:
    details = dict(reads.entry().details)
    return details


async def test_compiled_reads_answer_as_the_resolvers_do(
    db: Database,
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    database_url: str,
    rules_restored: None,
    observed: dict[str, list[Any]],
) -> None:
    compiled, resolvers = clients
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=30, seed=11)
        credentials = {c.org: c for c in seeded if c.role is None}
        await _escalate(session, 24, seed=11)
        # The demo's times are whole seconds; give some records sub-second times too
        # (ISO text with a fraction, in values and cursors).
        models: tuple[Any, ...] = (Customer, Feedback, Case)
        for model in models:
            for index, row in enumerate((await session.execute(select(model))).scalars()):
                if index % 3 == 0:
                    row.created_at += timedelta(microseconds=1 + index * 7919 % 999_999)
                    row.updated_at += timedelta(microseconds=10 + index * 104_729 % 999_999)
    async with db.session() as session:
        orgs = {o.slug: o for o in (await session.execute(select(Organization))).scalars()}
        ids = sorted((await session.execute(select(Customer.id))).scalars())  # type: ignore[call-overload]
        records = [("Customer", i) for i in ids[:10]]
        for type_name, model in (("Feedback", Feedback), ("Case", Case)):
            found = (await session.execute(select(model.id).limit(10))).scalars()  # type: ignore[call-overload]
            records += [(type_name, i) for i in found]
        products: set[str] = set()
        for column in (Case.product, Feedback.product):
            found = (await session.execute(select(column).limit(5))).scalars()  # type: ignore[call-overload]
            products |= {p for p in found if p}
    tokens = {}
    for slug in CALLERS:
        tokens[slug] = await _bearer(compiled, credentials[slug])

    default = sharing.parse_stored(sharing.default_source())
    guardrails = sharing.operator_guardrails()
    examples: list[tuple[Document, list[bool], str, int]] = []

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.none() | documents().filter(_no_enum_masks),
        # Each default rule kept with a probability of 7/8.
        st.lists(
            st.sampled_from([True] * 7 + [False]),
            min_size=len(default.rules),
            max_size=len(default.rules),
        ),
        st.sampled_from(CALLERS),
        st.integers(0, 2**32),
    )
    def collect(document: Document | None, keep: list[bool], slug: str, seed: int) -> None:
        examples.append((document or Document(rules=()), keep, slug, seed))

    collect()
    audiences = AUDIENCES[database_url]
    covered = 0
    for number, (document, keep, slug, seed) in enumerate(examples, start=1000):
        # The default policy with some of its rules dropped, plus random customer rules.
        kept = [r for r, k in zip(default.rules, keep, strict=True) if k]
        rules = [dataclasses.replace(r, index=i) for i, r in enumerate([*kept, *document.rules])]
        access.rules = PolicyRules(
            number, Document(rules=tuple(rules)), guardrails, pseudonym_secret=b"d" * 32
        )
        principal = sharing.principal_for(orgs[slug])
        schema = audiences.for_principal(principal)._schema
        writer = _Writer(random.Random(seed), schema, ids, records, sorted(products))
        query, variables = writer.operation()
        answers = []
        for http in (compiled, resolvers):
            observed["reads"].clear()
            observed["fallbacks"].clear()
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers=tokens[slug],
            )
            # What is handed to the audit writer (an empty collection is not).
            reads = [_disclosed(r) for r in observed["reads"] if r.records]
            answers.append((response.status_code, response.json(), reads))
            if http is compiled:
                fell_back = list(observed["fallbacks"])
        if answers[1][1].get("data") is None:
            # An error nulled the whole response: nothing reached the caller, and what the
            # resolver path's audit records then depends on how far its other root fields
            # had got (they run concurrently); both apps answer it on that path.
            assert answers[0][:2] == answers[1][:2], (query, variables, slug)
        else:
            assert answers[0] == answers[1], (query, variables, slug)
        status, body = answers[1][:2]
        if status == 200 and "errors" not in body:
            assert not fell_back, (fell_back, query)
            covered += 1
    # On PostgreSQL and SQLite the plans run as one SQL statement per root field: nearly
    # all of them (the rest, e.g. more rule conditions than are enumerated, from the
    # records).
    sql = observed["sql"].count("sql")
    assert sql >= 0.9 * len(observed["sql"]), Counter(observed["sql"]).most_common(5)
    # Most examples are successful reads the compiled path answered.
    assert covered >= len(examples) // 2, covered


async def test_provenance_is_planned_shown_masked_and_withheld_as_the_resolvers_do(
    db: Database,
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    rules_restored: None,
    observed: dict[str, list[Any]],
) -> None:
    """``Customer.provenance`` on the compiled path: listed for the fields each row shows,
    ``null`` (but disclosed) where a mask turns it into a string, withheld where a row
    does not show it; the same answers and audit notes as the resolver path's."""
    compiled, resolvers = clients
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=12, seed=7)
    async with db.session() as session:
        orgs = {o.slug: o for o in (await session.execute(select(Organization))).scalars()}
    source = sharing.default_source().replace(
        "  - name: distributors-feedback\n",
        "  - name: distributors-provenance\n"
        "    subjects: [{kind: distributor}]\n"
        "    resource: Customer\n"
        "    rows: {segment: {eq: consumer}}\n"
        "    read: {visible: [id, provenance, city]}\n"
        "  - name: distributors-provenance-redacted\n"
        "    subjects: [{kind: distributor}]\n"
        "    resource: Customer\n"
        "    rows: {segment: {eq: smb}}\n"
        "    read: {visible: [id], masked: {provenance: redact}}\n"
        "  - name: distributors-feedback\n",
        1,
    )
    assert "distributors-provenance-redacted" in source
    document = sharing.parse_stored(source)
    # Without the operator's guardrails, one of which hides provenance from partners.
    access.rules = PolicyRules(77, document, (), pseudonym_secret=b"p" * 32)
    credential = next(c for c in seeded if c.org == "acme-distribution" and c.role is None)
    assert orgs["acme-distribution"]
    query = (
        "{ customers(first: 20) { edges { node { name segment"
        " provenance { __typename field organization source at approvedBy } } } } }"
    )
    answers = []
    for http in (compiled, resolvers):
        observed["fallbacks"].clear()
        headers = await _bearer(http, credential)
        response = await http.post("/graphql", json={"query": query}, headers=headers)
        reads = [_disclosed(r) for r in observed["reads"] if r.records]
        observed["reads"].clear()
        answers.append((response.status_code, response.json(), reads))
        if http is compiled:
            assert not observed["fallbacks"], (observed["fallbacks"], response.text)
    assert answers[0] == answers[1]
    nodes = [e["node"] for e in answers[0][1]["data"]["customers"]["edges"]]
    listed = [n for n in nodes if n["provenance"]]
    assert listed, nodes  # consumers: entries for the fields they show
    assert all(
        p["__typename"] == "FieldProvenance" and p["at"] for n in listed for p in n["provenance"]
    )
    assert any(n["provenance"] is None for n in nodes)


async def test_what_the_plan_does_not_cover_falls_back_and_answers_alike(
    db: Database,
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    observed: dict[str, list[Any]],
) -> None:
    compiled, resolvers = clients
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=5, seed=3)
    operator = next(c for c in seeded if c.org == "operator" and c.role is None)
    headers = await _bearer(compiled, operator)
    queries = [
        "{ me { __typename } }",  # not planned
        '{ customers(first: 2, after: "garbage") { edges { node { name } } } }',  # bad cursor
        "{ customers(first: 1000) { totalCount } }",  # over the page limit
        "{ nope }",  # invalid
        "mutation { __typename }",
        # Representations the resolvers refuse: an unknown type, a key besides the id.
        '{ _entities(representations: [{__typename: "Nope", id: "x"}]) { __typename } }',
        '{ _entities(representations: [{__typename: "Customer", id: "x", name: "y"}])'
        " { __typename } }",
    ]
    for query in queries:
        answers = []
        for http in (compiled, resolvers):
            observed["fallbacks"].clear()
            response = await http.post("/graphql", json={"query": query}, headers=headers)
            answers.append((response.status_code, response.json()))
            if http is compiled:
                assert observed["fallbacks"], query
        assert answers[0] == answers[1], query


async def test_the_path_that_answered_is_counted_in_the_metrics(
    db: Database, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    compiled, _ = clients
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=3, seed=3)
    operator = next(c for c in seeded if c.org == "operator" and c.role is None)
    headers = await _bearer(compiled, operator)

    def counted(text: str, path: str) -> float:
        line = f'hub_graphql_read_paths_total{{path="{path}"}}'
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    before = (await compiled.get("/metrics")).text
    for query in (
        "{ customers(first: 1) { totalCount } }",
        "{ me { __typename } }",
    ):
        response = await compiled.post("/graphql", json={"query": query}, headers=headers)
        assert response.status_code == 200 and "errors" not in response.json()
    after = (await compiled.get("/metrics")).text
    assert counted(after, "compiled") == counted(before, "compiled") + 1
    assert counted(after, "resolvers") == counted(before, "resolvers") + 1


async def test_one_statement_per_root_field_never_per_record(
    db: Database,
    database_url: str,
    observed: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL and SQLite a compiled read runs one SQL statement per root field,
    whatever the nesting (connections, links) and page sizes."""
    application = create_app(make_settings(database_url, expose_sql_count=True))
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=12, seed=5)
        await _escalate(session, 8, seed=5)
    async with db.session() as session:
        customer_ids = list((await session.execute(select(Customer.id))).scalars())  # type: ignore[call-overload]
        feedback_ids = list((await session.execute(select(Feedback.id))).scalars())  # type: ignore[call-overload]
        case_ids = list((await session.execute(select(Case.id))).scalars())  # type: ignore[call-overload]
        escalated = select(Case.id).where(Case.feedback_id.is_not(None))  # type: ignore[call-overload,union-attr]
        from_feedback = (await session.execute(escalated)).scalars().first()
        assert from_feedback is not None
    representations = ", ".join(
        [
            *(
                f'{{__typename: "Customer", id: "{to_global_id("Customer", i)}"}}'
                for i in customer_ids
            ),
            *(
                f'{{__typename: "Feedback", id: "{to_global_id("Feedback", i)}"}}'
                for i in feedback_ids[:10]
            ),
        ]
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            for slug in ("operator", "acme-distribution"):
                credential = next(c for c in seeded if c.org == slug and c.role is None)
                headers = await _bearer(http, credential)
                counts = []
                # Who contributed the feedback, and support cases: the operator reads them,
                # the distributor does not.
                organization = "organization { name kind }" if slug == "operator" else ""
                cases = ""
                if slug == "operator":
                    cases = (
                        " e: cases(first: SIZE) { totalCount edges { cursor node { subject"
                        " assignedTo { slug } openedBy { name } customer { name }"
                        " feedback { kind } notes(first: SIZE) { totalCount edges { node {"
                        " text author { slug } } } } } } }"
                        f' f: case(id: "{to_global_id("Case", case_ids[0])}") {{ subject'
                        " notes { edges { node { text } } } }"
                        # As deep as the operation limits allow: links, then two levels
                        # of connections (SQLite's parser stack is what it reaches).
                        f' g: case(id: "{to_global_id("Case", from_feedback)}") {{ feedback {{'
                        " customer { cases(first: SIZE) { totalCount pageInfo { hasNextPage"
                        " endCursor } edges { cursor node { notes(first: SIZE) { totalCount"
                        " edges { node { text } } } } } } } } }"
                    )
                for size in (1, 50):
                    query = (
                        f"{{ a: customers(first: {size}) {{ totalCount pageInfo {{ endCursor }}"
                        f" edges {{ cursor node {{ name feedback(first: {size}) {{ totalCount"
                        " edges { node { kind customer { city interactions { totalCount } } }"
                        " } } } } } b: customers(first: 2) { edges { node { id } } }"
                        f" c: feedback(first: {size}) {{ totalCount pageInfo {{ hasNextPage }}"
                        f" edges {{ cursor node {{ kind {organization} customer {{"
                        f" name feedback(first: {size}) {{ totalCount edges {{ node {{ kind"
                        " } } } } } } }"
                        f" d: _entities(representations: [{representations}]) {{ __typename"
                        f" ... on Customer {{ name feedback(first: {size}) {{ totalCount }} }}"
                        " ... on Feedback { kind customer { name } } }"
                        + cases.replace("SIZE", str(size))
                        + " }"
                    )
                    observed["fallbacks"].clear()
                    observed["sql"].clear()
                    response = await http.post("/graphql", json={"query": query}, headers=headers)
                    assert response.status_code == 200, response.text
                    assert "errors" not in response.json()
                    assert not observed["fallbacks"]
                    assert observed["sql"] == ["sql"], observed["sql"]
                    counts.append(int(response.headers["X-SQL-Statements"]))
                roots = 7 if slug == "operator" else 4
                assert counts == [roots, roots], (slug, counts)
            # A partner's feedback of each customer is under the same consent and
            # assignment terms as the customer: the enclosing row already passed
            # them, so the statement states each once (not again per feedback row).
            # ``headers``: the distributor's, the loop's last caller.
            statements: list[str] = []
            value = DirectReads.value

            async def record(self: DirectReads, statement: str, parameters: Any) -> Any:
                statements.append(statement)
                return await value(self, statement, parameters)

            page = (
                "{ customers(first: 5) { edges { node { name feedback(first: 5) {"
                " totalCount edges { node { kind customer { city } } } } } } } }"
            )
            with monkeypatch.context() as patched:
                patched.setattr(DirectReads, "value", record)
                response = await http.post("/graphql", json={"query": page}, headers=headers)
            assert response.json()["data"]["customers"]["edges"], response.text
            (sql,) = [s for s in statements if "json_build_object" in s or "json_object" in s]
            assert sql.count("FROM customer_partner") == 1, sql
            assert sql.count("consent_share_with_partners") == 1, sql
            # Each feedback's customer is the enclosing one: read from its row, not
            # looked up again per feedback.
            assert len(re.findall(r"FROM customer\b(?!_)", sql)) == 1, sql
            # Page sizes: in PostgreSQL's text (a generic plan knows how many rows a LIMIT
            # takes), parameters for SQLite (told the size, its planner sorted every
            # admitted customer first). Nobody asks hasNextPage: the page alone, its rows
            # not numbered.
            if database_url.startswith("postgresql"):
                assert "LIMIT 5)" in sql and "LIMIT $" not in sql, sql
            else:
                assert "LIMIT ?" in sql and "LIMIT 5" not in sql, sql
            assert "row_number" not in sql, sql


async def test_the_request_log_names_the_read_path_beside_the_url(
    db: Database, database_url: str
) -> None:
    settings = make_settings(database_url).model_copy(update={"log_level": "INFO"})
    application = create_app(settings)
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=3, seed=3)
    operator = next(c for c in seeded if c.org == "operator" and c.role is None)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    async with application.router.lifespan_context(application):
        logging.getLogger("hub.http").addHandler(handler)
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
                headers = await _bearer(http, operator)
                for query in (
                    "{ customers(first: 1) { totalCount } }",
                    "{ me { __typename } }",
                ):
                    await http.post("/graphql", json={"query": query}, headers=headers)
        finally:
            logging.getLogger("hub.http").removeHandler(handler)
    fields = [
        r.fields  # type: ignore[attr-defined]
        for r in records
        if r.getMessage() == "request" and "read_path" in getattr(r, "fields", {})
    ]
    assert [f["read_path"] for f in fields] == ["compiled", "resolvers"]
    assert all(f["path"] == "/graphql" for f in fields)


async def test_a_plan_too_deep_for_sqlites_parser_runs_from_the_records(
    db: Database, database_url: str, observed: dict[str, list[Any]]
) -> None:
    """Past the default operation limits, a plan's statement can nest deeper than
    SQLite's parser takes (100 entries): that plan runs from the access module's
    records instead, and answers as the resolver path does."""
    settings = make_settings(database_url, max_depth=30, expose_sql_count=True)
    apps = [create_app(settings.model_copy(update={"compiled_reads": on})) for on in (True, False)]
    async with db.transaction() as session:
        seeded = await seed_demo(session, customers=6, seed=7)
    operator = next(c for c in seeded if c.org == "operator" and c.role is None)
    inner = "kind"
    for _ in range(4):
        inner = f"customer {{ name feedback(first: 2) {{ totalCount edges {{ node {{ {inner} }} }} }} }}"
    query = f"{{ customers(first: 2) {{ edges {{ node {{ feedback(first: 2) {{ edges {{ node {{ {inner} }} }} }} }} }} }} }}"
    answers = []
    async with contextlib.AsyncExitStack() as stack:
        for application in apps:
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://hub.test")
            )
            headers = await _bearer(http, operator)
            for _ in range(2):  # the second time, the refusal is known
                observed["sql"].clear()
                observed["fallbacks"].clear()
                response = await http.post("/graphql", json={"query": query}, headers=headers)
                assert response.status_code == 200 and "errors" not in response.json()
                if application is apps[0]:
                    assert not observed["fallbacks"], (observed["fallbacks"], response.text)
                    if database_url.startswith("sqlite"):
                        (refusal,) = observed["sql"]
                        assert "parser stack overflow" in refusal, refusal
                    else:
                        assert observed["sql"] == ["sql"]
            answers.append(response.json())
    assert answers[0] == answers[1]
