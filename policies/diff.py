"""What changed between two policy documents, for the review before publishing (DESIGN §4).

:func:`diff_documents` compares rules, guardrails and expectations matched by name and says
in one line per aspect what changed (``read.visible: +phone -email``, ``rows: <old> ->
<new>``). :func:`field_access` gives, for one caller, the most a policy can show of each
field on some row: comparing it between two versions per organization is the "fields gained
and lost" of the impact preview (rows gained and lost need data, so they are the hub's).

Example::

    for change in diff_documents(published, draft):
        print(change.section, change.name, change.change, *change.details)
    before = field_access(published, catalog, caller, "Customer")
    after = field_access(draft, catalog, caller, "Customer")
    gained = [f for f in after if after[f] > before[f]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeVar

from policies.catalog import Catalog
from policies.evaluate import Caller, subject_matches
from policies.guard import describe, describe_subject, describe_value
from policies.model import (
    Condition,
    Document,
    Effect,
    Expectation,
    Guardrail,
    MaskSpec,
    Outcome,
    Rule,
    Write,
)

__all__ = ["RuleChange", "diff_documents", "field_access"]

Section: TypeAlias = Literal["rule", "guardrail", "expectation"]
_Facets: TypeAlias = dict[str, str | tuple[str, ...]]


@dataclass(frozen=True)
class RuleChange:
    """A rule (or guardrail, or expectation: see ``section``) added, removed or changed.

    ``details`` has one line per aspect: for a change, what changed (``read.visible: +phone
    -email``, ``rows: region eq north -> (none)``); for an addition or a removal, what the
    entry says (``read.visible: name, email``).
    """

    name: str
    change: Literal["added", "removed", "changed"]
    details: tuple[str, ...] = ()
    section: Section = "rule"


def diff_documents(old: Document, new: Document) -> list[RuleChange]:
    """The changes from ``old`` to ``new``: rules, then guardrails, then expectations, each
    in the new document's order with removals last. Entries are matched by name (the n-th
    of a repeated name with the n-th)."""
    return [
        *_diff("rule", old.rules, new.rules, _rule_facets),
        *_diff("guardrail", old.guardrails, new.guardrails, _guardrail_facets),
        *_diff("expectation", old.expectations, new.expectations, _expectation_facets),
    ]


def field_access(
    document: Document, catalog: Catalog, caller: Caller, resource: str
) -> dict[str, Outcome]:
    """The most permissive outcome each catalog field of ``resource`` has for ``caller`` on
    some row: the best grant among the allow rules applying to the caller, whatever their
    ``rows``, lowered to hidden by deny rules without ``rows`` (a conditional deny hides
    the field on some rows only). Never below what :func:`~policies.evaluate.evaluate`
    decides for any record; equal to it on a record every ``rows`` admits."""
    best = dict.fromkeys(sorted(catalog.fields(resource)), Outcome.HIDDEN)
    rules = [
        r
        for r in document.rules
        if r.resource == resource and any(subject_matches(s, caller) for s in r.subjects)
    ]
    for rule in rules:
        if rule.effect is Effect.ALLOW:
            for name in rule.read.masked:
                if name in best:
                    best[name] = max(best[name], Outcome.MASKED)
            for name in rule.read.visible:
                if name in best:
                    best[name] = Outcome.VISIBLE
    for rule in rules:
        if rule.effect is Effect.DENY and rule.rows is None:
            for name in rule.fields or best:
                if name in best:
                    best[name] = Outcome.HIDDEN
    return best


_Entry = TypeVar("_Entry", Rule, Guardrail, Expectation)


def _diff(
    section: Section,
    old: Sequence[_Entry],
    new: Sequence[_Entry],
    facets: Callable[[_Entry], _Facets],
) -> Iterator[RuleChange]:
    before = _keyed(old)
    after = _keyed(new)
    moved = _moved([k for k in before if k in after], [k for k in after if k in before])
    for key, entry in after.items():
        name = key[0]
        if key not in before:
            yield RuleChange(name, "added", _summary(facets(entry)), section)
            continue
        details = _changes(facets(before[key]), facets(entry))
        if key in moved:
            details += (f"order: moved {moved[key]}",)
        if details:
            yield RuleChange(name, "changed", details, section)
    for key, entry in before.items():
        if key not in after:
            yield RuleChange(key[0], "removed", _summary(facets(entry)), section)


def _keyed(entries: Sequence[_Entry]) -> dict[tuple[str, int], _Entry]:
    seen: dict[str, int] = {}
    out: dict[tuple[str, int], _Entry] = {}
    for entry in entries:
        n = seen[entry.name] = seen.get(entry.name, -1) + 1
        out[(entry.name, n)] = entry
    return out


def _moved(old: list[tuple[str, int]], new: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The entries kept by both whose relative order changed, each with where it now is.

    Order matters for rules: when two rules grant a field the same outcome, the earlier
    one's mask applies. The longest run kept in order counts as unmoved.
    """
    if old == new:
        return {}
    rank = {key: i for i, key in enumerate(old)}
    kept = _increasing([rank[k] for k in new])
    out: dict[tuple[str, int], str] = {}
    for i, key in enumerate(new):
        if rank[key] not in kept:
            out[key] = f"(now after '{new[i - 1][0]}')" if i else "(now first)"
    return out


