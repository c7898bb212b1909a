"""The sharing policy's lifecycle: validate, preview, publish, roll back, list, diff,
explain (DESIGN §4).

Versions are immutable rows of ``policy_version``; the newest is in force. Publishing
validates the source against the hub's catalog, checks the operator's guardrails
(``policies/defaults/guardrails.yaml``) and the document's own ``expect:`` entries, and
inserts the next version with its author and reason, audited in the same transaction. A
rollback publishes a copy of an older version's source (so history stays linear and
every version ever in force can be inspected), under the same checks. Every replica picks
the new version up within ``HUB_POLICY_REFRESH_INTERVAL`` seconds (:mod:`hub.runtime`).
"""

from __future__ import annotations

import difflib
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import and_, false, func, not_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit
from hub.access.catalog import API_ENUMS, DERIVED, TYPES
from hub.access.enforce import access
from hub.access.policy_rules import PolicyRules, caller_of
from hub.access.registry import REGISTRY
from hub.access.resources import MODELS, Resource
from hub.access.rules import DATA_SCOPES
from hub.crypto import derive_key
from hub.errors import ConflictError, NotFoundError
from hub.federation.state import catalog_with
from hub.federation.store import accepted_shapes
from hub.models import (
    Customer,
    CustomerPartner,
    Organization,
    OrgKind,
    PolicyVersion,
)
from hub.models._types import utcnow
from hub.principal import Principal
from policies import (
    Catalog,
    Document,
    FieldType,
    Guardrail,
    PolicyError,
    PolicySyntaxError,
    Position,
    explain,
    holds,
    parse,
    validate,
)
from policies.diff import diff_documents
from policies.evaluate import subject_matches
from policies.guard import check_guardrails, concrete_guardrails, run_expectations
from policies.model import MASK_NAMES

DEFAULTS = Path(__file__).resolve().parent.parent / "policies" / "defaults"
Format = Literal["yaml", "json"]


class PolicyRejectedError(Exception):
    """The source is not publishable; ``problems`` says why, each at a line and column
    (validation) or naming the rule and guardrail or expectation it breaks."""

    def __init__(self, message: str, problems: Sequence[Problem]) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Problem:
    """One reason a policy is refused: ``kind`` is syntax, validation, guardrail or
    expectation; ``line``/``column`` are 0 when no source position applies. A ``warning``
    (:func:`unknown_organizations`) does not refuse it."""

    kind: str
    message: str
    line: int = 0
    column: int = 0
    rule: str | None = None

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}: " if self.line else ""
        return f"{where}{self.kind}: {self.message}"


# -- sources and documents ------------------------------------------------------------


def source_format(name: str, source: str) -> Format:
    """JSON if the file name says so or the source starts like JSON, else YAML."""
    if name.endswith(".json") or source.lstrip().startswith("{"):
        return "json"
    return "yaml"


@cache
def operator_guardrails() -> tuple[Guardrail, ...]:
    """The operator's guardrails, which every published version must respect."""
    return parse((DEFAULTS / "guardrails.yaml").read_text()).guardrails


@lru_cache(maxsize=32)
def parse_stored(source: str, fmt: str = "yaml") -> Document:
    """A stored version's document (stored sources were valid; documents are immutable,
    so parsing once per source is enough)."""
    return parse(source, format="json" if fmt == "json" else "yaml")


def default_source() -> str:
    return (DEFAULTS / "default.yaml").read_text()


def _hub_problems(document: Document, catalog: Catalog) -> list[Problem]:
    """What the generic validator cannot know: which masks the API can carry (a string
    field takes a string mask; an enum, a number or a date cannot hold a mask's output;
    ``Feedback.customer_ref`` takes a pseudonym)."""
    problems: list[Problem] = []
    for rule in document.rules:
        if not _known(rule.resource):
            continue  # the validator has reported the resource
        resource = Resource(rule.resource)
        remote = catalog.resources[resource.value].remote
        for name, mask in rule.read.masked.items():
            kind = TYPES[resource].get(name)
            if name in remote:  # a subgraph's field: a string takes a mask
                kind = catalog.resources[resource.value].fields[name]
            if kind is None or mask.name not in MASK_NAMES:
                continue  # the validator has reported these
            enum = name in API_ENUMS[resource]
            fits = (kind is FieldType.STRING and not enum) or (
                name == "customer_ref" and mask.name == "pseudonym"
            )
            if not fits:
                what = "an enum" if enum else f"a {kind}"
                problems.append(
                    Problem(
                        "validation",
                        f"mask '{mask.name}' on {rule.resource}.{name}: the API field is "
                        f"{what} and cannot carry a masked value; show or hide it instead",
                        mask.pos.line,
                        mask.pos.column,
                        rule.name,
                    )
                )
    return problems


