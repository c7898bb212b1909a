"""One SQL statement per root field, the response JSON built by PostgreSQL (DESIGN §11).

For a plan :mod:`schema.compiled.plan` built, this module writes, per root field, one
statement whose single value is the root field's JSON: the root page as a subquery under
the caller's row policy with its order and limit; each related connection as a correlated
subquery taking its own ordered, limited page and aggregating it into a JSON array; each
field's outcome on the row (visible, masked, withheld) decided in SQL from the rule
conditions it depends on (:meth:`hub.access.Access.outcomes`), masks applied in SQL
where SQL can. A short Python pass over the result then does what SQL should not:
cursors, the paths of withheld fields, and the read audit's notes; it walks only the
records that carry such work.

What it does not compile raises :class:`Unsupported`, and :mod:`schema.compiled.execute`
answers the plan from the access module's records instead (same answers, more CPU):
another backend than PostgreSQL, a sealed column or a mask SQL cannot apply (``pseudonym``,
``last4``, ``initials``) on a selected field, more rule conditions than can be enumerated.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from base64 import urlsafe_b64encode
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLOutputType,
    GraphQLScalarType,
    get_nullable_type,
)
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    inspect,
    literal,
    null,
    select,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.util import ClauseAdapter

from hub import disclosures, related
from hub.access import REGISTRY, Resource, access
from hub.access.catalog import DERIVED
from hub.access.policy_rules import conjuncts
from hub.access.resources import MODELS
from hub.db import DirectReads
from hub.disclosures import ReadCollector
from hub.models import Organization
from hub.pagination import Ordering, encode_cursor, page_size
from hub.principal import Principal
from policies import FieldDecision, Outcome, apply_mask
from policies.masks import DEFAULT_BUCKET_EDGES
from schema.compiled.dialects import JsonDialect, json_dialect
from schema.compiled.plan import (
    CONSENT_FIELDS,
    FIELDS,
    ConnectionPlan,
    EdgePlan,
    LinkPlan,
    ListRoot,
    NodesRoot,
    ObjectPlan,
    OrganizationPlan,
    PageInfoPlan,
    Plan,
    ProvenancePlan,
    RecordRoot,
    RemotePlan,
    TypenameRoot,
    Unsupported,
    customer_ref,
    serializer,
)
from schema.compiled.remote import RemoteValues
from schema.context import Context
from schema.ids import customer_reference

# Hidden keys of a row's JSON, read and removed by the Python pass.
_BITS = "__b"  # which rule conditions hold (an integer)
_ID = "__i"  # the record id, for the read audit
_CUSTOMER = "__c"  # the customer the record is about, for the read audit
_KEY = "__k"  # the ordering values, for cursors
_NODES = "__n"  # a page's records, for the read audit only


@dataclass(slots=True)
class _PythonField:
    """A field SQL selects raw and Python finishes: per bits value its decision."""

    key: str
    decisions: list[FieldDecision]
    open: Callable[[Any], Any]
    """The raw JSON value as the record holds it (a sealed value opened, a uuid parsed)."""
    serialize: Callable[[Any], Any]
    own_id: bool = False
    """The record's own global id: its raw value is the row's id as canonical text."""


@dataclass(slots=True)
class _Level:
    """What the Python pass does for the records of one object plan."""

    resource: Resource
    withheld: list[tuple[str, ...]]
    """Per bits value, the response keys answering ``null`` because withheld."""
    disclosed: list[frozenset[str]]
    """Per bits value, the fields the row carries (for the read audit, as the collector
    keeps them: one set per outcome, none built per row)."""
    uses_bits: bool
    cursors: bool = False
    python: list[_PythonField] = field(default_factory=list)
    links: list[tuple[str, _Level]] = field(default_factory=list)
    lateral: Any = None
    """The LATERAL subquery computing the row's bits: the row's select joins it."""
    customer_of_parent: bool = False
    """The records are about the enclosing record, a customer (for the read audit)."""
    provenance: list[tuple[str, ProvenancePlan]] = field(default_factory=list)
    """``Customer.provenance`` keys, listed by the pass from the stamps SQL selected."""
    nested: list[tuple[str, ConnectionPlan, _Connection]] = field(default_factory=list)
    consent: list[tuple[str, list[tuple[str, ...]]]] = field(default_factory=list)
    remote: list[tuple[str, RemotePlan, list[FieldDecision | None]]] = field(default_factory=list)
    """Remote fields: per bits value, the decision showing the field (``None``: the row
    does not, the field is withheld); the row's JSON holds ``null`` under the key (in its
    place in the selection's order) and the entity is the record's, from ``_ID``."""
    identified: bool = False
    """The row's JSON holds its id under ``_ID`` (for the read audit, for remote fields)."""
    id_key: str | None = None
    """Where the row's JSON holds its id as text already (its global id, before the pass
    encodes it): then ``_ID`` is not selected (on SQLite, formatting a uuid as text is
    five substr() and a concatenation per row the plan visits)."""
    noted: list[frozenset[str]] | None = None
    """With remote fields: per bits value, the fields the read audit notes of the row,
    the remote fields it shows included (taken back if their fetch fails)."""


@dataclass(slots=True)
class _Connection:
    ordering: Ordering
    node_keys: list[tuple[str, str]]
    """(edges key, node key) pairs under which the records sit."""
    cursor_keys: list[tuple[str, str]]
    """(edges key, cursor key) pairs to fill."""
    info_keys: list[tuple[str, str, str]]
    """(pageInfo key, field key, ``startCursor`` | ``endCursor``) to fill."""
    level: _Level | None = None
    audit_only: bool = False
    """No record is emitted, but the page's records are noted for the read audit."""