def _increasing(values: list[int]) -> set[int]:
    """A longest strictly increasing subsequence of ``values``, as a set (O(n²): documents
    hold tens of rules)."""
    best: list[list[int]] = []  # best[i]: a longest increasing run ending at values[i]
    for i, v in enumerate(values):
        prior = [best[j] for j in range(i) if values[j] < v]
        best.append([*(max(prior, key=len) if prior else []), v])
    longest: list[int] = max(best, key=len) if best else []
    return set(longest)


def _summary(facets: _Facets) -> tuple[str, ...]:
    out = []
    for label, value in facets.items():
        text = ", ".join(value) if isinstance(value, tuple) else value
        if text:
            out.append(f"{label}: {text}")
    return tuple(out)


def _changes(old: _Facets, new: _Facets) -> tuple[str, ...]:
    out = []
    for label, value in new.items():
        was = old[label]
        if was == value:
            continue
        if isinstance(value, tuple) and isinstance(was, tuple):
            plus = [f"+{v}" for v in value if v not in was]
            minus = [f"-{v}" for v in was if v not in value]
            # Lists of subjects and fields are sets: order and repeats mean nothing.
            if plus or minus:
                out.append(f"{label}: {' '.join(plus + minus)}")
        else:
            out.append(f"{label}: {was or '(none)'} -> {value or '(none)'}")
    return tuple(out)


def _rule_facets(rule: Rule) -> _Facets:
    return {
        "resource": rule.resource,
        "effect": str(rule.effect),
        "subjects": tuple(describe_subject(s) for s in rule.subjects),
        "rows": _condition(rule.rows),
        "read.visible": rule.read.visible,
        "read.masked": tuple(f"{n} ({_mask(m)})" for n, m in rule.read.masked.items()),
        **_write_facets("write", rule.write),
        **_write_facets("create", rule.create),
        "fields": rule.fields,
    }


def _write_facets(label: str, write: Write | None) -> _Facets:
    write = write or Write()
    return {
        f"{label}.fields": write.fields,
        f"{label}.check": _condition(write.check),
        f"{label}.presets": tuple(f"{k}={describe_value(v)}" for k, v in write.presets.items()),
    }


def _guardrail_facets(entry: Guardrail) -> _Facets:
    return {
        "resource": "" if entry.about else entry.resource,
        "about": entry.resource if entry.about else "",
        "exempt": entry.exempt,
        "subjects": tuple(describe_subject(s) for s in entry.subjects),
        "rows": _condition(entry.rows),
        "hidden": entry.hidden,
    }


def _expectation_facets(entry: Expectation) -> _Facets:
    return {
        "resource": entry.resource,
        "subject": describe_subject(entry.subject),
        "must_not_see": entry.must_not_see,
        "must_see": entry.must_see,
    }


def _condition(cond: Condition | None) -> str:
    return "" if cond is None else describe(cond)


def _mask(mask: MaskSpec) -> str:
    if mask.edges is None:
        return mask.name
    return f"{mask.name} {', '.join(map(str, mask.edges))}"