def _known(resource: str) -> bool:
    return resource in {r.value for r in Resource}


def check_source(
    source: str, fmt: Format = "yaml", catalog: Catalog | None = None
) -> tuple[Document | None, list[Problem]]:
    """Parse and validate ``source``: the document, or the problems (syntax errors stop
    at the first; validation reports them all, in source order). Against ``catalog``
    (:func:`policy_catalog`), by default the one of the rules in force."""
    try:
        document = parse(source, format=fmt)
    except PolicySyntaxError as error:
        return None, [Problem("syntax", error.message, error.pos.line, error.pos.column)]
    catalog = catalog or access.rules.catalog
    problems = [_from_error(e) for e in validate(document, catalog)]
    problems += _hub_problems(document, catalog)
    return (None if problems else document), problems


def _from_error(error: PolicyError) -> Problem:
    return Problem("validation", error.message, error.pos.line, error.pos.column)


async def org_kinds(session: AsyncSession) -> dict[str, str]:
    rows = (await session.execute(select(col(Organization.slug), col(Organization.kind)))).all()
    return {slug: kind for slug, kind in rows}


def named_organizations(document: Document) -> list[tuple[str, Position, str]]:
    """Every organization slug a subject names: ``(slug, where, rule or guardrail or
    expectation name)``."""
    found: list[tuple[str, Position, str]] = []
    for section, items in (("rules", document.rules), ("guardrails", document.guardrails)):
        for item in items:
            for i, subject in enumerate(item.subjects):
                if subject.org is not None:
                    where = document.position(section, item.index, "subjects", i, "org")
                    found.append((subject.org, where, item.name))
    for expectation in document.expectations:
        org = expectation.subject.org
        if org is not None:
            where = document.position("expect", expectation.index, "subject", "org")
            found.append((org, where, expectation.name))
    return found


async def unknown_organizations(session: AsyncSession, document: Document) -> list[Problem]:
    """Warnings, not refusals: subjects naming an organization the hub does not have
    match nobody until it is registered (which may well come after the policy)."""
    named = named_organizations(document)
    if not named:
        return []
    known = await org_kinds(session)
    return [
        Problem(
            "warning",
            f"no organization '{slug}' in the hub: the subject matches nobody until it "
            "is registered",
            where.line,
            where.column,
            name,
        )
        for slug, where, name in named
        if slug not in known
    ]


async def publish_problems(session: AsyncSession, document: Document) -> list[Problem]:
    """Guardrail and expectation failures of a valid document on the current hub."""
    orgs = await org_kinds(session)
    catalog = await policy_catalog(session)
    guardrails = [*operator_guardrails(), *document.guardrails]
    violations = check_guardrails(document, catalog, guardrails, orgs)
    violations += run_expectations(document, catalog, orgs)
    return [Problem(v.kind, v.message, v.pos.line, v.pos.column, v.rule) for v in violations]


# -- versions ---------------------------------------------------------------------------


async def current_version(session: AsyncSession) -> PolicyVersion | None:
    statement = select(PolicyVersion).order_by(col(PolicyVersion.number).desc()).limit(1)
    return (await session.execute(statement)).scalar_one_or_none()


async def current_identity(session: AsyncSession) -> tuple[int, str]:
    """The number and source hash of the version in force ((0, "") before any)."""
    statement = (
        select(col(PolicyVersion.number), col(PolicyVersion.sha256))
        .order_by(col(PolicyVersion.number).desc())
        .limit(1)
    )
    row = (await session.execute(statement)).first()
    return (0, "") if row is None else (int(row[0]), str(row[1]))


async def current_number(session: AsyncSession) -> int:
    number = (await session.execute(select(func.max(PolicyVersion.number)))).scalar_one()
    return int(number or 0)


