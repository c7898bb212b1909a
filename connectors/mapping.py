"""Field mapping: a source record's fields to the hub's input fields, with transforms.

A mapping names, for each target field, the source field it comes from and what is done
to the value on the way, in this order: ``transforms`` (``trim``, ``lower``, ``upper``,
in the order listed), ``map`` (replace listed values; others pass unchanged), empty text
counts as missing, ``default`` (when missing), ``required`` (missing is a problem),
``date`` (parse: ``iso`` for ISO 8601, or a ``strptime`` format; a time without a zone is
UTC). The source field may be a dotted path into nested JSON (``requester.email``).

As YAML::

    mapping:
      external_id: ticket_id                      # shorthand: just the source field
      customer_email: {from: requester.email, transforms: [trim, lower], required: true}
      kind: {from: type, map: {incident: complaint, kudos: praise}, default: question}
      createdAt: {from: opened, date: "%d/%m/%Y %H:%M"}

Plain code: no hub import; the hub passes the target names it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from connectors.config import ConfigError

TRANSFORMS: dict[str, Callable[[str], str]] = {
    "trim": str.strip,
    "lower": str.lower,
    "upper": str.upper,
}
ISO = "iso"
_RULE_KEYS = frozenset({"from", "transforms", "map", "date", "default", "required"})


@dataclass(frozen=True)
class Problem:
    """Why one field of one record is unusable; ``field`` is the target field's name
    (a source field's, for an unknown field under an identity mapping)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Mapped:
    """A record mapped: the target fields that have a value, and the problems found."""

    values: dict[str, Any]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class FieldRule:
    """How one target field is filled (see the module docstring for the order)."""

    target: str
    source: str
    transforms: tuple[str, ...] = ()
    values: Mapping[str, Any] | None = None
    date: str | None = None
    default: Any = None
    required: bool = False

    @property
    def plain(self) -> bool:
        """The field taken as it is from the source field of the same name: no
        transform, map, date or default."""
        return (
            self.target == self.source
            and not self.transforms
            and self.values is None
            and self.date is None
            and self.default is None
        )

    def apply(self, data: Mapping[str, Any]) -> tuple[Any, str | None]:
        """The value for the target and ``None``, or ``None`` and the problem."""
        value = lookup(data, self.source)
        if isinstance(value, str):
            for name in self.transforms:
                value = TRANSFORMS[name](value)
        if self.values is not None and value is not None and not isinstance(value, dict | list):
            value = self.values.get(str(value), value)
        if value is None or (isinstance(value, str) and not value.strip()):
            value = self.default
        if value is None:
            return None, "is required" if self.required else None
        if self.date is not None:
            return parse_date(value, self.date)
        return value, None


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """``data[path]``, else the dotted ``path`` followed through nested objects."""
    if path in data:
        return data[path]
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def parse_date(value: Any, fmt: str) -> tuple[datetime | None, str | None]:
    """``value`` as an aware datetime (UTC when it names no zone), or the problem."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)), None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC), None
    expected = "an ISO 8601 date, e.g. 2026-01-31" if fmt == ISO else f"a date as {fmt}"
    if not isinstance(value, str):
        return None, f"must be {expected}"
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text) if fmt == ISO else datetime.strptime(text, fmt)
    except ValueError:
        return None, f"{_shown(text)} is not {expected}"
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


class FieldMapping:
    """The mapping of one connector: :meth:`parse` a declared one, or :meth:`identity`
    when the source's fields already carry the target names."""

    def __init__(self, rules: tuple[FieldRule, ...], *, identity: frozenset[str] | None = None):
        self.rules = rules
        self._identity = identity
        # Under an identity mapping, the rules (required fields) that take the field of
        # their own name as it is: the identity pass has the value already.
        self._taken = frozenset(
            rule.target for rule in rules if identity is not None and rule.plain
        )

    @classmethod
    def identity(cls, names: Collection[str], *, required: Collection[str] = ()) -> FieldMapping:
        """Each field maps to the target of the same name; a field not in ``names`` is a
        problem (a misspelt column would otherwise be dropped silently)."""
        rules = tuple(FieldRule(n, n, required=n in required) for n in sorted(required))
        return cls(rules, identity=frozenset(names))

    @classmethod
    def parse(
        cls, spec: Any, *, targets: Collection[str] | None = None, where: str = "mapping"
    ) -> FieldMapping:
        """Read a declared mapping (the YAML above, as plain data); :class:`ConfigError`
        names the key at fault. ``targets``: the target names allowed, if known."""
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(f"{where}: must map target fields to their source fields")
        rules = []
        for target, rule in spec.items():
            key = f"{where}.{target}"
            if not isinstance(target, str) or not target:
                raise ConfigError(f"{where}: field names must be text, not {target!r}")
            if targets is not None and target not in targets:
                known = ", ".join(sorted(targets))
                raise ConfigError(f"{key}: not a field this connector can set (known: {known})")
            rules.append(_rule(target, rule, key))
        return cls(tuple(rules))

    @property
    def targets(self) -> frozenset[str]:
        names = {rule.target for rule in self.rules}
        return frozenset(names | (self._identity or frozenset()))

    def apply(self, data: Mapping[str, Any]) -> Mapped:
        values: dict[str, Any] = {}
        problems: list[Problem] = []
        identity = self._identity
        if identity is not None:
            for name, value in data.items():
                if name not in identity:
                    problems.append(Problem(name, "is not a field this connector can set"))
                elif value is not None and not (isinstance(value, str) and not value.strip()):
                    values[name] = value
        taken = self._taken
        for rule in self.rules:
            if rule.target in taken and rule.target in values:
                # An identity mapping's required field, present: FieldRule.apply would
                # give the value back as it is.
                continue
            value, problem = rule.apply(data)
            if problem is not None:
                problems.append(Problem(rule.target, problem))
            elif value is not None:
                values[rule.target] = value
            else:
                values.pop(rule.target, None)
        return Mapped(values, tuple(problems) if problems else ())


def _rule(target: str, rule: Any, key: str) -> FieldRule:
    if isinstance(rule, str):
        return FieldRule(target, rule)
    if not isinstance(rule, Mapping):
        raise ConfigError(f"{key}: must be a source field name or a rule with 'from'")
    unknown = sorted(set(rule) - _RULE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_RULE_KEYS))
        raise ConfigError(f"{key}.{unknown[0]}: not a rule setting (allowed: {allowed})")
    source = rule.get("from", target)
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{key}.from: must be a source field name")
    transforms = rule.get("transforms", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if not isinstance(transforms, list):
        raise ConfigError(f"{key}.transforms: must be a list of {', '.join(TRANSFORMS)}")
    for n, name in enumerate(transforms):
        if name not in TRANSFORMS:
            raise ConfigError(
                f"{key}.transforms[{n}]: unknown transform {name!r} "
                f"(known: {', '.join(TRANSFORMS)})"
            )
    values = rule.get("map")
    if values is not None and (
        not isinstance(values, Mapping) or any(isinstance(v, dict | list) for v in values.values())
    ):
        raise ConfigError(f"{key}.map: must map source values to plain values")
    fmt = rule.get("date")
    if fmt is not None and (not isinstance(fmt, str) or not fmt.strip()):
        raise ConfigError(f"{key}.date: must be 'iso' or a strptime format such as '%d/%m/%Y'")
    if fmt is not None and fmt != ISO and "%" not in fmt:
        raise ConfigError(f"{key}.date: {fmt!r} has no % directive: use 'iso' or e.g. '%d/%m/%Y'")
    required = rule.get("required", False)
    if not isinstance(required, bool):
        raise ConfigError(f"{key}.required: must be true or false")
    default = rule.get("default")
    if isinstance(default, dict | list):
        raise ConfigError(f"{key}.default: must be a plain value")
    return FieldRule(
        target=target,
        source=source,
        transforms=tuple(transforms),
        values=None if values is None else {str(k): v for k, v in values.items()},
        date=fmt,
        default=default,
        required=required,
    )


__all__ = ["ISO", "TRANSFORMS", "FieldMapping", "FieldRule", "Mapped", "Problem", "lookup"]
