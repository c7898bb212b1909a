"""Fetching remote fields for one request: batched ``_entities`` calls, masks, audit.

A :class:`RemoteFetcher` lives for one request. Each remote value the request needs is a
:meth:`RemoteFetcher.get` call; calls made while the request resolves one level of the
query (the loop has not gone quiet yet) are sent together: **one ``_entities`` request
per subgraph per level**, whatever the number of entities. The request asks only for
what was selected (the sub-selection the GraphQL layer passes, printed), only for the
entities whose row decision shows the field, and authenticates as the hub
(:mod:`connectors.subgraph`), never with the caller's token.

Entities sharing the same wanted fields share one ``_entities`` selection (aliased
``e0``, ``e1``...; fields aliased ``f0``, ``f1``...), so an entity is never asked a field
it may not show, even when another entity of the same page may.

A value comes back masked as the row's decision says (:func:`policies.apply_mask`), and
is noted for the read audit (:mod:`hub.disclosures`) as a field of its record. A
subgraph that fails or times out fails every value of that batch with a
:class:`RemoteFieldError` naming the subgraph: the GraphQL layer answers ``null`` with an
error at each of those paths, and the rest of the response stands.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors.subgraph import SubgraphError
from hub import disclosures
from hub.access import access
from hub.errors import HubError
from hub.federation.sdl import RemoteField
from hub.federation.state import Federation
from hub.principal import Principal
from policies import FieldDecision, MaskSpec, Outcome, apply_mask

logger = logging.getLogger(__name__)

QUIET_TICKS = 2
"""Event-loop turns with no new value wanted before a batch is sent: the resolvers of
one level all start within a turn or two of each other."""


class RemoteFieldError(HubError):
    """A remote field could not be fetched (the subgraph is down, slow or erring)."""

    code = "SUBGRAPH_UNAVAILABLE"


_Key = tuple[str, str]
"""A distinct thing asked of an entity: a field's name and its printed sub-selection (a
plain tuple: the compiled path makes one per remote value of a page)."""


@dataclass
class _Batch:
    """The values wanted of one subgraph at one level, by entity."""

    wanted: dict[tuple[str, str], dict[_Key, Any]] = field(default_factory=dict)
    """Per entity (type, id), per key: its future (:meth:`RemoteFetcher.get`) or the
    indexes of the values wanting it (:meth:`RemoteFetcher.get_many`)."""
    count: int = 0


class Wanted(NamedTuple):
    """One value :meth:`RemoteFetcher.get_many` fetches: the arguments of
    :meth:`RemoteFetcher.get` (a named tuple: a page makes one per remote value)."""

    remote: RemoteField
    entity_id: str
    decision: FieldDecision
    selection: str
    record_id: str
    """The record's id as canonical text (as the read audit notes it)."""
    customer_id: str | None