class _Compiler:
    def __init__(self, context: Context, dialect: JsonDialect) -> None:
        self.context = context
        self.dialect = dialect
        self.principal: Principal = context.principal
        self.settings = context.settings
        self.audit = disclosures.recording(self.principal) is not None
        self.on_path: set[Resource] = set()
        self.pending: list[_PythonField] = []
        self.aliases: dict[int, Resource] = {}
        """The resource of each aliased table a link reads (by the alias's id)."""
        self.parents: dict[int, Any] = {}
        """Per table or alias (by id) read as a nested connection being built: the table
        or alias of the enclosing row its rows hang off."""
        self.holds: dict[int, list[ColumnElement[bool]]] = {}
        """Per table or alias (by id) whose row encloses what is being built: the terms
        its row is known to satisfy (its ``WHERE``), which nested reads need not repeat."""

    def resource_of(self, model: Any) -> Resource:
        found = _RESOURCES.get(model)
        return found if found is not None else self.aliases[id(model)]

    def enclosing(
        self,
        model: Any,
        where: Sequence[ColumnElement[bool]],
        plan: ObjectPlan,
        adapter: ClauseAdapter | None = None,
        *,
        customer_of_parent: bool = False,
    ) -> tuple[ColumnElement[Any], _Level]:
        """:meth:`node` of ``plan`` on rows of ``model`` selected by ``where``: the reads
        nested in it know those terms hold on their enclosing row."""
        key = id(model)
        before = self.holds.get(key)
        self.holds[key] = [term for condition in where for term in conjuncts(condition)]
        try:
            return self.node(plan, model, adapter, customer_of_parent=customer_of_parent)
        finally:
            if before is None:
                del self.holds[key]
            else:
                self.holds[key] = before

    def nested_filter(self, resource: Resource, parent: Any) -> list[ColumnElement[bool]]:
        """The row policy of ``resource``'s rows related to the enclosing row of ``parent``
        (the feedback of one customer), as terms: conditions through that relation read
        the enclosing row (not a subquery per row), and terms the enclosing row's own
        ``WHERE`` already holds are left out (a partner's feedback repeats its
        customers' consent and assignment conditions)."""
        relation = related.PARENT_RELATION[resource]
        row = inspect(parent).selectable
        if (
            relation.target != self.resource_of(parent)
            or row is inspect(MODELS[resource]).selectable
        ):
            return [access.row_filter(self.principal, resource)]
        visible = access.row_filter_within(self.principal, resource, relation.name, row)
        held = self.holds.get(id(parent), [])
        return [term for term in conjuncts(visible) if not any(term.compare(h) for h in held)]

    # --- values ----------------------------------------------------------------------

    def field_sql(
        self,
        spec_name: str,
        model: Any,
        type_name: str,
        api_name: str,
        outcome: FieldDecision,
        serialize: Callable[[ColumnElement[Any]], ColumnElement[Any]],
    ) -> ColumnElement[Any] | None:
        """One field under one decision: its value, its masked value, or ``None`` (null
        on the row: withheld)."""
        if outcome.outcome is Outcome.HIDDEN:
            return None
        column = getattr(model, DERIVED.get(spec_name, spec_name))
        spec = REGISTRY[self.resource_of(model)].field_named(spec_name)
        if spec.sealed:
            raise Unsupported(f"sealed {type_name}.{api_name}")
        if outcome.outcome is Outcome.VISIBLE:
            return serialize(column)
        mask = outcome.mask
        if mask is None:
            return None
        if mask.name not in self.dialect.masks:
            raise Unsupported(f"mask {mask.name} in SQL")
        if mask.name == "redact":
            return case((column.is_(None), null()), else_=literal("[redacted]"))
        if mask.name == "year_only":
            return self.dialect.year(column)
        if mask.name == "partial_email":
            text = cast(column, Text)
            # rpartition("@"): the domain after the last "@", the local part before it.
            at = func.strpos(func.reverse(text), "@")
            domain = func.right(text, at - 1)
            local_first = func.left(text, 1)
            return case(
                (column.is_(None), null()),
                (at == 0, local_first + literal("***")),
                else_=func.left(func.left(text, func.length(text) - at), 1)
                + literal("***@")
                + domain,
            )
        edges = mask.edges or DEFAULT_BUCKET_EDGES
        whens: list[tuple[ColumnElement[bool], Any]] = [
            (column.is_(None), null()),
            (column < edges[0], literal(f"<{edges[0]}")),
        ]
        for low, high in itertools.pairwise(edges):
            whens.append((column < high, literal(f"{low}-{high - 1}")))
        return case(*whens, else_=literal(f"{edges[-1]}+"))

    def serializer(
        self, type_: GraphQLOutputType, type_name: str, name: str
    ) -> Callable[[ColumnElement[Any]], ColumnElement[Any]]:
        """A column as graphql-core would serialize the value read from it."""
        dialect = self.dialect
        nullable = get_nullable_type(type_)
        if isinstance(nullable, GraphQLEnumType):
            names = {
                (v.value.value if isinstance(v.value, enum.Enum) else v.value): n
                for n, v in nullable.values.items()
            }

            def serialize_enum(column: ColumnElement[Any]) -> ColumnElement[Any]:
                # A stored value outside the enum is an error on the resolver path; writes
                # validate enum fields, so SQL does not look for one.
                return case(names, value=column, else_=null())

            return serialize_enum
        if isinstance(nullable, GraphQLList):
            item = get_nullable_type(nullable.of_type)
            if isinstance(item, GraphQLScalarType) and item.name == "String":
                return dialect.document
            raise Unsupported(f"{type_name}.{name}: a list of {item}")
        if isinstance(nullable, GraphQLScalarType):
            if nullable.name in ("String", "ID", "Int"):
                return dialect.value
            if nullable.name == "Boolean":
                return dialect.boolean
            if nullable.name == "JSON":
                return dialect.document
            if nullable.name == "DateTime":
                return dialect.iso
            if nullable.name == "Decimal":
                return dialect.decimal_text
        raise Unsupported(f"{type_name}.{name} of type {type_}")

    def plain(self, column: Any) -> ColumnElement[Any]:
        """An ordering value as :func:`hub.pagination.encode_cursor` writes it."""
        type_name = type(column.type).__name__
        if "DateTime" in type_name:
            return self.dialect.iso(column)
        if "Uuid" in type_name or "UUID" in type_name:
            return self.dialect.uuid_text(column)
        plain: ColumnElement[Any] = column
        return plain

    # --- objects ---------------------------------------------------------------------

    def node(
        self,
        plan: ObjectPlan,
        model: Any,
        adapter: ClauseAdapter | None = None,
        *,
        customer_of_parent: bool = False,
    ) -> tuple[ColumnElement[Any], _Level]:
        """The JSON object of one record of ``plan`` (a row of ``model``; of an alias of
        its table when ``adapter`` rewrites the access module's conditions onto it).
        ``customer_of_parent``: the record is about the enclosing customer (the feedback
        of a customer), which the read audit takes from there."""
        resource = plan.resource
        outcomes = access.outcomes(self.principal, resource)
        if outcomes is None:
            raise Unsupported("too many row-dependent rule conditions")
        conditions, decisions = outcomes
        if adapter is not None:
            conditions = tuple(adapter.traverse(c) for c in conditions)
        combos = len(decisions)
        withheld: list[list[str]] = [[] for _ in range(combos)]
        bits: ColumnElement[Any] = literal(0)
        lateral = None
        dialect = self.dialect
        if conditions:
            summed = sum(
                (case((c, literal(1 << j)), else_=literal(0)) for j, c in enumerate(conditions)),
                start=literal(0),
            )
            if dialect.lateral:
                # Computed once per row (a LATERAL subquery the row's select joins), not
                # once per field that depends on it: each condition may be an EXISTS.
                lateral = select(summed.label("b")).correlate(model).lateral()
                bits = lateral.c.b
            else:
                bits = summed
        pairs: list[Any] = []
        level = _Level(
            resource,
            withheld=[],
            disclosed=[access.disclosed(d) for d in decisions],
            uses_bits=bool(conditions),
        )
        consent_withheld: list[tuple[str, list[list[str]]]] = []
        for key, name, emit in plan.entries:
            if isinstance(emit, ConnectionPlan):
                sub, connection = self.connection(emit, parent=model)
                level.nested.append((key, emit, connection))
                pairs += [literal(key), dialect.nested(sub)]
            elif isinstance(emit, LinkPlan):
                sub, linked, held = self.link(emit, model, decisions, bits)
                level.links.append((key, linked))
                for index, is_withheld in enumerate(held):
                    if is_withheld:
                        withheld[index].append(key)
                pairs += [literal(key), sub]
            elif isinstance(emit, OrganizationPlan):
                sub, held = self.organization(emit, model, decisions, bits)
                for index, is_withheld in enumerate(held):
                    if is_withheld:
                        withheld[index].append(key)
                pairs += [literal(key), sub]
            elif isinstance(emit, RemotePlan):
                if emit.remote.type_name != plan.type_name:
                    raise Unsupported(f"{emit.remote.coordinate} on {plan.type_name}")
                remote_decisions = self.remote_decisions(resource)
                shown: list[FieldDecision | None] = []
                for decided in remote_decisions:
                    decision = decided.get(emit.remote.name)
                    shown.append(decision if decision is not None and _carries(decision) else None)
                level.remote.append((key, emit, shown))
                # The entity's id is the row's own _ID: not formatted a second time (on
                # SQLite, five substr() and a concatenation per row the plan visits).
                pairs += [literal(key), null()]
            elif isinstance(emit, ProvenancePlan):
                sub, held = self.provenance(model, decisions, bits)
                level.provenance.append((key, emit))
                for index, is_withheld in enumerate(held):
                    if is_withheld:
                        withheld[index].append(key)
                pairs += [literal(key), sub]
            elif isinstance(emit, ObjectPlan):  # Customer.consent
                sub, inner = self.consent(emit, model, decisions, bits)
                consent_withheld.append((key, inner))
                pairs += [literal(key), sub]
            else:
                self.pending = []
                sql, held = self.leaf(plan.type_name, name, model, decisions, bits, emit)
                for python in self.pending:
                    python.key = key
                    level.python.append(python)
                for index, is_withheld in enumerate(held):
                    if is_withheld:
                        withheld[index].append(key)
                pairs += [literal(key), sql]
        if level.remote:
            level.noted = [
                level.disclosed[index]
                | {plan.remote.name for _, plan, shown in level.remote if shown[index]}
                for index in range(combos)
            ]
        level.withheld = [tuple(keys) for keys in withheld]
        level.consent = [(key, [tuple(k) for k in inner]) for key, inner in consent_withheld]
        needs_bits = level.uses_bits and (
            self.audit
            or bool(level.remote)
            or bool(level.python)
            or bool(level.provenance)
            or any(level.withheld)
            or any(any(inner) for _, inner in level.consent)
        )
        level.uses_bits = needs_bits
        if needs_bits:
            pairs += [literal(_BITS), bits]
        if self.audit or level.remote:
            level.id_key = next((p.key for p in level.python if p.own_id), None)
            if level.id_key is None:
                pairs += [literal(_ID), dialect.uuid_text(model.id)]
                level.identified = True
        if self.audit:
            if resource is not Resource.CUSTOMER and not customer_of_parent:
                pairs += [literal(_CUSTOMER), dialect.uuid_text(model.customer_id)]
            level.customer_of_parent = customer_of_parent
        level.lateral = lateral
        return dialect.object(pairs), level

    def provenance(
        self, model: Any, decisions: list[Mapping[str, FieldDecision]], bits: ColumnElement[Any]
    ) -> tuple[ColumnElement[Any], list[bool]]:
        """``Customer.provenance``: the stamps as stored where the row shows the field (the
        Python pass lists them, for the fields the row shows), ``null`` where withheld.
        Masked (``redact``, ``pseudonym``: the only masks a JSON field takes) it is
        ``null`` too, but shown: the mask makes the stamps a string, which lists nothing."""
        column = self.dialect.document(model.provenance)
        per_combo: list[ColumnElement[Any] | None] = []
        held: list[bool] = []
        for decided in decisions:
            decision = decided.get("provenance")
            if decision is None:
                raise Unsupported("Customer.provenance is not a catalog field")
            shown = _carries(decision)
            per_combo.append(column if decision.outcome is Outcome.VISIBLE else None)
            held.append(not shown)
        return _by_bits(per_combo, bits), held

    def remote_decisions(self, resource: Resource) -> list[Mapping[str, FieldDecision]]:
        """Per bits value, the decisions of the remote fields (which
        :meth:`hub.access.Access.outcomes` leaves out: they are not columns), enumerated
        as it enumerates the others: the same rule conditions, in the same order."""
        rules = access.rules
        columns = rules.rule_columns(self.principal, resource)
        decide = rules.decider(self.principal, resource)
        labels = [column.name for column in columns]
        remote = rules.remote.get(resource) or frozenset()
        return [
            {
                name: decision
                for name, decision in decide(
                    {label: bool(bits >> j & 1) for j, label in enumerate(labels)}
                ).items()
                if name in remote
            }
            for bits in range(1 << len(labels))
        ]

    def leaf(
        self,
        type_name: str,
        name: str,
        model: Any,
        decisions: list[Mapping[str, FieldDecision]],
        bits: ColumnElement[Any],
        emit: Any,
    ) -> tuple[ColumnElement[Any], list[bool]]:
        """One selected leaf: its SQL (chosen by the row's bits when its outcome varies),
        and per bits value whether it is withheld there."""
        if emit is customer_ref:
            return self.customer_ref(type_name, model, decisions, bits)
        leaf = FIELDS.get(emit)
        if leaf is None:
            raise Unsupported(f"{type_name}.{name}")
        if leaf.kind == "constant":
            return literal(leaf.constant), [False] * len(decisions)
        if leaf.kind == "global_id":
            # Encoded by the Python pass: base64 in SQL cost PostgreSQL more per row than
            # it costs Python (encode, translate and rtrim on a concatenated text).
            prefix = f"{type_name}:"
            self.pending.append(
                _PythonField(
                    "",
                    [_VISIBLE] * len(decisions),
                    partial(_encode_id, prefix),
                    _same_python,
                    own_id=True,
                )
            )
            return self.dialect.uuid_text(model.id), [False] * len(decisions)
        assert leaf.graphql_type is not None
        python = self.python_field(leaf.key, model, decisions)
        if python is not None:
            column, opener = python
            shown = [_carries(d[leaf.key]) for d in decisions]
            self.pending.append(
                _PythonField(
                    "", [d[leaf.key] for d in decisions], opener, serializer(leaf.graphql_type)
                )
            )
            return _by_bits([column if c else None for c in shown], bits), [not c for c in shown]
        serialize = self.serializer(leaf.graphql_type, type_name, name)
        per_combo: list[ColumnElement[Any] | None] = []
        held: list[bool] = []
        for decided in decisions:
            decision = decided.get(leaf.key)
            if decision is None:
                raise Unsupported(f"{type_name}.{name} is not a catalog field")
            sql = self.field_sql(leaf.key, model, type_name, name, decision, serialize)
            per_combo.append(sql)
            held.append(sql is None)
        return _by_bits(per_combo, bits), held

    def python_field(
        self, spec_name: str, model: Any, decisions: list[Mapping[str, FieldDecision]]
    ) -> tuple[ColumnElement[Any], Callable[[Any], Any]] | None:
        """The raw column and how to read it, when Python must finish the field: sealed,
        or masked somewhere by a mask SQL cannot apply (on a text column, whose JSON
        value is the Python value)."""
        column = getattr(model, DERIVED.get(spec_name, spec_name))
        spec = REGISTRY[self.resource_of(model)].field_named(spec_name)
        if spec.sealed:
            sealed_type = column.type

            def open_sealed(raw: Any) -> Any:
                return sealed_type.process_result_value(raw, None)

            return column, open_sealed
        in_python = False
        for decided in decisions:
            mask = decided[spec_name].mask
            if decided[spec_name].outcome is Outcome.MASKED and mask is not None:
                in_python = in_python or mask.name not in self.dialect.masks
        if not in_python:
            return None
        if not isinstance(column.type, String):
            raise Unsupported(f"mask in Python on {spec_name} ({column.type})")
        return column, _same_python

    def customer_ref(
        self,
        type_name: str,
        model: Any,
        decisions: list[Mapping[str, FieldDecision]],
        bits: ColumnElement[Any],
    ) -> tuple[ColumnElement[Any], list[bool]]:
        """``customerRef``: the customer's global id when ``customer_ref`` or
        ``customer_id`` is visible on the row, its mask when masked (in SQL only
        ``redact``), else withheld (as ``customer_ref()`` resolves a record)."""
        per_combo: list[ColumnElement[Any] | None] = []
        dialect = self.dialect
        raw_id = dialect.uuid_text(model.customer_id)
        # Where the database does not encode global ids, Python finishes every row.
        in_sql = dialect.global_ids_in_sql
        shown_id = dialect.global_id("Customer", model.customer_id) if in_sql else raw_id
        masked = not in_sql
        for decided in decisions:
            ref, own = decided["customer_ref"], decided["customer_id"]
            if ref.outcome is Outcome.VISIBLE:
                per_combo.append(shown_id)
            elif ref.outcome is Outcome.MASKED and ref.mask is not None:
                per_combo.append(raw_id)
                masked = True
            elif own.outcome is Outcome.VISIBLE:
                per_combo.append(shown_id)
            else:
                per_combo.append(None)
        if masked:
            # Python finishes every row: the mask on some, the global id on others.
            per_decision = []
            for decided in decisions:
                ref, own = decided["customer_ref"], decided["customer_id"]
                masks = ref.outcome is Outcome.MASKED and ref.mask is not None
                per_decision.append(ref if masks else _GLOBAL_ID)
            self.pending.append(_PythonField("", per_decision, _uuid_or_none, _ref_text))
            raw = [None if v is None else raw_id for v in per_combo]
            return _by_bits(raw, bits), [v is None for v in per_combo]
        return _by_bits(per_combo, bits), [v is None for v in per_combo]

    def link(
        self,
        link: LinkPlan,
        model: Any,
        decisions: list[Mapping[str, FieldDecision]],
        bits: ColumnElement[Any],
    ) -> tuple[ColumnElement[Any], _Level, list[bool]]:
        """A link to one record (``Feedback.customer``): a correlated subquery on an alias
        of the target's table under the target's row policy, where the row shows the id
        (null where it is withheld)."""
        enclosing = self.parents.get(id(model))
        if (
            enclosing is not None
            and self.resource_of(enclosing) is link.resource
            and DERIVED.get(link.feeder, link.feeder)
            == related.PARENT_COLUMN[self.resource_of(model)]
        ):
            found = self.enclosing_link(link, enclosing, decisions, bits)
            if found is not None:
                return found
        target: Any = aliased(MODELS[link.resource])
        self.aliases[id(target)] = link.resource
        adapter = ClauseAdapter(inspect(target).selectable)
        visible = adapter.traverse(access.row_filter(self.principal, link.resource))
        node_sql, level = self.enclosing(target, [visible], link.object, adapter)
        feeder = getattr(model, DERIVED.get(link.feeder, link.feeder))
        one = _joined(select(node_sql), level).where(target.id == feeder, visible).correlate(model)
        return _linked(link, self.dialect.nested(one.scalar_subquery()), decisions, bits, level)

    def enclosing_link(
        self,
        link: LinkPlan,
        enclosing: Any,
        decisions: list[Mapping[str, FieldDecision]],
        bits: ColumnElement[Any],
    ) -> tuple[ColumnElement[Any], _Level, list[bool]] | None:
        """A link back to the enclosing record (a customer's feedback's ``customer``):
        built from the enclosing row itself, no subquery per row. That row passed the
        same row policy (the resource's, for the same caller) and is the one the link's
        column names. ``None`` where its field outcomes vary per row (a LATERAL would
        have to join the enclosing row's select): the subquery then."""
        adapter = None if enclosing in _RESOURCES else ClauseAdapter(inspect(enclosing).selectable)
        node_sql, level = self.node(link.object, enclosing, adapter)
        if level.lateral is not None:
            return None
        return _linked(link, node_sql, decisions, bits, level)

    def organization(
        self,
        plan: OrganizationPlan,
        model: Any,
        decisions: list[Mapping[str, FieldDecision]],
        bits: ColumnElement[Any],
    ) -> tuple[ColumnElement[Any], list[bool]]:
        """A link to an organization (``Feedback.organization``): a correlated subquery on
        an alias of its table, where the row shows the id (null where withheld)."""
        target: Any = aliased(Organization)
        pairs: list[Any] = []
        for key, name, type_ in plan.parts:
            if type_ is None:
                pairs += [literal(key), literal(plan.type_name)]
            else:
                serialize = self.serializer(type_, plan.type_name, name)
                pairs += [literal(key), serialize(getattr(target, name))]
        feeder = getattr(model, plan.feeder)
        one = select(self.dialect.object(pairs)).where(target.id == feeder).correlate(model)
        per_combo: list[ColumnElement[Any] | None] = []
        for decided in decisions:
            decision = decided[plan.feeder]
            if decision.outcome is Outcome.MASKED and decision.mask is not None:
                raise Unsupported(f"a link by a masked {plan.feeder}")
            shown = decision.outcome is Outcome.VISIBLE
            per_combo.append(self.dialect.nested(one.scalar_subquery()) if shown else None)
        return _by_bits(per_combo, bits), [v is None for v in per_combo]

    def consent(
        self,
        plan: ObjectPlan,
        model: Any,
        decisions: list[Mapping[str, FieldDecision]],
        bits: ColumnElement[Any],
    ) -> tuple[ColumnElement[Any], list[list[str]]]:
        """``Customer.consent``: null unless some consent field is shown or withheld on
        the row (as ``Customer.from_record`` builds it)."""
        pairs: list[Any] = []
        withheld: list[list[str]] = [[] for _ in decisions]
        for key, name, emit in plan.entries:
            if name == "__typename":
                pairs += [literal(key), literal(plan.type_name)]
                continue
            self.pending = []
            sql, held = self.leaf(plan.type_name, name, model, decisions, bits, emit)
            if self.pending:
                raise Unsupported("a consent field finished in Python")
            for index, is_withheld in enumerate(held):
                if is_withheld:
                    withheld[index].append(key)
            pairs += [literal(key), sql]
        present: list[ColumnElement[Any] | None] = []
        for decided in decisions:
            shown = bool(access.disclosed(decided) & set(CONSENT_FIELDS)) or _withholds(
                decided, CONSENT_FIELDS, self.principal
            )
            present.append(true() if shown else None)
        exists = _by_bits(present, bits)
        return case((exists.is_(None), null()), else_=self.dialect.object(pairs)), withheld

    # --- connections -----------------------------------------------------------------

    def connection(
        self,
        plan: ConnectionPlan,
        *,
        parent: Any | None = None,
        conditions: list[ColumnElement[bool]] | None = None,
        ordering: Ordering | None = None,
    ) -> tuple[ColumnElement[Any], _Connection]:
        """A connection's JSON: the root page (``conditions``, ``ordering``) or the page of
        related records of the enclosing row of ``parent``."""
        resource = plan.resource
        # A resource already read on the path (feedback -> customer -> feedback) is read
        # from an alias of its table, so the two levels' rows are told apart.
        again = resource in self.on_path
        self.on_path.add(resource)
        try:
            return self._connection(plan, parent, conditions, ordering, again)
        finally:
            if not again:
                self.on_path.discard(resource)

    def _connection(
        self,
        plan: ConnectionPlan,
        parent: Any | None,
        conditions: list[ColumnElement[bool]] | None,
        ordering: Ordering | None,
        aliased_table: bool,
    ) -> tuple[ColumnElement[Any], _Connection]:
        resource = plan.resource
        model: Any = MODELS[resource]
        adapter: ClauseAdapter | None = None
        if aliased_table:
            model = aliased(model)
            self.aliases[id(model)] = resource
            adapter = ClauseAdapter(inspect(model).selectable)
        settings = self.settings
        size = page_size(
            plan.first, default=settings.default_page_size, maximum=settings.max_page_size
        )
        if ordering is None:
            ordering = related.ordering(resource)
        if conditions is None:
            assert parent is not None
            parent_column = getattr(model, related.PARENT_COLUMN[resource])
            visible = self.nested_filter(resource, parent)
            if adapter is not None:
                visible = [adapter.traverse(term) for term in visible]
            conditions = [parent_column == parent.id, *visible]
        where = list(conditions)
        if plan.after:
            after = ordering.after(plan.after)
            where.append(after if adapter is None else adapter.traverse(after))
        columns: list[Any] = list(ordering.columns)
        if adapter is not None:
            columns = [getattr(model, c.key) for c in columns]

        objects = plan.objects
        connection = _Connection(ordering, [], [], [])
        # Rows hanging off the enclosing customer by their customer column are about it.
        customer_of_parent = (
            parent is not None
            and related.PARENT_RELATION[resource].target == Resource.CUSTOMER
            and self.resource_of(parent) is Resource.CUSTOMER
        )
        node_sql: ColumnElement[Any] = null()
        if parent is not None:
            self.parents[id(model)] = parent
        try:
            if objects:
                if len(objects) > 1:
                    raise Unsupported("several node selections on one connection")
                node_sql, connection.level = self.enclosing(
                    model, where, objects[0], adapter, customer_of_parent=customer_of_parent
                )
            elif self.audit:
                # The read audit notes the page's records even when no field of theirs is
                # asked for (only totalCount or pageInfo), as the resolver path does.
                node_sql, connection.level = self.enclosing(
                    model,
                    where,
                    ObjectPlan(plan.type_name, resource),
                    adapter,
                    customer_of_parent=customer_of_parent,
                )
                connection.audit_only = True
        finally:
            self.parents.pop(id(model), None)
        needs_cursor = any(
            part == "cursor"
            for _, kind, sub in plan.parts
            if kind == "edges" and isinstance(sub, EdgePlan)
            for _, part, _ in sub.parts
        ) or any(
            name in ("startCursor", "endCursor")
            for _, kind, sub in plan.parts
            if isinstance(sub, PageInfoPlan)
            for _, name in sub.parts
        )
        dialect = self.dialect
        key_sql: ColumnElement[Any] = null()
        if needs_cursor:
            key_sql = dialect.array([self.plain(c) for c in columns])

        ordered = [c.desc() if ordering.descending else c.asc() for c in columns]
        # Rows are numbered only to tell hasNextPage: a window over each page costs
        # PostgreSQL about a tenth of a partner's page where nobody asks.
        numbered = dialect.numbers_rows and any(
            name == "hasNextPage"
            for _, _, sub in plan.parts
            if isinstance(sub, PageInfoPlan)
            for _, name in sub.parts
        )
        page_select = (
            _joined(
                select(
                    node_sql.label("node"),
                    key_sql.label("k"),
                    *(c.label(f"o{i}") for i, c in enumerate(columns)),
                ),
                connection.level,
            )
            .where(*where)
            .order_by(*ordered)
            .limit(dialect.size(size + 1 if numbered else size))
        )
        if parent is not None:
            # The parent's row is the enclosing record (a correlated subquery, two levels
            # down: PostgreSQL lets a derived table refer to an outer query's row).
            page_select = page_select.correlate(parent)
        inner = page_select.subquery()
        rows: Any = inner
        inner_order = [
            inner.c[f"o{i}"].desc() if ordering.descending else inner.c[f"o{i}"].asc()
            for i in range(len(columns))
        ]
        order: list[Any] = inner_order
        in_page: Any = None
        if numbered:
            # The page and the row after it (hasNextPage), numbered in their order.
            rn = func.row_number().over(order_by=inner_order).label("rn")
            rows = select(inner.c.node, inner.c.k, rn).subquery()
            order = [rows.c.rn]
            in_page = rows.c.rn <= dialect.size(size)
        node_value = dialect.nested(rows.c.node)
        key_value = dialect.nested(rows.c.k)

        pairs: list[Any] = []
        aggregated = False
        for key, part, sub in plan.parts:
            if part == "__typename":
                pairs += [literal(key), literal(plan.type_name)]
            elif part == "totalCount":
                counted = select(func.count()).select_from(model).where(*conditions)
                if parent is not None:
                    counted = counted.correlate(parent)
                total = counted.scalar_subquery()
                pairs += [literal(key), total]
            elif isinstance(sub, PageInfoPlan):
                info: list[Any] = []
                for info_key, name in sub.parts:
                    if name == "hasNextPage" and numbered:
                        aggregated = True
                        info += [
                            literal(info_key),
                            dialect.boolean(func.count() > dialect.size(size)),
                        ]
                    elif name == "hasNextPage":
                        more = (
                            select(literal(1))
                            .select_from(model)
                            .where(*where)
                            .limit(dialect.size(size + 1))
                        )
                        if parent is not None:
                            more = more.correlate(parent)
                        counted = select(func.count()).select_from(more.subquery())
                        beyond = counted.scalar_subquery() > dialect.size(size)
                        info += [literal(info_key), dialect.boolean(beyond)]
                    elif name == "hasPreviousPage":
                        info += [literal(info_key), dialect.flag(bool(plan.after))]
                    elif name == "__typename":
                        info += [literal(info_key), literal("PageInfo")]
                    else:
                        connection.info_keys.append((key, info_key, name))
                        info += [literal(info_key), null()]
                if any(n in ("startCursor", "endCursor") for _, n in sub.parts):
                    aggregated = True
                    info += [literal(_KEY), dialect.page_array(key_value, order, in_page)]
                pairs += [literal(key), dialect.object(info)]
            elif isinstance(sub, EdgePlan):
                aggregated = True
                edge: list[Any] = []
                for edge_key, part_name, node in sub.parts:
                    if node is not None:
                        connection.node_keys.append((key, edge_key))
                        edge += [literal(edge_key), node_value]
                    elif part_name == "cursor":
                        connection.cursor_keys.append((key, edge_key))
                        edge += [literal(edge_key), null()]
                    else:
                        edge += [literal(edge_key), literal(sub.type_name)]
                if any(part_name == "cursor" for _, part_name, _ in sub.parts):
                    edge += [literal(_KEY), key_value]
                edges = dialect.page_array(dialect.object(edge), order, in_page)
                pairs += [literal(key), edges]
        if connection.audit_only:
            aggregated = True
            pairs += [literal(_NODES), dialect.page_array(node_value, order, in_page)]
        # Without an aggregate (only totalCount, __typename, hasPreviousPage) the object
        # must not repeat per row of the page: it reads nothing from it.
        statement = select(dialect.object(pairs))
        if aggregated:
            statement = statement.select_from(rows)
        return statement.scalar_subquery(), connection


