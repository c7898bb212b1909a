"""The write pipeline (:mod:`hub.access.pipeline`): its steps on both backends, and a scan
of the source that keeps every write decision inside ``hub/access``."""

from __future__ import annotations

import ast
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col

from hub import sharing
from hub.access import Action, PolicyRules, Resource, access, pipeline
from hub.access.pipeline import Update, WriteRequest
from hub.db import Database
from hub.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from hub.models import AuditEvent, Customer, Feedback, Organization, OutboxEvent, Purchase
from hub.outbox import Operation
from policies import parse
from tests.conftest import SECRET, make_org
from tests.hub.factories import assign, count_rows, load, make_customer

ROOT = Path(__file__).resolve().parents[2]

POLICY = """
rules:
  - name: distributors-customers
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {assignments.organization: {eq: $subject.org}}
    read: {visible: [id, name, lifecycle_stage]}
    write:
      fields: [lifecycle_stage]
      check: {lifecycle_stage: {in: [prospect, customer]}}
      presets: {segment: smb}
  - name: distributors-feedback
    subjects: [{kind: distributor}]
    resource: Feedback
    rows: {organization: {eq: $subject.org}}
    read: {visible: [id, text, visibility]}
    create:
      fields: [customer_id, channel, kind, text]
      presets: {organization: $subject.org, visibility: partners}
"""


@pytest.fixture
def policy() -> Iterator[None]:
    saved = access.rules
    access.rules = PolicyRules(
        97, parse(POLICY), sharing.operator_guardrails(), pseudonym_secret=SECRET.encode()
    )
    yield
    access.rules = saved


async def _world(db: Database) -> tuple[Organization, Customer]:
    org = await make_org(db, "distributor", slug="acme")
    customer = await make_customer(
        db,
        name="Ada",
        lifecycle_stage="lead",
        segment="enterprise",
        consent_share_with_partners=True,  # the guardrails hide other customers
        provenance={},
    )
    await assign(db, customer, org)
    return org, customer


async def _trail(db: Database) -> tuple[int, int]:
    """How many audit and outbox events there are."""
    return await count_rows(db, AuditEvent), await count_rows(db, OutboxEvent)


def _stage(stage: str) -> Update:
    return Update({"lifecycle_stage": stage, "version": col(Customer.version) + 1})


def _customer_update(customer: Customer, **overrides: Any) -> WriteRequest:
    values: dict[str, Any] = {
        "target": customer.id,
        "given": {"lifecycle_stage": "lifecycleStage"},
        "root": "patch",
    }
    return WriteRequest(
        Resource.CUSTOMER,
        Action.UPDATE,
        audit="customer.update",
        operation=Operation.UPDATE,
        **{**values, **overrides},
    )


def _feedback(customer: Customer) -> Feedback:
    # What the input asked for; the policy's presets decide organization and visibility.
    return Feedback(
        customer_id=customer.id,
        organization_id=uuid.uuid4(),
        channel="email",
        kind="praise",
        text="Great",
        visibility="internal",
    )


def _feedback_create(customer: Customer, given: dict[str, str] | None = None) -> WriteRequest:
    return WriteRequest(
        Resource.FEEDBACK,
        Action.CREATE,
        audit="feedback.create",
        operation=Operation.CREATE,
        about=customer.id,
        given=given or {"customer_id": "customerId", "text": "text"},
    )


async def test_update_writes_checks_records_and_reads_back_projected(
    db: Database, policy: None
) -> None:
    org, customer = await _world(db)
    before = await _trail(db)
    async with db.transaction() as session:
        written = await pipeline.update(
            session,
            sharing.principal_for(org),
            _customer_update(customer),
            lambda row: _stage("prospect"),
        )
    # Read back through the scoped select: only what the rule shows, nothing else.
    assert dict(written.record) == {"id": customer.id, "name": "Ada", "lifecycle_stage": "prospect"}
    assert written.changed and written.row.version == 2  # the ORM row is what was written
    stored = await load(db, Customer, customer.id)
    # The update's presets are forced with it.
    assert (stored.lifecycle_stage, stored.segment, stored.version) == ("prospect", "smb", 2)
    assert await _trail(db) == (before[0] + 1, before[1] + 1)


async def test_a_row_the_check_refuses_rolls_back_with_no_audit_and_no_event(
    db: Database, policy: None
) -> None:
    org, customer = await _world(db)
    before = await _trail(db)
    with pytest.raises(ForbiddenError, match="does not let you leave this Customer"):
        async with db.transaction() as session:
            await pipeline.update(
                session,
                sharing.principal_for(org),
                _customer_update(customer),
                lambda row: _stage("churned"),
            )
    stored = await load(db, Customer, customer.id)
    assert (stored.lifecycle_stage, stored.version) == ("lead", 1)
    assert await _trail(db) == before


