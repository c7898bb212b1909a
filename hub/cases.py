"""Support cases: the scoped list, opening (directly or from feedback), updates and notes.

Every write goes through the write pipeline (:mod:`hub.access.pipeline`); this module
validates input and resolves the assignee. A case is assigned to an organization (a
department or a supplier): its ``organization_id``, which the default policy scopes a
supplier's cases by, so reassigning is writing that field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.access import Action, Record, Resource, access, pipeline
from hub.access.pipeline import Update, WriteRequest
from hub.errors import (
    ConflictError,
    FieldProblem,
    InvalidInputError,
    NotFoundError,
)
from hub.filters import exact
from hub.models import Feedback, Organization, OrgKind
from hub.models._types import utcnow
from hub.models.case import CASE_PRIORITIES, CASE_STATUSES, Case, CaseNote
from hub.outbox import Operation
from hub.pagination import Page
from hub.principal import Principal
from hub.related import count_of, get_records, page_of
from hub.validation import Problems

ASSIGNEE_KINDS = (OrgKind.DEPARTMENT, OrgKind.SUPPLIER)
"""Who a case may be assigned to."""


@dataclass(frozen=True)
class CaseFilter:
    status: str | None = None
    priority: str | None = None
    product: str | None = None
    customer_id: uuid.UUID | None = None
    assigned_to: str | None = None  # an organization slug


def _conditions(principal: Principal, flt: CaseFilter) -> list[ColumnElement[bool]]:
    access.require_filters(principal, Resource.CASE, flt)
    conditions = [
        access.row_filter(principal, Resource.CASE),
        *exact(
            (Case.status, flt.status),
            (Case.priority, flt.priority),
            (Case.product, flt.product),
            (Case.customer_id, flt.customer_id),
        ),
    ]
    if flt.assigned_to is not None:
        slug = select(col(Organization.id)).where(col(Organization.slug) == flt.assigned_to)
        conditions.append(col(Case.organization_id).in_(slug))
    return conditions


def filter_conditions(principal: Principal, flt: CaseFilter) -> list[ColumnElement[bool]]:
    """What ``cases(filter:)`` selects for the principal: its row policy and the filter
    (refused when the filter reveals a field it does not read in clear)."""
    return _conditions(principal, flt)


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    flt: CaseFilter,
    first: int | None,
    after: str | None,
    default_size: int,
    max_size: int,
) -> Page[Record]:
    return await page_of(
        session,
        principal,
        Resource.CASE,
        _conditions(principal, flt),
        first=first,
        after=after,
        default_size=default_size,
        max_size=max_size,
    )


async def count_cases(session: AsyncSession, principal: Principal, flt: CaseFilter) -> int:
    return await count_of(session, Resource.CASE, _conditions(principal, flt))


async def _assignee(session: AsyncSession, slug: str | None) -> Organization | None:
    """The organization named ``slug`` if a case may be assigned to it (active, a
    department or a supplier); ``None`` otherwise. Looked up before the write and judged
    inside it, so a caller who may not assign learns FORBIDDEN first."""
    if slug is None:
        return None
    statement = select(Organization).where(col(Organization.slug) == slug)
    found = (await session.execute(statement)).scalar_one_or_none()
    if found is None or not found.active or OrgKind(found.kind) not in ASSIGNEE_KINDS:
        return None
    return found


def _require_assignee(found: Organization | None, path: tuple[str, ...]) -> uuid.UUID:
    if found is None:
        kinds = " or ".join(k.value for k in ASSIGNEE_KINDS)
        message = f"must be the slug of an active {kinds} organization"
        raise InvalidInputError([FieldProblem(path, message, "NOT_ALLOWED")])
    return found.id


@dataclass
class CaseOpening:
    customer_id: uuid.UUID
    subject: str
    description: str
    product: str | None = None
    priority: str = "normal"
    assigned_to: str | None = None  # an organization slug; the caller's own by default


async def open_case(session: AsyncSession, principal: Principal, opening: CaseOpening) -> Record:
    """Open a case about a customer, assigned to ``assigned_to`` (or to the caller's own
    organization); audited as ``case.open``."""
    p = Problems("input")
    subject = p.text("subject", opening.subject, max_length=200, required=True)
    description = p.text("description", opening.description, max_length=5000, required=True)
    product = p.text("product", opening.product, max_length=120)
    priority = p.choice("priority", opening.priority, CASE_PRIORITIES, required=True)
    p.raise_any()
    given = {"customer_id": "customerId", "subject": "subject", "description": "description"}
    if product is not None:
        given["product"] = "product"
    if priority != "normal":  # the default is no choice
        given["priority"] = "priority"
    if opening.assigned_to is not None:
        given["organization_id"] = "assignedTo"
    assignee = await _assignee(session, opening.assigned_to)
    return await _open(
        session,
        principal,
        WriteRequest(
            Resource.CASE,
            Action.CREATE,
            audit="case.open",
            operation=Operation.CREATE,
            about=opening.customer_id,
            given=given,
        ),
        lambda assignee_id, now: Case(
            customer_id=opening.customer_id,
            organization_id=assignee_id,
            opened_by_id=principal.organization_id,
            product=product,
            subject=subject or "",
            description=description or "",
            priority=priority or "normal",
            created_at=now,
            updated_at=now,
        ),
        assignee if opening.assigned_to is not None else None,
        ("input", "assignedTo") if opening.assigned_to is not None else None,
    )


async def escalate_feedback(
    session: AsyncSession,
    principal: Principal,
    feedback_id: uuid.UUID,
    *,
    subject: str | None = None,
    priority: str = "normal",
    assigned_to: str | None = None,
) -> Record:
    """Open a case from a feedback item the caller can see: about its customer and its
    product, described by its text, linked to it (``Case.feedback``). Arguments, not an
    input object: problems point at the argument itself."""
    visible = await get_records(session, principal, Resource.FEEDBACK, [feedback_id])
    item = await session.get(Feedback, feedback_id) if feedback_id in visible else None
    if item is None:
        raise NotFoundError("no such feedback")
    problems: list[FieldProblem] = []
    if subject is not None and not subject.strip():
        problems.append(FieldProblem(("subject",), "must not be empty", "REQUIRED"))
    elif subject is not None and len(subject.strip()) > 200:
        problems.append(FieldProblem(("subject",), "must be at most 200 characters", "TOO_LONG"))
    if priority not in CASE_PRIORITIES:
        allowed = ", ".join(CASE_PRIORITIES)
        problems.append(FieldProblem(("priority",), f"must be one of {allowed}", "NOT_ALLOWED"))
    if problems:
        raise InvalidInputError(problems)
    title = subject.strip() if subject is not None else _subject_of(item)
    # Everything taken from the feedback is set by naming it.
    given = {
        "customer_id": "feedbackId",
        "feedback_id": "feedbackId",
        "subject": "subject" if subject is not None else "feedbackId",
        "description": "feedbackId",
    }
    if item.product is not None:
        given["product"] = "feedbackId"
    if priority != "normal":
        given["priority"] = "priority"
    if assigned_to is not None:
        given["organization_id"] = "assignedTo"
    assignee = await _assignee(session, assigned_to)
    return await _open(
        session,
        principal,
        WriteRequest(
            Resource.CASE,
            Action.CREATE,
            audit="case.open",
            operation=Operation.CREATE,
            about=item.customer_id,
            given=given,
            root=None,
            details={"feedback": str(feedback_id)},
        ),
        lambda assignee_id, now: Case(
            customer_id=item.customer_id,
            organization_id=assignee_id,
            opened_by_id=principal.organization_id,
            feedback_id=item.id,
            product=item.product,
            subject=title,
            description=item.text,
            priority=priority,
            created_at=now,
            updated_at=now,
        ),
        assignee if assigned_to is not None else None,
        ("assignedTo",) if assigned_to is not None else None,
    )


def _subject_of(item: Feedback) -> str:
    first_line = item.text.strip().splitlines()[0] if item.text.strip() else item.kind
    return f"{item.kind.capitalize()}: {first_line}"[:200]


async def _open(
    session: AsyncSession,
    principal: Principal,
    request: WriteRequest,
    make: Callable[[uuid.UUID, datetime], Case],
    assignee: Organization | None,
    assignee_path: tuple[str, ...] | None,
) -> Record:
    """Create the case ``make(assignee id, now)`` builds (status open, version 1):
    assigned to ``assignee`` when one was asked for (at ``assignee_path``), else to the
    caller's own organization."""

    def build() -> Case:
        if assignee_path is None:
            return make(principal.organization_id, utcnow())
        return make(_require_assignee(assignee, assignee_path), utcnow())

    written = await pipeline.create(session, principal, request, build)
    return written.record


