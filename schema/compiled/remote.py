"""Remote fields of a compiled read: fetched once the local records are known.

Both ways of running a plan (:mod:`schema.compiled.sql`, :mod:`schema.compiled.execute`)
note here, for each emitted record with a :class:`~schema.compiled.plan.RemotePlan`, the
entity whose row decision shows the field (a row that does not answers ``null`` and is
listed as withheld, as on the resolver path). Once the database work is done,
:meth:`RemoteValues.fetch` asks the request's :class:`hub.federation.fetch.RemoteFetcher`
for each level in turn: one batched ``_entities`` request per subgraph per level, with
the resolver path's client, masks, read-audit notes and error wording. A failed subgraph
answers ``null`` on each of its paths with the error the resolver path gives there.
"""

from __future__ import annotations

from typing import Any

from graphql import located_error

from hub.federation.fetch import RemoteFieldError, Wanted
from policies import FieldDecision
from schema.compiled.plan import RemotePlan
from schema.context import Context
from schema.errors import format_error

_Want = tuple[RemotePlan, Wanted, dict[str, Any], str, list[str | int]]
"""One value to place: its plan, what is fetched, the object and key it goes to, and its
path (for an error)."""


class RemoteValues:
    """The remote values one execution of a plan needs (see the module docstring)."""

    __slots__ = ("levels", "noted")

    def __init__(self, *, noted: bool = False) -> None:
        self.levels: dict[int, list[_Want]] = {}
        self.noted = noted
        """The records were noted for the read audit with their remote fields already
        (:meth:`hub.federation.fetch.RemoteFetcher.get_many`'s ``noted``)."""

    def want(
        self,
        plan: RemotePlan,
        target: dict[str, Any],
        key: str,
        path: list[str | int],
        entity_id: str,
        record_id: str,
        decision: FieldDecision,
        customer_id: str | None = None,
    ) -> None:
        """``target[key]`` is to hold ``plan``'s field of the entity (``null`` until
        fetched); ids as canonical text. ``customer_id``: the customer a ``Feedback`` or
        ``Case`` is about, when the caller may see it (the read audit has noted the record
        with its customer already, when it was emitted)."""
        target[key] = None
        wanted = Wanted(plan.remote, entity_id, decision, plan.selection, record_id, customer_id)
        level = self.levels.get(plan.level)
        if level is None:
            level = self.levels[plan.level] = []
        level.append((plan, wanted, target, key, path))

    async def fetch(self, context: Context) -> list[dict[str, Any]]:
        """Fetch and place every value; the errors of the failed ones, formatted as the
        resolver path formats them."""
        errors: list[dict[str, Any]] = []
        for level in sorted(self.levels):
            wants = self.levels[level]
            results = await context.remote.get_many([w[1] for w in wants], noted=self.noted)
            for (plan, _, target, key, path), result in zip(wants, results, strict=True):
                if isinstance(result, RemoteFieldError):
                    error = located_error(result, list(plan.nodes), path)
                    errors.append(format_error(error, phase="execution"))
                else:
                    target[key] = plan.complete(result)
        return errors