async def test_an_invisible_target_is_not_found_like_a_missing_one(
    db: Database, policy: None
) -> None:
    org, _ = await _world(db)
    stranger = await make_customer(db, name="Eve")  # not assigned to acme
    principal = sharing.principal_for(org)
    messages = []
    for target in (stranger.id, uuid.uuid4()):
        with pytest.raises(NotFoundError) as info:
            async with db.transaction() as session:
                await pipeline.update(
                    session, principal, _customer_update(stranger, target=target), _never
                )
        messages.append(str(info.value))
    assert messages == ["no such customer", "no such customer"]


def _never(row: Any) -> Update:
    raise AssertionError("the change of a write that may not happen was asked for")


async def test_fields_outside_the_rule_are_forbidden_at_their_paths_and_nothing_is_written(
    db: Database, policy: None
) -> None:
    org, customer = await _world(db)
    before = await _trail(db)
    request = _customer_update(customer, given={"name": "name", "segment": "segment"})
    with pytest.raises(InvalidInputError) as info:
        async with db.transaction() as session:
            await pipeline.update(session, sharing.principal_for(org), request, _never)
    assert [(p.path, p.code) for p in info.value.problems] == [
        (("patch", "name"), "FORBIDDEN"),
        (("patch", "segment"), "FORBIDDEN"),
    ]
    # An argument (no input object) is named by itself.
    request = _customer_update(customer, given={"name": "name"}, root=None)
    with pytest.raises(InvalidInputError) as info:
        async with db.transaction() as session:
            await pipeline.update(session, sharing.principal_for(org), request, _never)
    assert [p.path for p in info.value.problems] == [("name",)]
    assert await _trail(db) == before


async def test_a_create_outside_the_write_rule_writes_nothing(db: Database, policy: None) -> None:
    org, customer = await _world(db)
    before = await _trail(db)
    request = WriteRequest(
        Resource.PURCHASE,
        Action.CREATE,
        audit="purchase.create",
        operation=Operation.CREATE,
        about=customer.id,
        given={"customer_id": "customerId"},
    )
    with pytest.raises(ForbiddenError):
        async with db.transaction() as session:
            await pipeline.create(session, sharing.principal_for(org), request, _never_built)
    # A field outside the create rule: a FORBIDDEN user error, nothing built.
    with pytest.raises(InvalidInputError) as info:
        async with db.transaction() as session:
            await pipeline.create(
                session,
                sharing.principal_for(org),
                _feedback_create(customer, {"customer_id": "customerId", "tags": "tags"}),
                _never_built,
            )
    assert [(p.path, p.code) for p in info.value.problems] == [(("input", "tags"), "FORBIDDEN")]
    assert await count_rows(db, Purchase) == 0
    assert await count_rows(db, Feedback) == 0
    assert await _trail(db) == before


def _never_built() -> Feedback:
    raise AssertionError("the row of a write that may not happen was built")


async def test_a_create_forces_presets_records_once_and_reads_back(
    db: Database, policy: None
) -> None:
    org, customer = await _world(db)
    before = await _trail(db)
    async with db.transaction() as session:
        written = await pipeline.create(
            session,
            sharing.principal_for(org),
            _feedback_create(customer),
            lambda: _feedback(customer),
        )
    assert dict(written.record) == {
        "id": written.row.id,
        "text": "Great",
        "visibility": "partners",
    }
    stored = await load(db, Feedback, written.row.id)
    assert (stored.organization_id, stored.visibility) == (org.id, "partners")
    assert await _trail(db) == (before[0] + 1, before[1] + 1)


async def test_nothing_to_change_writes_nothing_and_reads_back(db: Database, policy: None) -> None:
    org, customer = await _world(db)
    before = await _trail(db)
    async with db.transaction() as session:
        written = await pipeline.update(
            session, sharing.principal_for(org), _customer_update(customer), lambda row: None
        )
    assert not written.changed
    assert written.record["lifecycle_stage"] == "lead"
    assert (await load(db, Customer, customer.id)).version == 1
    assert await _trail(db) == before