@dataclass
class CasePatch:
    """The fields an update sets; ``None`` leaves a field as it is."""

    status: str | None = None
    priority: str | None = None
    subject: str | None = None
    description: str | None = None
    product: str | None = None
    assigned_to: str | None = None  # an organization slug: reassigns the case


async def update_case(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    patch: CasePatch,
    *,
    expected_version: int | None = None,
) -> Record:
    """Change a case (status, priority, texts, product, assignee) under the policy's
    Case ``write`` rule; audited as ``case.update``. ``expected_version`` makes it a
    compare-and-set (CONFLICT with the current version otherwise); without it the
    update compares on the version it read and retries. Setting what is already set
    changes nothing and is not audited."""
    p = Problems("patch")
    values: dict[str, object] = {}
    if patch.status is not None:
        values["status"] = p.choice("status", patch.status, CASE_STATUSES)
    if patch.priority is not None:
        values["priority"] = p.choice("priority", patch.priority, CASE_PRIORITIES)
    if patch.subject is not None:
        values["subject"] = p.text("subject", patch.subject, max_length=200, required=True)
    if patch.description is not None:
        text = p.text("description", patch.description, max_length=5000, required=True)
        values["description"] = text
    if patch.product is not None:
        values["product"] = p.text("product", patch.product, max_length=120)
    if not values and patch.assigned_to is None:
        p.add("status", "give at least one field to change", "REQUIRED")
    p.raise_any()
    names = {
        "status": "status",
        "priority": "priority",
        "subject": "subject",
        "description": "description",
        "product": "product",
    }
    given = {name: names[name] for name in values}
    if patch.assigned_to is not None:
        given["organization_id"] = "assignedTo"
    assignee = await _assignee(session, patch.assigned_to)
    # Messages name the current version only to a caller that may read it.
    shown = "version" in access.readable_fields(principal, Resource.CASE)

    def conflict(current: Case) -> ConflictError:
        if not shown:
            return ConflictError("the case changed meanwhile; read it and retry")
        return ConflictError(
            f"the case is at version {current.version}"
            + ("" if expected_version is None else f", not {expected_version}"),
            current_version=current.version,
        )

    def change(current: Case) -> Update | None:
        if expected_version is not None and current.version != expected_version:
            raise conflict(current)
        wanted = dict(values)
        if patch.assigned_to is not None:
            wanted["organization_id"] = _require_assignee(assignee, ("patch", "assignedTo"))
        if all(getattr(current, name) == value for name, value in wanted.items()):
            return None
        read = expected_version if expected_version is not None else current.version
        return Update(
            {**wanted, "version": col(Case.version) + 1, "updated_at": utcnow()},
            where=(col(Case.version) == read,),
        )

    written = await pipeline.update(
        session,
        principal,
        WriteRequest(
            Resource.CASE,
            Action.UPDATE,
            audit="case.update",
            operation=Operation.UPDATE,
            target=case_id,
            given=given,
            root="patch",
        ),
        change,
        conflict=conflict,
        attempts=1 if expected_version is not None else 5,
    )
    return written.record


