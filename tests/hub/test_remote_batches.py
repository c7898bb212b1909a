"""The batched ``_entities`` requests of a compiled page (:meth:`RemoteFetcher.get_many`):
its direct path for a page's remote column (one field of distinct entities) sends the
request the general grouping sends and answers the same values, for any mix of fields,
types, selections, repeated entities, short or failing answers (hypothesis, both paths
side by side)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.access import Resource
from hub.federation import fetch
from hub.federation.fetch import RemoteFetcher, RemoteFieldError, Wanted
from hub.federation.sdl import RemoteField
from hub.federation.state import Federation
from policies import FieldDecision, Outcome

FIELDS = [
    RemoteField("loyalty", "Customer", Resource.CUSTOMER, name, None, None)  # type: ignore[arg-type]
    for name in ("loyaltyTier", "loyaltyPoints")
] + [RemoteField("support", "Feedback", Resource.FEEDBACK, "sentiment", None, None)]  # type: ignore[arg-type]
VISIBLE = FieldDecision(Outcome.VISIBLE)


@dataclass
class Subgraph:
    """Answers ``_entities`` from the representations (a value per entity and field),
    recording every request; ``short``: drops the last entity of each answer."""

    failing: bool = False
    short: bool = False
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((document, variables))
        if self.failing:
            raise RuntimeError("down")
        data: dict[str, Any] = {}
        for name, representations in variables.items():
            answers = [{"f0": f"{r['id']}!", "f1": len(r["id"])} for r in representations]
            data[name.replace("r", "e", 1)] = answers[:-1] if self.short else answers
        return data


class Caller:
    organization_slug = "acme"


def wanted_of(draws: list[tuple[int, int, str]]) -> list[Wanted]:
    return [
        Wanted(FIELDS[f], f"id{e}", VISIBLE, selection, f"record{e}", None)
        for f, e, selection in draws
    ]


async def ask(wanted: list[Wanted], subgraph: Subgraph) -> list[Any]:
    federation = Federation(clients={"loyalty": subgraph, "support": subgraph})  # type: ignore[dict-item]
    return await RemoteFetcher(Caller(), federation).get_many(wanted)  # type: ignore[arg-type]


draws = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 30), st.sampled_from(["", " { a }"])),
    min_size=1,
    max_size=60,
)
columns = st.builds(
    lambda f, ids, selection: [(f, e, selection) for e in ids],
    st.integers(0, 2),
    st.lists(st.integers(0, 200), min_size=1, max_size=60, unique=True),
    st.sampled_from(["", " { a }"]),
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(draws, columns), st.booleans(), st.booleans())
def test_the_direct_path_sends_and_answers_as_the_grouping_does(
    drawn: list[tuple[int, int, str]], failing: bool, short: bool
) -> None:
    wanted = wanted_of(drawn)
    direct, grouped = Subgraph(failing, short), Subgraph(failing, short)
    answered = asyncio.run(ask(wanted, direct))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fetch, "_one_group", lambda _: False)
        expected = asyncio.run(ask(wanted, grouped))
    assert direct.requests == grouped.requests
    assert [_plain(v) for v in answered] == [_plain(v) for v in expected]


def _plain(value: Any) -> Any:
    return ("error", str(value)) if isinstance(value, RemoteFieldError) else value


def test_a_page_column_takes_the_direct_path_and_one_request() -> None:
    wanted = wanted_of([(0, e, "") for e in range(50)])
    assert fetch._one_group(wanted)
    subgraph = Subgraph()
    values = asyncio.run(ask(wanted, subgraph))
    assert values == [f"id{e}!" for e in range(50)]
    ((document, variables),) = subgraph.requests
    assert document == (
        "query HubEntities($r0: [_Any!]!) { e0: _entities(representations: $r0) "
        "{ ... on Customer { f0: loyaltyTier } } }"
    )
    assert variables == {"r0": [{"__typename": "Customer", "id": f"id{e}"} for e in range(50)]}


@pytest.mark.parametrize(
    "drawn",
    [
        [(0, 1, ""), (0, 1, "")],  # an entity twice
        [(0, 1, ""), (1, 2, "")],  # two fields
        [(0, 1, ""), (0, 2, " { a }")],  # two selections
        [(0, 1, ""), (2, 2, "")],  # two subgraphs
    ],
)
def test_anything_else_is_grouped(drawn: list[tuple[int, int, str]]) -> None:
    assert not fetch._one_group(wanted_of(drawn))