_RESOURCES: dict[Any, Resource] = {model: resource for resource, model in MODELS.items()}


_GLOBAL_ID = FieldDecision(Outcome.VISIBLE, None, "")
"""``customerRef`` shown as the customer's global id (not masked) on such rows."""


def _carries(decision: FieldDecision) -> bool:
    return decision.outcome is Outcome.VISIBLE or (
        decision.outcome is Outcome.MASKED and decision.mask is not None
    )


_VISIBLE = FieldDecision(Outcome.VISIBLE)


def _linked(
    link: LinkPlan,
    value: ColumnElement[Any],
    decisions: list[Mapping[str, FieldDecision]],
    bits: ColumnElement[Any],
    level: _Level,
) -> tuple[ColumnElement[Any], _Level, list[bool]]:
    """A link's value on the row: the linked object where the row shows the link's
    column (by the row's bits), ``null`` where it is withheld; and per bits value whether
    it is withheld."""
    per_combo: list[ColumnElement[Any] | None] = []
    for decided in decisions:
        decision = decided[link.feeder]
        if decision.outcome is Outcome.MASKED and decision.mask is not None:
            raise Unsupported(f"a link by a masked {link.feeder}")
        per_combo.append(value if decision.outcome is Outcome.VISIBLE else None)
    return _by_bits(per_combo, bits), level, [v is None for v in per_combo]