# The column is a 32-bit INTEGER on PostgreSQL (SQLite's is 64-bit): a larger number is
# no version, and binding one raised an overflow error (a 500 from a console URL).
MAX_VERSION_NUMBER = 2**31 - 1


async def get_version(session: AsyncSession, number: int) -> PolicyVersion:
    if not 0 <= number <= MAX_VERSION_NUMBER:
        raise NotFoundError(f"no policy version {number}")
    statement = select(PolicyVersion).where(col(PolicyVersion.number) == number)
    version = (await session.execute(statement)).scalar_one_or_none()
    if version is None:
        raise NotFoundError(f"no policy version {number}")
    return version


async def list_versions(session: AsyncSession) -> list[PolicyVersion]:
    statement = select(PolicyVersion).order_by(col(PolicyVersion.number).desc())
    return list((await session.execute(statement)).scalars())


def rules_for(
    version: PolicyVersion, master_key: bytes, *, catalog: Catalog | None = None
) -> PolicyRules:
    """The access rule set of a stored version (it was valid when stored), over
    ``catalog`` (the hub's with the accepted subgraphs' fields; the rules in force's by
    default)."""
    document = parse_stored(version.source, version.format)
    return PolicyRules(
        version.number,
        document,
        [*operator_guardrails(), *document.guardrails],
        pseudonym_secret=derive_key(master_key, "policy pseudonyms"),
        fingerprint=version.sha256,
        catalog=catalog or access.rules.catalog,
    )


async def policy_catalog(session: AsyncSession) -> Catalog:
    """The catalog a policy is checked against now: the hub's, plus the fields of the
    subgraphs accepted in the database (remote: shown, masked or hidden, never tested
    by a condition)."""
    return catalog_with(await accepted_shapes(session))


async def _insert(
    session: AsyncSession,
    *,
    source: str,
    fmt: Format,
    action: str,
    author: str,
    reason: str,
    restores: int | None = None,
    expected_current: int | None = None,
) -> PolicyVersion:
    reason = reason.strip()
    if not reason:
        raise PolicyRejectedError("a reason is required", [Problem("input", "reason is empty")])
    number = await current_number(session)
    if expected_current is not None and number != expected_current:
        raise ConflictError(
            f"the policy is at version {number}, not {expected_current}; preview again",
            current_version=number,
        )
    version = PolicyVersion(
        number=number + 1,
        source=source,
        format=fmt,
        sha256=hashlib.sha256(source.encode()).hexdigest(),
        action=action,
        restores=restores,
        author=author[:200],
        reason=reason[:2000],
        created_at=utcnow(),
    )
    session.add(version)
    try:
        await session.flush()
    except IntegrityError:
        # Two publishes raced for the same number: the loser retries with fresh eyes.
        raise ConflictError(
            "another version was published at the same time; preview again",
            current_version=number + 1,
        ) from None
    organization, _, client = author.partition("/")
    await audit.append(
        session,
        audit.Entry(
            actor=author,
            organization=organization if client else None,
            client=client or None,
            action=f"policy.{action}",
            target=f"policy_version:{number + 1}",
            details={
                "reason": reason,
                "sha256": version.sha256,
                "restores": restores,
                "previous": number,
            },
        ),
    )
    return version


async def publish(
    session: AsyncSession,
    source: str,
    *,
    author: str,
    reason: str,
    fmt: Format = "yaml",
    expected_current: int | None = None,
) -> PolicyVersion:
    """Validate, check and store ``source`` as the next version; raise
    :class:`PolicyRejectedError` listing every problem otherwise."""
    document, problems = check_source(source, fmt, await policy_catalog(session))
    if document is None:
        raise PolicyRejectedError("the policy is not valid", problems)
    problems = await publish_problems(session, document)
    if problems:
        raise PolicyRejectedError("the policy breaks guardrails or expectations", problems)
    return await _insert(
        session,
        source=source,
        fmt=fmt,
        action="publish",
        author=author,
        reason=reason,
        expected_current=expected_current,
    )


