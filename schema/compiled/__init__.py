"""Compiled reads (DESIGN §11): a query the compiled path covers is answered from a plan
(:mod:`schema.compiled.plan`, :mod:`schema.compiled.execute`) rather than by resolving
field by field; everything else (mutations, admin fields, introspection, any error) is
answered by the resolver path, chosen per request.

:class:`CompiledReads` is the entry point of the HTTP view. It parses (cached by text),
validates against the caller's schema exactly as the resolver path does (operation
limits, refused literals, the standard rules, the operation name: cached per schema and
text), plans, runs, and records the read audit and the operation's metrics as the
strawberry extensions do. It answers ``None`` whenever the resolver path must answer,
which then does so from scratch: nothing the compiled attempt did is kept (its read-audit
notes are dropped), so an operation's answer and its audit come from one path.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from graphql.execution.values import get_variable_values

from hub import disclosures, metrics
from hub.errors import HubError
from hub.outage import unavailable_dependency
from hub.settings import Settings
from schema import HubSchema
from schema.audit.extension import submit_reads
from schema.compiled.execute import execute
from schema.compiled.plan import Planner, Unsupported
from schema.context import Context
from schema.input_guard import literal_errors
from schema.limits import Limits, _standard_validation, check_limits, operation_cost

log = logging.getLogger("hub.compiled")

_CACHE_SIZE = 512

COMPILED = "compiled"
RESOLVERS = "resolvers"
"""The two read paths, as the request log names them (``read_path``)."""


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)


class _Refused:
    """A cache entry: the resolver path answers this document (for this schema)."""


_REFUSED = _Refused()


class CompiledReads:
    """Answers the queries the compiled path covers (see the module docstring)."""

    def __init__(self, limits: Limits, max_tokens: int) -> None:
        self.limits = limits
        self.max_tokens = max_tokens
        self._documents = _Lru(_CACHE_SIZE)
        self._valid = _Lru(_CACHE_SIZE)
        self._plans = _Lru(_CACHE_SIZE)

    @classmethod
    def from_settings(cls, settings: Settings) -> CompiledReads:
        """With the operation limits the schema validates with (:func:`schema.build_schema`)."""
        return cls(Limits.from_settings(settings), settings.max_tokens)

    def _document(self, query: str) -> DocumentNode | None:
        found = self._documents.get(query)
        if found is None:
            try:
                found = parse(query, max_tokens=self.max_tokens)
            except GraphQLError:
                found = _REFUSED
            self._documents.put(query, found)
        return None if found is _REFUSED else found

    def _operation(
        self, schema: HubSchema, query: str, operation_name: str | None
    ) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]] | None:
        """The operation to run, if the document is valid for ``schema`` and names one
        query operation unambiguously (else the resolver path words the errors)."""
        key = (schema._schema, query, operation_name)
        found = self._valid.get(key)
        if found is None:
            found = self._validate(schema, query, operation_name) or _REFUSED
            self._valid.put(key, found)
        return None if found is _REFUSED else found

    def _validate(
        self, schema: HubSchema, query: str, operation_name: str | None
    ) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]] | None:
        document = self._document(query)
        if document is None:
            return None
        if check_limits(document, self.limits) or literal_errors(document):
            return None
        if _standard_validation(schema._schema, document, tuple(specified_rules)):
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        if operation_name is None:
            if len(operations) != 1:
                return None
            operation = operations[0]
        else:
            named = [o for o in operations if o.name and o.name.value == operation_name]
            if len(named) != 1:
                return None
            operation = named[0]
        if operation.operation.value != "query":
            return None
        return operation, fragments

    async def answer(
        self,
        schema: HubSchema,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        context: Context,
    ) -> dict[str, Any] | None:
        """The response body (``data``; ``extensions``' withheld paths, as a list
        under ``"withheld"``; the formatted ``errors`` of remote fields whose subgraph
        failed, a list), or ``None``: the resolver path answers."""
        found = self._operation(schema, query, operation_name)
        if found is None:
            return self._fallback(context, "not a valid query")
        operation, fragments = found
        cost = context.cost  # as the HTTP view measured it, else measured here
        document = self._document(query) if cost is None else None
        if document is not None:
            cost = operation_cost(
                schema._schema, document, operation_name, variables, self.limits.default_page_size
            )
        if cost is not None and cost > self.limits.max_cost:
            return self._fallback(context, "over the cost limit")  # refused there
        # A plan depends on the variables' values (arguments, @skip/@include): cached with
        # them, so repeated requests (the same page for many partners, paging with the
        # same cursor) plan once.
        try:
            key = (schema._schema, query, operation_name, orjson.dumps(variables or {}))
        except TypeError:
            key = None
        plan = None if key is None else self._plans.get(key)
        if plan is None:
            coerced = get_variable_values(
                schema._schema, operation.variable_definitions or (), variables or {}
            )
            if isinstance(coerced, list):
                return self._fallback(context, "variables")
            try:
                planner = Planner(
                    schema, operation, fragments, coerced, context.settings.max_page_size
                )
                plan = planner.plan()
            except (Unsupported, HubError, GraphQLError, ValueError, TypeError) as why:
                return self._fallback(context, str(why))
            if key is not None:
                self._plans.put(key, plan)
        name = operation_name or (operation.name.value if operation.name else None)
        principal = context.principal
        with disclosures.collect(
            principal, operation=name, query=query, enabled=context.settings.audit_reads
        ) as reads:
            try:
                data, withheld, errors = await execute(plan, context)
            except Exception as error:
                if unavailable_dependency(error) is not None:
                    raise  # hub.outage answers 503, as on the resolver path
                return self._fallback(context, f"{type(error).__name__}: {error}")
        if reads is not None and reads.records:
            await submit_reads(context, reads)
        scope = context.request.scope
        metrics.note_operation(scope, "query", name)
        metrics.note_path(scope, COMPILED)
        scope.setdefault("hub.log", {})["read_path"] = COMPILED
        return {"data": data, "withheld": withheld, "errors": errors}

    @staticmethod
    def _fallback(context: Context, why: str) -> None:
        del context  # the HTTP view notes the resolver path (log and metrics)
        log.debug("resolver path: %s", why, exc_info=True)
        return None