def _encode_id(prefix: str, raw: str) -> str:
    """``schema.ids.to_global_id`` of a row's id as PostgreSQL writes a uuid as text
    (lower-case, hyphenated: as ``str(uuid.UUID)``)."""
    return urlsafe_b64encode(f"{prefix}{raw}".encode()).decode().rstrip("=")


def _same_python(raw: Any) -> Any:
    return raw


def _uuid_or_none(raw: Any) -> Any:
    return None if raw is None else uuid.UUID(raw)


def _ref_text(value: Any) -> Any:
    """``customerRef`` of a value (the customer's uuid, or its mask)."""
    return customer_reference(value)


def _withholds(
    decisions: Mapping[str, FieldDecision], names: tuple[str, ...], principal: Principal
) -> bool:
    """Whether a row with ``decisions`` withholds one of ``names`` the caller's schema
    shows (``Customer.from_record`` then still builds ``consent``)."""
    shown = access.shown_fields(principal, Resource.CUSTOMER)
    return any(
        name in shown
        and (
            decisions[name].outcome is Outcome.HIDDEN
            or (decisions[name].outcome is Outcome.MASKED and decisions[name].mask is None)
        )
        for name in names
    )


def _joined(statement: Select[Any], level: _Level | None) -> Select[Any]:
    """``statement`` joined to the LATERAL subquery computing its rows' bits, if any."""
    if level is None or level.lateral is None:
        return statement
    return statement.join(level.lateral, true())