async def rollback(
    session: AsyncSession, number: int, *, author: str, reason: str
) -> PolicyVersion:
    """Publish a copy of version ``number``'s source: exactly its behaviour returns.
    Refused if it breaks today's guardrails or its own expectations."""
    target = await get_version(session, number)
    fmt: Format = "json" if target.format == "json" else "yaml"
    document, problems = check_source(target.source, fmt, await policy_catalog(session))
    if document is None:
        raise PolicyRejectedError(f"version {number} is no longer valid", problems)
    problems = await publish_problems(session, document)
    if problems:
        raise PolicyRejectedError(
            f"version {number} breaks today's guardrails or its expectations", problems
        )
    return await _insert(
        session,
        source=target.source,
        fmt=fmt,
        action="rollback",
        author=author,
        reason=reason,
        restores=number,
    )


async def install_defaults(session: AsyncSession, *, author: str = "hub init") -> bool:
    """Install ``policies/defaults/default.yaml`` as version 1 if no version exists."""
    if await current_number(session):
        return False
    await _insert(
        session,
        source=default_source(),
        fmt="yaml",
        action="install",
        author=author,
        reason="default sharing policy",
    )
    return True


# -- diff and preview -------------------------------------------------------------------


@dataclass(frozen=True)
class VersionDiff:
    old: int
    new: int
    rules: list[dict[str, Any]]
    text: str


async def diff_versions(session: AsyncSession, old: int, new: int) -> VersionDiff:
    a, b = await get_version(session, old), await get_version(session, new)
    changes = diff_documents(parse_stored(a.source, a.format), parse_stored(b.source, b.format))
    text = "".join(
        difflib.unified_diff(
            a.source.splitlines(keepends=True),
            b.source.splitlines(keepends=True),
            fromfile=f"version {old}",
            tofile=f"version {new}",
        )
    )
    rules = [{"name": c.name, "change": c.change, "details": list(c.details)} for c in changes]
    return VersionDiff(old, new, rules, text)


def principal_for(org: Organization) -> Principal:
    """A stand-in caller for ``org`` holding every data scope (previews, explain)."""
    return Principal(
        client_id=f"policy-preview:{org.slug}",
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        scopes=DATA_SCOPES,
        attributes=dict(org.attributes or {}),
    )


@dataclass
class ResourceImpact:
    resource: str
    fields_gained: list[str] = field(default_factory=list)
    fields_lost: list[str] = field(default_factory=list)
    rows_gained: int = 0
    rows_lost: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.fields_gained or self.fields_lost or self.rows_gained or self.rows_lost)


@dataclass
class OrganizationImpact:
    organization: str
    kind: str
    resources: list[ResourceImpact]


async def preview(
    session: AsyncSession, source: str, fmt: Format, master_key: bytes
) -> tuple[list[Problem], list[OrganizationImpact]]:
    """What publishing ``source`` would change, per organization and resource: fields
    gained or lost and rows gained or lost on the current data. Also the problems a
    publish would report (an empty impact when the source is invalid)."""
    catalog = await policy_catalog(session)
    document, problems = check_source(source, fmt, catalog)
    if document is None:
        return problems, []
    problems = await publish_problems(session, document)
    current = await current_version(session)
    secret = derive_key(master_key, "policy pseudonyms")
    old = (
        rules_for(current, master_key, catalog=catalog)
        if current
        else PolicyRules.deny_all().with_catalog(catalog)
    )
    new = PolicyRules(
        0,
        document,
        [*operator_guardrails(), *document.guardrails],
        pseudonym_secret=secret,
        catalog=catalog,
    )
    orgs = (await session.execute(select(Organization).order_by(Organization.slug))).scalars()
    impacts: list[OrganizationImpact] = []
    for org in orgs:
        principal = principal_for(org)
        resources: list[ResourceImpact] = []
        for resource in Resource:
            model: Any = MODELS[resource]
            impact = ResourceImpact(resource.value)
            before = old.shown_fields(principal, resource)
            after = new.shown_fields(principal, resource)
            impact.fields_gained = sorted(after - before)
            impact.fields_lost = sorted(before - after)
            was, now = old.row_filter(principal, resource), new.row_filter(principal, resource)
            # NOT of an unknown (NULL) condition is unknown: coalesce, so a row the
            # condition left unknown counts as hidden, as it is.
            was, now = func.coalesce(was, false()), func.coalesce(now, false())
            for attr, cond in (
                ("rows_gained", and_(now, not_(was))),
                ("rows_lost", and_(was, not_(now))),
            ):
                statement = select(func.count()).select_from(model).where(cond)
                setattr(impact, attr, int((await session.execute(statement)).scalar_one()))
            resources.append(impact)
        impacts.append(OrganizationImpact(org.slug, org.kind, resources))
    return problems, impacts