class RemoteFetcher:
    """One request's remote fields: see the module docstring."""

    def __init__(self, principal: Principal, federation: Federation) -> None:
        self.principal = principal
        self.federation = federation
        self._batches: dict[str, _Batch] = {}
        # The loop keeps only weak references to tasks: these keep the sends alive.
        self._sending: set[asyncio.Task[None]] = set()

    async def get(
        self,
        remote: RemoteField,
        entity_id: str,
        decision: FieldDecision,
        selection: str,
        *,
        record_id: uuid.UUID,
        customer_id: uuid.UUID | None,
    ) -> Any:
        """The value of ``remote`` on the entity ``entity_id`` (its global id), as the
        row's ``decision`` shows it; ``selection`` is the printed sub-selection (empty
        for a leaf)."""
        batch = self._batches.get(remote.subgraph)
        if batch is None:
            batch = self._batches[remote.subgraph] = _Batch()
            task = asyncio.get_running_loop().create_task(self._send(remote.subgraph, batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        futures = batch.wanted.setdefault((remote.type_name, entity_id), {})
        key = (remote.name, selection)
        future = futures.get(key)
        if future is None:
            future = futures[key] = asyncio.get_running_loop().create_future()
            batch.count += 1
        value = await future
        return self._shown(remote, value, decision, record_id, customer_id)

    async def get_many(self, wanted: Sequence[Wanted], *, noted: bool = False) -> list[Any]:
        """The values of ``wanted`` (one level of a plan that knows all its entities at
        once, :mod:`schema.compiled`), as :meth:`get` answers each: masked, noted for the
        read audit, or a :class:`RemoteFieldError` (returned, not raised) when the
        subgraph failed. One ``_entities`` request per subgraph, sent at once (no waiting
        for the loop to go quiet), and no future, task or coroutine per value: a page's
        values are indexes into one list.

        ``noted``: the caller noted each record with its remote fields already (the
        compiled SQL pass notes a row's fields in one call); the fields of the values that
        failed are then taken back from the read audit's notes."""
        out: list[Any] = [None] * len(wanted)
        if _one_group(wanted):
            await self._fill_one(wanted, out)
            self._show_many(wanted, out, noted)
            return out
        batches: dict[str, _Batch] = {}
        for index, item in enumerate(wanted):
            remote = item.remote
            batch = batches.get(remote.subgraph)
            if batch is None:
                batch = batches[remote.subgraph] = _Batch()
            keys = batch.wanted.get((remote.type_name, item.entity_id))
            if keys is None:
                keys = batch.wanted[(remote.type_name, item.entity_id)] = {}
            slots = keys.get((remote.name, item.selection))
            if slots is None:
                keys[(remote.name, item.selection)] = [index]
            else:
                slots.append(index)
        if len(batches) == 1:
            for subgraph, batch in batches.items():
                await self._fill(subgraph, batch, out)
        else:
            await asyncio.gather(*(self._fill(s, b, out) for s, b in batches.items()))
        self._show_many(wanted, out, noted)
        return out

    async def _fill(self, subgraph: str, batch: _Batch, out: list[Any]) -> None:
        """Send ``batch`` (of :meth:`get_many`) to ``subgraph``; put each value, or the
        failure, at its indexes in ``out``."""
        try:
            data = await self._ask(subgraph, batch)
        except Exception as error:  # noqa: BLE001 — every waiting value must hear of it
            failure = self._failure(subgraph, error)
            for keys in batch.wanted.values():
                for slots in keys.values():
                    for index in slots:
                        out[index] = failure
            return
        for entities, fields, members in data:
            for entity, keys in zip(entities, members, strict=True):
                for key, slots in keys.items():
                    value = entity.get(fields[key]) if isinstance(entity, dict) else None
                    for index in slots:
                        out[index] = value

    async def _fill_one(self, wanted: Sequence[Wanted], out: list[Any]) -> None:
        """:meth:`_fill` for values that are one field (and sub-selection) of distinct
        entities of one type (:func:`_one_group`: a page's remote column): the same
        request :func:`_request` would build, without grouping entity by entity."""
        first = wanted[0]
        remote = first.remote
        subgraph = remote.subgraph
        document = (
            "query HubEntities($r0: [_Any!]!) { e0: _entities(representations: $r0) "
            f"{{ ... on {remote.type_name} {{ f0: {remote.name}{first.selection} }} }} }}"
        )
        type_name = remote.type_name
        variables = {"r0": [{"__typename": type_name, "id": w.entity_id} for w in wanted]}
        try:
            client = self.federation.clients.get(subgraph)
            if client is None:
                raise SubgraphError("it is no longer registered")
            entities = (await client.query(document, variables)).get("e0")
        except Exception as error:  # noqa: BLE001 — every waiting value must hear of it
            failure = self._failure(subgraph, error)
            out[:] = [failure] * len(wanted)
            return
        if isinstance(entities, list):
            # A short (or long) answer leaves the rest None, as _ask does.
            for index, entity in enumerate(entities[: len(out)]):
                out[index] = entity.get("f0") if isinstance(entity, dict) else None

    def _show_many(self, wanted: Sequence[Wanted], out: list[Any], noted: bool) -> None:
        """:meth:`_shown` for every fetched value of :meth:`get_many`, in place (with
        ``noted``, the failed ones are taken back from the read audit's notes)."""
        reads = disclosures.recording(self.principal)
        rules = access.rules
        names: dict[str, frozenset[str]] = {}
        for index, item in enumerate(wanted):
            value = out[index]
            remote = item.remote
            if isinstance(value, RemoteFieldError):
                if noted and reads is not None:
                    reads.forget_field(remote.resource.value, item.record_id, remote.name)
                continue
            if reads is not None and not noted:
                name = names.get(remote.name)
                if name is None:
                    name = names[remote.name] = frozenset({remote.name})
                record = item.record_id
                reads.note_fields(
                    remote.resource.value,
                    rules.version,
                    record,
                    record if item.customer_id is None else item.customer_id,
                    name,
                )
            decision = item.decision
            if value is not None and decision.outcome is Outcome.MASKED and decision.mask:
                out[index] = self._masked(decision.mask, value)

    def _shown(
        self,
        remote: RemoteField,
        value: Any,
        decision: FieldDecision,
        record_id: uuid.UUID,
        customer_id: uuid.UUID | None,
    ) -> Any:
        """A fetched value as the row's decision shows it, noted for the read audit."""
        reads = disclosures.recording(self.principal)
        if reads is not None:
            customer = record_id if customer_id is None else customer_id
            reads.note_fields(
                remote.resource.value,
                access.rules.version,
                str(record_id),
                str(customer),
                frozenset({remote.name}),
            )
        if value is not None and decision.outcome is Outcome.MASKED and decision.mask:
            return self._masked(decision.mask, value)
        return value

    def _masked(self, mask: MaskSpec, value: Any) -> Any:
        try:
            return apply_mask(
                mask,
                value,
                secret=access.rules.pseudonym_secret,
                partner=self.principal.organization_slug,
            )
        except (TypeError, ValueError, AttributeError):
            return None  # a value the mask cannot take (not the type declared): nothing

    async def _send(self, subgraph: str, batch: _Batch) -> None:
        # Let the level's other resolvers add their values first.
        seen = -1
        while seen != batch.count:
            seen = batch.count
            for _ in range(QUIET_TICKS):
                await asyncio.sleep(0)
        del self._batches[subgraph]  # what is wanted from now on is the next batch
        await self._deliver(subgraph, batch)

    async def _deliver(self, subgraph: str, batch: _Batch) -> None:
        """Send ``batch`` (of :meth:`get`) to ``subgraph``; every future of it gets its
        value or the failure."""
        try:
            data = await self._ask(subgraph, batch)
        except Exception as error:  # noqa: BLE001 — every waiting value must hear of it
            failure = self._failure(subgraph, error)
            for futures in batch.wanted.values():
                for future in futures.values():
                    if not future.done():
                        future.set_exception(failure)
            return
        for entities, fields, members in data:
            for entity, futures in zip(entities, members, strict=True):
                for key, future in futures.items():
                    value = entity.get(fields[key]) if isinstance(entity, dict) else None
                    if not future.done():
                        future.set_result(value)

    async def _ask(self, subgraph: str, batch: _Batch) -> list[_Group]:
        """Send ``batch``'s ``_entities`` request; per group of the request, the entities
        answered (one per member: a dict, or anything else when the subgraph answered
        badly), the aliases of its fields, and what waits for each member."""
        document, variables, groups = _request(batch)
        client = self.federation.clients.get(subgraph)
        if client is None:
            raise SubgraphError("it is no longer registered")
        data = await client.query(document, variables)
        answered: list[_Group] = []
        for alias, fields, members in groups:
            entities = data.get(alias)
            if not isinstance(entities, list):
                entities = []
            if len(entities) != len(members):  # a short (or long) answer: None for the rest
                entities = [*entities[: len(members)], *[None] * (len(members) - len(entities))]
            answered.append((entities, fields, members))
        return answered

    def _failure(self, subgraph: str, error: Exception) -> RemoteFieldError:
        logger.warning("subgraph %s failed: %s", subgraph, error)
        return RemoteFieldError(f"the subgraph '{subgraph}' failed: {_message(error)}")


def _one_group(wanted: Sequence[Wanted]) -> bool:
    """Whether ``wanted`` is one field (and sub-selection) of distinct entities: a page's
    remote column, the common case :meth:`RemoteFetcher._fill_one` sends directly."""
    if not wanted:
        return False
    first = wanted[0]
    remote, selection = first.remote, first.selection
    for item in wanted:
        if item.remote is not remote or item.selection != selection:
            return False
    return len({item.entity_id for item in wanted}) == len(wanted)


def _message(error: Exception) -> str:
    """What the caller is told: no address, no text of the subgraph's own errors (the
    log has them, for the operator)."""
    if isinstance(error, SubgraphError):
        return error.public
    return "its answer could not be read"


_Group = tuple[Any, dict[_Key, str], list[dict[_Key, Any]]]
"""One ``_entities`` of a request: its alias (once answered, the list of entities), the
aliases of its fields, and per member entity what waits for its values."""


def _request(batch: _Batch) -> tuple[str, dict[str, Any], list[_Group]]:
    """The ``_entities`` document for a batch: one aliased ``_entities`` per group of
    entities of one type wanting the same fields."""
    aliases: dict[_Key, str] = {}
    groups: dict[tuple[str, frozenset[_Key]], tuple[list[str], list[dict[_Key, Any]]]] = {}
    for (type_name, entity_id), waiting in batch.wanted.items():
        for key in waiting:
            if key not in aliases:
                aliases[key] = f"f{len(aliases)}"
        group = groups.get((type_name, frozenset(waiting)))
        if group is None:
            group = groups[(type_name, frozenset(waiting))] = ([], [])
        group[0].append(entity_id)
        group[1].append(waiting)
    parts: list[str] = []
    variables: dict[str, Any] = {}
    places: list[_Group] = []
    declared: list[str] = []
    for number, ((type_name, keys), (ids, members)) in enumerate(groups.items()):
        alias = f"e{number}"
        declared.append(f"$r{number}: [_Any!]!")
        variables[f"r{number}"] = [{"__typename": type_name, "id": i} for i in ids]
        ordered = sorted(keys, key=lambda k: aliases[k])
        selection = " ".join(f"{aliases[k]}: {k[0]}{k[1]}" for k in ordered)
        parts.append(
            f"{alias}: _entities(representations: $r{number}) "
            f"{{ ... on {type_name} {{ {selection} }} }}"
        )
        places.append((alias, {k: aliases[k] for k in keys}, members))
    document = f"query HubEntities({', '.join(declared)}) {{ {' '.join(parts)} }}"
    return document, variables, places