def _by_bits(values: Sequence[ColumnElement[Any] | None], bits: ColumnElement[Any]) -> Any:
    """One SQL value chosen by the row's bits: ``values[bits]`` (``None``: null)."""
    first = values[0]
    if all(_same(v, first) for v in values):
        return null() if first is None else first
    whens = [(bits == index, value) for index, value in enumerate(values) if value is not None]
    return case(*whens, else_=null())


def _same(a: ColumnElement[Any] | None, b: ColumnElement[Any] | None) -> bool:
    return a is b or (a is not None and b is not None and a.compare(b))


# --- running ------------------------------------------------------------------------------


class _Pass:
    """The Python pass over a root field's JSON: cursors, withheld paths, audit notes."""

    def __init__(
        self, reads: ReadCollector | None, version: int, secret: bytes, partner: str
    ) -> None:
        self.reads = reads
        self.version = version
        self.secret = secret
        self.partner = partner
        self.withheld: list[list[str | int]] = []
        self.remote = RemoteValues(noted=True)

    def object(
        self,
        level: _Level,
        record: dict[str, Any],
        path: tuple[Any, ...],
        enclosing: str | None = None,
    ) -> None:
        """Finish one record; ``enclosing``: the id of the record it is nested in."""
        bits = record.pop(_BITS, 0) if level.uses_bits else 0
        # Canonical text (JsonDialect.uuid_text), as the collector keeps ids.
        record_id: str | None
        if level.identified:
            record_id = record.pop(_ID)
        elif level.id_key is not None:
            record_id = record[level.id_key]  # read before the pass encodes it
        else:
            record_id = None
        for python in level.python:
            raw = record.get(python.key)
            if raw is None:
                continue
            decided = python.decisions[bits]
            value = python.open(raw)
            if decided.outcome is Outcome.MASKED and decided.mask is not None:
                value = apply_mask(decided.mask, value, secret=self.secret, partner=self.partner)
            record[python.key] = python.serialize(value)
        for key, plan, shown in level.remote:
            decision = shown[bits]
            if decision is None or record_id is None:
                self.withheld.append([*path, key])
            else:
                entity = (
                    _encode_id(f"{plan.remote.type_name}:", record_id)
                    if level.id_key is None
                    else record[level.id_key]  # the same global id, encoded above
                )
                self.remote.want(plan, record, key, [*path, key], entity, record_id, decision)
        for key in level.withheld[bits] if level.withheld else ():
            if key in record:
                self.withheld.append([*path, key])
        for key, inner in level.consent:
            consent = record.get(key)
            if consent is not None:
                for consent_key in inner[bits]:
                    self.withheld.append([*path, key, consent_key])
        for key, provenance in level.provenance:
            stamps = record.get(key)
            if stamps is not None:
                record[key] = provenance.entries(stamps, level.disclosed[bits])
        if self.reads is not None and record_id is not None:
            customer = enclosing if level.customer_of_parent else record.pop(_CUSTOMER, None)
            self.reads.note_fields(
                level.resource,  # a StrEnum: the str itself (``.value`` is a descriptor call)
                self.version,
                record_id,
                record_id if customer is None else customer,
                level.disclosed[bits] if level.noted is None else level.noted[bits],
            )
        for key, linked in level.links:
            value = record.get(key)
            if value is not None:
                self.object(linked, value, (*path, key))
        for key, _, connection in level.nested:
            if key in record:
                self.connection(connection, record[key], (*path, key), record_id)

    def connection(
        self,
        plan: _Connection,
        value: dict[str, Any],
        path: tuple[Any, ...],
        enclosing: str | None = None,
    ) -> None:
        key = plan.ordering.key
        if plan.audit_only and plan.level is not None:
            for node in value.pop(_NODES):
                self.object(plan.level, node, path, enclosing)
        for edges_key, node_key in plan.node_keys:
            if plan.level is None:
                continue
            for index, edge in enumerate(value.get(edges_key) or ()):
                node = edge.get(node_key)
                if node is not None:
                    self.object(plan.level, node, (*path, edges_key, index, node_key), enclosing)
        for edges_key, cursor_key in plan.cursor_keys:
            for edge in value.get(edges_key) or ():
                edge[cursor_key] = encode_cursor(key, tuple(edge[_KEY]))
        for info_key, field_key, name in plan.info_keys:
            info = value[info_key]
            keys = info[_KEY]
            if keys:
                chosen = keys[0] if name == "startCursor" else keys[-1]
                info[field_key] = encode_cursor(key, tuple(chosen))
        for info_key, _, _ in plan.info_keys:
            value[info_key].pop(_KEY, None)
        for edges_key, _ in plan.cursor_keys:
            for edge in value.get(edges_key) or ():
                edge.pop(_KEY, None)