async def test_a_missed_compare_and_set_is_retried_then_a_conflict(
    db: Database, policy: None
) -> None:
    org, customer = await _world(db)
    principal = sharing.principal_for(org)
    seen: list[int] = []

    def stale_then_current(row: Customer) -> Update:
        # The first round compares with a version nobody has (a writer got in first).
        seen.append(row.version)
        expected = 0 if len(seen) == 1 else row.version
        return Update(_stage("prospect").values, where=(col(Customer.version) == expected,))

    async with db.transaction() as session:
        written = await pipeline.update(
            session, principal, _customer_update(customer), stale_then_current, attempts=2
        )
    assert seen == [1, 1] and written.row.version == 2

    def always_stale(row: Customer) -> Update:
        return Update(_stage("customer").values, where=(col(Customer.version) == 0,))

    with pytest.raises(ConflictError, match="at version 2"):
        async with db.transaction() as session:
            await pipeline.update(
                session,
                principal,
                _customer_update(customer),
                always_stale,
                conflict=lambda row: ConflictError(f"the customer is at version {row.version}"),
            )
    assert (await load(db, Customer, customer.id)).lifecycle_stage == "prospect"


# -- no write decided outside hub/access -------------------------------------------------

SCANNED = ("hub", "schema", "connectors", "app.py")

FORBIDDEN_CALLS = {
    "check_written": "the row's check after a write (pipeline step 5)",
    "write_check": "the rule set's check condition",
    "presets": "the values a policy forces on a write (pipeline step 4)",
    "check_fields": "whether the fields given are writable (pipeline step 3)",
    "check_customer_write": "the old per-module target check (pipeline step 1)",
    "record_change": "the audit and outbox record of a write (pipeline step 6)",
    "writable_fields": "the fields a write may set",
}
"""Calls that decide or do a step of a write: only ``hub/access`` makes them."""

ALLOWED = {
    # Administrative writes (hub:admin on the operator) are not policy-governed: they
    # record their changes through the same step the pipeline uses.
    ("hub/identity.py", "record_change"): "merge_customers",
    ("hub/assignments.py", "record_change"): "assign_partner, unassign_partner",
    ("hub/review.py", "record_change"): "approve_change",
    # The per-audience schema offers the input fields a caller may set; it writes nothing.
    ("schema/audience.py", "writable_fields"): "the per-audience schema",
    # Policy preview compares a candidate rule set's rows with the current one's on the
    # data; it serves no rows and decides no access.
    ("hub/sharing.py", "row_filter"): "preview",
}


def violations_in(path: str, source: str) -> list[str]:
    """Each forbidden call in ``source``, and each ``row_filter`` read from anything but
    the access module (``access.row_filter`` checks the scope; ``access.rules`` and
    other rule sets do not), that :data:`ALLOWED` does not excuse."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if name == "row_filter":
            bad = not (isinstance(node.value, ast.Name) and node.value.id == "access")
        else:
            bad = name in FORBIDDEN_CALLS
        if bad and (path, name) not in ALLOWED:
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    for node in ast.walk(ast.parse(source)):
        # ``from hub.changes import record_change`` and friends, called by bare name.
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in FORBIDDEN_CALLS and (path, alias.name) not in ALLOWED:
                    found.append(f"{path}:{node.lineno}: imports {alias.name}")
    return found


def _scanned() -> Iterator[tuple[str, Path]]:
    for entry in SCANNED:
        paths = [ROOT / entry] if entry.endswith(".py") else sorted((ROOT / entry).rglob("*.py"))
        for path in paths:
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith("hub/access/") and "migrations/versions" not in relative:
                yield relative, path


def test_the_scanner_sees_each_way_of_deciding_a_write() -> None:
    source = """
from hub.changes import record_change
rows = select(Customer).where(access.rules.row_filter(principal, resource))
rules.row_filter(principal, resource)
access.check_written(session, principal, resource, action, row_id)
values = {**access.presets(principal, resource, action)}
access.check_fields(principal, resource, action, given)
await changes.record_change(session, principal, "x", "Customer", i, {}, {})
ok = access.row_filter(principal, resource)
"""
    found = violations_in("hub/example.py", source)
    assert sorted(line.split(": ", 1)[1] for line in found) == [
        "access.check_fields",
        "access.check_written",
        "access.presets",
        "access.rules.row_filter",
        "changes.record_change",
        "imports record_change",
        "rules.row_filter",
    ]
    # The access module's own row filter (scope checked) is how reads ask for rows.
    assert not any(line.endswith(": access.row_filter") for line in found)


def test_no_module_outside_the_access_module_decides_a_write() -> None:
    found = [v for name, path in _scanned() for v in violations_in(name, path.read_text())]
    assert found == [], "decide writes in hub/access (hub.access.pipeline):\n" + "\n".join(found)


def test_every_allowance_is_still_needed() -> None:
    """An allowance nothing uses any more is a hole left open: remove it."""
    used = set()
    for name, path in _scanned():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (name, node.attr) in ALLOWED:
                used.add((name, node.attr))
    assert set(ALLOWED) - used == set()