def describe(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


# -- explain ----------------------------------------------------------------------------


async def _slugs(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = (await session.execute(select(col(Organization.id), col(Organization.slug)))).all()
    return {org_id: slug for org_id, slug in rows}


def _plain(row: Any, resource: Resource, slugs: Mapping[uuid.UUID, str]) -> dict[str, Any]:
    record = {
        name: getattr(row, DERIVED.get(name, name))
        for name in TYPES[resource]
        if name != "organization"
    }
    if "organization" in TYPES[resource]:
        record["organization"] = slugs.get(row.organization_id)
    return record


async def policy_record(
    session: AsyncSession, resource: Resource, record_id: uuid.UUID
) -> dict[str, Any] | None:
    """The record as the policy evaluator sees it: its catalog fields, derived fields and
    relations (a customer's assignments; a related record's customer with its
    assignments, and any other record a registry relation names, e.g. a case note's
    case with its customer). ``None`` if it does not exist."""
    model: Any = MODELS[resource]
    row = (await session.execute(select(model).where(model.id == record_id))).scalar_one_or_none()
    if row is None:
        return None
    slugs = await _slugs(session)

    async def customer(customer_id: uuid.UUID) -> dict[str, Any] | None:
        found = await session.get(Customer, customer_id)
        if found is None:
            return None
        out = _plain(found, Resource.CUSTOMER, slugs)
        statement = select(CustomerPartner).where(col(CustomerPartner.customer_id) == customer_id)
        out["assignments"] = [
            _plain(a, Resource.ASSIGNMENT, slugs)
            for a in (await session.execute(statement)).scalars()
        ]
        return out

    if resource is Resource.CUSTOMER:
        return await customer(record_id)
    record = _plain(row, resource, slugs)
    for relation in REGISTRY[resource].relations:
        if relation.many:
            continue  # only Customer has one-to-many relations (handled above)
        parent = getattr(row, relation.local)
        if relation.target == Resource.CUSTOMER:
            record[relation.name] = await customer(parent)
        else:
            record[relation.name] = await policy_record(session, Resource(relation.target), parent)
    return record


async def explain_access(
    session: AsyncSession, organization: str, resource: Resource, record_id: uuid.UUID
) -> dict[str, Any]:
    """Why ``organization`` sees what it sees of one record under the version in force:
    the row decision and, per field, the outcome, the mask and the deciding rule (or
    guardrail). Uses the plain evaluator, the oracle the SQL compiler is tested against."""
    found = await session.execute(
        select(Organization).where(col(Organization.slug) == organization)
    )
    org = found.scalar_one_or_none()
    if org is None:
        raise NotFoundError(f"no organization '{organization}'")
    record = await policy_record(session, resource, record_id)
    if record is None:
        raise NotFoundError(f"no {resource.value} with that id")
    current = await current_version(session)
    document = parse_stored(current.source, current.format) if current else Document()
    caller = caller_of(principal_for(org))
    catalog = await policy_catalog(session)
    result = explain(document, catalog, caller, resource.value, record)
    result["version"] = current.number if current else 0
    result["organization"] = org.slug
    result["id"] = str(record_id)
    guardrails = concrete_guardrails([*operator_guardrails(), *document.guardrails], catalog)
    for guardrail in guardrails:
        if guardrail.resource != resource.value or not any(
            subject_matches(s, caller) for s in guardrail.subjects
        ):
            continue
        if guardrail.rows is not None and holds(guardrail.rows, record, caller) is not True:
            result["row"] = {"visible": False, "rules": [f"guardrail:{guardrail.name}"]}
        for name in {path.split(".", 1)[0] for path in guardrail.hidden}:
            if name in result["fields"]:
                result["fields"][name] = {
                    "outcome": "hidden",
                    "mask": None,
                    "rule": f"guardrail:{guardrail.name}",
                }
    if not result["row"]["visible"]:
        for name, decision in result["fields"].items():
            if decision["outcome"] != "hidden":
                result["fields"][name] = {**decision, "outcome": "hidden", "mask": None}
    # Conditions may use derived fields; the API does not show `organization` itself.
    result["fields"].pop("organization", None)
    return result