Finish = Callable[[Any, "_Pass"], Any]


@dataclass(slots=True)
class _Statement:
    """A compiled statement: its text and its positional parameters."""

    text: str
    parameters: tuple[Any, ...]


@dataclass(slots=True)
class _Compiled:
    """A plan's statements compiled for one caller: SQL text, parameters, finishing."""

    plan: Plan
    statements: list[tuple[str, _Statement | None, Finish]]
    refused: str | None = None
    """Why the database refused a statement of the plan (too deep for its parser)."""


_STATEMENTS: OrderedDict[tuple[Hashable, ...], _Compiled] = OrderedDict()
_STATEMENTS_SIZE = 512


def _caller_key(
    plan: Plan, dialect: str, principal: Principal, audit: bool
) -> tuple[Hashable, ...]:
    """What a plan's SQL depends on besides the plan: the rules in force and everything
    of the caller they bind (as :class:`hub.access.policy_rules.PolicyRules` keys its
    compiled rules), and whether its reads are audited."""
    rules = access.rules
    attributes = orjson.dumps(dict(principal.attributes), option=orjson.OPT_SORT_KEYS, default=str)
    return (
        id(plan),
        dialect,
        id(rules),
        rules.version,
        principal.organization_id,
        principal.organization_slug,
        principal.organization_kind,
        principal.roles,
        principal.scopes,
        attributes,
        audit,
    )