async def add_case_note(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, text: str
) -> Record:
    """Add a note to a case's thread as the caller's organization (a preset of the
    policy, never taken from input); audited as ``case.note``."""
    p = Problems("input")
    cleaned = p.text("text", text, max_length=5000, required=True)
    if p.items:
        # Arguments, not an input object: the problem points at the argument itself.
        raise InvalidInputError([FieldProblem(("text",), i.message, i.code) for i in p.items])

    # Read before the pipeline (build is synchronous) and used only once it has found
    # the case visible: a note is about its case's customer.
    customer_id = (
        await session.execute(select(col(Case.customer_id)).where(col(Case.id) == case_id))
    ).scalar_one_or_none()

    def build() -> CaseNote:
        if customer_id is None:  # the case went between the read and the write
            raise NotFoundError("no such case")
        return CaseNote(
            case_id=case_id,
            customer_id=customer_id,
            organization_id=principal.organization_id,
            text=cleaned or "",
            created_at=utcnow(),
        )

    written = await pipeline.create(
        session,
        principal,
        WriteRequest(
            Resource.CASE_NOTE,
            Action.CREATE,
            audit="case.note",
            operation=Operation.CREATE,
            about=case_id,
            given={"case_id": "caseId", "text": "text"},
            root=None,
        ),
        build,
    )
    return written.record
