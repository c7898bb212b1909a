"""The policy document model (DESIGN §4): frozen dataclasses, no behaviour.

A :class:`Document` holds :class:`Rule` s, operator :class:`Guardrail` s and
:class:`Expectation` s. Row conditions are a small AST (:class:`Compare`, :class:`And`,
:class:`Or`, :class:`Not`) whose leaves compare a dotted field path with a literal or a
subject :class:`Variable`. Source positions ride along (excluded from equality) so the
validator can name the line and column of every error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column in the policy source (0:0 when built in code)."""

    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


NOWHERE = Position()

Locator: TypeAlias = tuple[str | int, ...]
"""Where a value sits in the document, e.g. ``("rules", 0, "read", "visible", 2)``."""


class Effect(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Outcome(enum.IntEnum):
    """A field's outcome for one row; larger is more permissive."""

    HIDDEN = 0
    MASKED = 1
    VISIBLE = 2


COMPARISON_OPERATORS = frozenset({"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "is_null"})
BOOLEAN_OPERATORS = frozenset({"and", "or", "not"})
MASK_NAMES = frozenset(
    {"redact", "partial_email", "last4", "initials", "year_only", "bucket", "pseudonym"}
)


@dataclass(frozen=True)
class Variable:
    """A reference to the caller, e.g. ``$subject.org`` or ``$subject.attributes.regions``."""

    name: str  # without the leading "$", e.g. "subject.org"


Operand: TypeAlias = Any
"""A :class:`Variable` or a literal: str, int, float, bool, date, datetime, None, or a
tuple of literals (for ``in`` / ``nin``)."""


@dataclass(frozen=True)
class Compare:
    """``path op value``: ``path`` is dotted (relations and JSON keys), ``op`` one of
    :data:`COMPARISON_OPERATORS`; list operands are tuples."""

    path: str
    op: str
    value: Operand
    pos: Position = field(default=NOWHERE, compare=False)  # of the path
    op_pos: Position = field(default=NOWHERE, compare=False)
    value_pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Not:
    item: Condition
    pos: Position = field(default=NOWHERE, compare=False)


Condition: TypeAlias = Compare | And | Or | Not


@dataclass(frozen=True)
class Subject:
    """Who a rule applies to: every attribute given must match (``None`` = any)."""

    org: str | None = None
    kind: str | None = None
    role: str | None = None
    scope: str | None = None
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class MaskSpec:
    """A mask by name; ``edges`` only for ``bucket``."""

    name: str
    edges: tuple[int, ...] | None = None
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Read:
    visible: tuple[str, ...] = ()
    masked: Mapping[str, MaskSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Write:
    """Fields a subject may set, a ``check`` the row must satisfy after the write, and
    ``presets`` forced on the row (literals or subject variables)."""

    fields: tuple[str, ...] = ()
    check: Condition | None = None
    presets: Mapping[str, Operand] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """One allow or deny rule on a resource for some subjects.

    A deny rule lists ``fields`` to hide them, or none to hide the whole row.
    """

    name: str
    resource: str
    subjects: tuple[Subject, ...]
    effect: Effect = Effect.ALLOW
    rows: Condition | None = None
    read: Read = field(default_factory=Read)
    write: Write | None = None
    create: Write | None = None
    fields: tuple[str, ...] = ()
    index: int = field(default=0, compare=False)  # position in Document.rules
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Guardrail:
    """An operator invariant: for these subjects, every visible row satisfies ``rows``
    and the ``hidden`` fields are never visible or masked.

    With ``about`` (written ``about: Customer`` instead of ``resource: Customer``) it
    guards the records *about* ``resource`` rather than its rows: every other resource
    that reaches ``resource`` through one-to-one relations (``customer``,
    ``case.customer``), except those listed in ``exempt``, must show only rows whose
    related ``resource`` satisfies ``rows``. A resource declared later is covered as soon
    as it relates to ``resource``. Such a guardrail stands for one guardrail per covered
    resource (:func:`policies.guard.concrete_guardrails`), which is what the checks,
    the compiled plans and ``explain`` apply.
    """

    name: str
    resource: str
    subjects: tuple[Subject, ...]
    rows: Condition | None = None
    hidden: tuple[str, ...] = ()
    about: bool = False
    exempt: tuple[str, ...] = ()
    index: int = field(default=0, compare=False)
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Expectation:
    """A test run at publish, e.g. "distributor acme must not see Customer.phone"."""

    name: str
    resource: str
    subject: Subject
    must_not_see: tuple[str, ...] = ()
    must_see: tuple[str, ...] = ()
    index: int = field(default=0, compare=False)
    pos: Position = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Document:
    """A parsed policy document. ``positions`` maps locators of plain values (field
    names in lists, mapping keys) to where they appear in the source."""

    rules: tuple[Rule, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    positions: Mapping[Locator, Position] = field(default_factory=dict, compare=False)

    def position(self, *locator: str | int) -> Position:
        """The source position of ``locator``, or of its nearest located ancestor."""
        loc: Locator = tuple(locator)
        while loc:
            if loc in self.positions:
                return self.positions[loc]
            loc = loc[:-1]
        return NOWHERE