def _compile(plan: Plan, context: Context, dialect: Dialect) -> _Compiled:
    """Build and compile every statement of ``plan`` (before any runs: what cannot be
    compiled is known before the session has done anything)."""
    principal = context.principal
    json = json_dialect(dialect)
    compiler = _Compiler(context, json)
    statements: list[tuple[str, _Statement | None, Finish]] = []

    def compiled(sql: ColumnElement[Any]) -> _Statement:
        # Expanding parameters (IN lists) become plain ones, so the text runs as it is.
        done = select(json.text(sql)).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        assert isinstance(done, SQLCompiler)
        return _Statement(done.string, json.parameters(done))

    for key, root in plan.roots:
        if isinstance(root, TypenameRoot):
            statements.append((key, None, _Constant(root.type_name)))
        elif isinstance(root, ListRoot):
            conditions, ordering = root.query(principal)
            page, connection = compiler.connection(
                root.connection, conditions=conditions, ordering=ordering
            )
            statements.append((key, compiled(page), _FinishConnection(connection, key)))
        elif isinstance(root, NodesRoot):
            # One statement: a JSON array of one correlated lookup per id, in order.
            items = [record(compiler, principal, item) for item in root.items]
            array = json.array([null() if sql is None else json.nested(sql) for sql, _ in items])
            levels = [level for _, level in items]
            statements.append((key, compiled(array), _FinishList(levels, key)))
        elif isinstance(root, RecordRoot):
            sql, level = record(compiler, principal, root)
            if sql is None or level is None:
                statements.append((key, None, _Constant(None)))
            else:
                statements.append((key, compiled(sql), _FinishObject(level, key)))
    return _Compiled(plan, statements)


def record(
    compiler: _Compiler, principal: Principal, root: RecordRoot
) -> tuple[ColumnElement[Any] | None, _Level | None]:
    """One record by id under its row policy (``None``: the answer is ``null``)."""
    if root.record_id is None or root.object is None:
        return None, None
    model: Any = MODELS[root.resource]
    where = [model.id == root.record_id, access.row_filter(principal, root.resource)]
    compiler.on_path.add(root.resource)
    node_sql, level = compiler.enclosing(model, where, root.object)
    compiler.on_path.discard(root.resource)
    one = _joined(select(node_sql), level).where(*where)
    return one.scalar_subquery(), level


async def execute_sql(
    plan: Plan, context: Context, connection: DirectReads
) -> tuple[dict[str, Any], list[list[str | int]], RemoteValues]:
    """The response data of ``plan``: one statement per root field, run on ``connection``
    (:meth:`hub.db.Database.direct`: through the driver, no transaction around them).

    The statements are compiled once per plan and caller (:func:`_caller_key`) and run
    as their SQL text: no expression tree is built, keyed or compiled per request, and no
    SQLAlchemy connection or result object is made to run them."""
    dialect = connection.dialect
    principal = context.principal
    reads = disclosures.recording(principal)
    key = _caller_key(plan, dialect.name, principal, reads is not None)
    found = _STATEMENTS.get(key)
    if found is None or found.plan is not plan:
        found = _compile(plan, context, dialect)
        _STATEMENTS[key] = found
        if len(_STATEMENTS) > _STATEMENTS_SIZE:
            _STATEMENTS.popitem(last=False)
    else:
        _STATEMENTS.move_to_end(key)
    python = _Pass(
        reads, access.rules.version, access.rules.pseudonym_secret, principal.organization_slug
    )
    if found.refused is not None:
        raise Unsupported(found.refused)
    data: dict[str, Any] = {}
    for response_key, statement, finish in found.statements:
        value = None
        if statement is not None:
            try:
                text = await connection.value(statement.text, statement.parameters)
            except DBAPIError as error:
                refused = json_dialect(dialect).refused(error)
                if refused is None:
                    raise
                # Nothing was read: the plan runs from the records, now and from now on.
                found.refused = refused
                raise Unsupported(refused) from error
            value = None if text is None else orjson.loads(text)
        data[response_key] = finish(value, python)
    return data, python.withheld, python.remote


class _Constant:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, value: Any, python: _Pass) -> Any:
        del value, python
        return self.value


class _FinishConnection:
    def __init__(self, connection: _Connection, key: str) -> None:
        self.connection = connection
        self.key = key

    def __call__(self, value: Any, python: _Pass) -> Any:
        python.connection(self.connection, value, (self.key,))
        return value


class _FinishList:
    def __init__(self, levels: list[_Level | None], key: str) -> None:
        self.levels = levels
        self.key = key

    def __call__(self, value: Any, python: _Pass) -> Any:
        for index, (item, level) in enumerate(zip(value, self.levels, strict=True)):
            if item is not None and level is not None:
                python.object(level, item, (self.key, index))
        return value


class _FinishObject:
    def __init__(self, level: _Level, key: str) -> None:
        self.level = level
        self.key = key

    def __call__(self, value: Any, python: _Pass) -> Any:
        if value is not None:
            python.object(self.level, value, (self.key,))
        return value
