"""The hash-chained audit log (issue 5 §7): verification names the first modified,
deleted or reordered event, on both backends; admin changes are audited in their own
transaction, without secrets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import admin, audit
from hub.db import Database
from hub.errors import InvalidInputError
from hub.models import AuditAnchor, AuditEvent, Disclosure, Organization, OrgKind
from hub.principal import Principal
from tests.conftest import make_org

EVENTS = 6


@pytest.fixture(autouse=True)
async def empty_log(db: Database) -> None:
    """Start from an empty chain (the session's database holds the policy install event)."""
    async with db.transaction() as session:
        await session.execute(delete(Disclosure))
        await session.execute(delete(AuditEvent))
        await session.execute(delete(AuditAnchor))


async def chain(db: Database, n: int = EVENTS) -> list[AuditEvent]:
    """``n`` events, each appended in its own transaction (like real writers)."""
    events = []
    for i in range(n):
        async with db.transaction() as session:
            entry = audit.Entry(
                actor="operator/test",
                organization="operator",
                client="test",
                action="test.event",
                target=f"thing:{i}",
                details={"n": i, "note": "é and 🙂", "id": uuid.uuid4()},
            )
            events.append(await audit.append(session, entry))
    return events


async def verify(db: Database) -> tuple[int, audit.ChainBreak | None]:
    async with db.session() as session:
        return await audit.verify_chain(session, batch=4)  # several batches


async def sql(db: Database, statement: str, **params: Any) -> None:
    async with db.transaction() as session:
        await session.execute(text(statement), params)


async def test_an_intact_chain_verifies(db: Database) -> None:
    events = await chain(db)
    assert events[0].prev_hash == audit.GENESIS
    assert [e.seq for e in events] == list(range(1, EVENTS + 1))
    seen: list[int] = []
    async with db.session() as session:
        checked, broken = await audit.verify_chain(session, batch=4, progress=seen.append)
    assert (checked, broken) == (EVENTS, None)
    assert seen == [4, EVENTS]


async def test_an_empty_chain_verifies(db: Database) -> None:
    assert await verify(db) == (0, None)


def _swap_seq(a: int, b: int) -> list[tuple[str, dict[str, Any]]]:
    # seq is unique: go through a free number.
    return [
        ("UPDATE audit_event SET seq = -1 WHERE seq = :a", {"a": a}),
        ("UPDATE audit_event SET seq = :a WHERE seq = :b", {"a": a, "b": b}),
        ("UPDATE audit_event SET seq = :b WHERE seq = -1", {"b": b}),
    ]


def _id_param(db: Database, event: AuditEvent) -> Any:
    # SQLite stores UUIDs as 32 hex characters, PostgreSQL as uuid.
    return event.id.hex if db.engine.dialect.name == "sqlite" else event.id


Tamper = Callable[[Database, list[AuditEvent]], Awaitable[tuple[int, AuditEvent]]]


async def modify_details(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    await sql(
        db,
        "UPDATE audit_event SET details = :d WHERE id = :id",
        d=json.dumps({"n": 99}),
        id=_id_param(db, events[2]),
    )
    return 3, events[2]


async def modify_actor(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    await sql(db, "UPDATE audit_event SET actor = 'someone/else' WHERE seq = 5")
    return 5, events[4]


async def delete_one(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    await sql(db, "DELETE FROM audit_event WHERE seq = 3")
    # Event 3 is named as missing; the row found in its place is event 4.
    return 3, events[3]


async def delete_first(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    await sql(db, "DELETE FROM audit_event WHERE seq = 1")
    return 1, events[1]


async def swap_seq(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    for statement, params in _swap_seq(2, 4):
        await sql(db, statement, **params)
    # Event 4's row now sits at position 2: its link to event 1 is wrong.
    return 2, events[3]


async def swap_details(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    for target, source in ((events[1], events[3]), (events[3], events[1])):
        await sql(
            db,
            "UPDATE audit_event SET details = :d WHERE id = :id",
            d=json.dumps(source.details),
            id=_id_param(db, target),
        )
    return 2, events[1]


async def rehash_modified(db: Database, events: list[AuditEvent]) -> tuple[int, AuditEvent]:
    """A forger who recomputes the modified row's own hash breaks the next link."""
    third = events[2]
    forged = audit.event_hash(
        seq=third.seq,
        prev_hash=third.prev_hash,
        at=third.at,
        actor=third.actor,
        organization=third.organization,
        client=third.client,
        action=third.action,
        target=third.target,
        details={"n": 99},
    )
    await sql(
        db,
        "UPDATE audit_event SET details = :d, hash = :h WHERE seq = 3",
        d=json.dumps({"n": 99}),
        h=forged,
    )
    return 4, events[3]


TAMPERING: dict[str, tuple[Tamper, str]] = {
    "modify details": (modify_details, "modified"),
    "modify actor": (modify_actor, "modified"),
    "delete one": (delete_one, "missing"),
    "delete the first": (delete_first, "missing"),
    "swap seq": (swap_seq, "prev_hash"),
    "swap details": (swap_details, "modified"),
    "modify and rehash": (rehash_modified, "prev_hash"),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
async def test_tampering_names_the_first_broken_event(db: Database, kind: str) -> None:
    events = await chain(db)
    tamper, reason = TAMPERING[kind]
    seq, event = await tamper(db, events)
    checked, broken = await verify(db)
    assert broken is not None, kind
    assert (broken.seq, broken.event_id) == (seq, event.id)
    assert reason in broken.reason
    assert checked == seq - 1


async def test_appends_after_verification_continue_the_chain(db: Database) -> None:
    events = await chain(db, 2)
    async with db.transaction() as session:
        more = await audit.append_all(
            session,
            [audit.Entry(actor="a", action="x", target=f"t{i}", details={}) for i in range(3)],
        )
    assert [e.seq for e in more] == [3, 4, 5]
    assert more[0].prev_hash == events[-1].hash
    assert await verify(db) == (5, None)


# --- admin changes ----------------------------------------------------------------------


@pytest.fixture
async def operator(db: Database) -> Principal:
    org = await make_org(db, OrgKind.OPERATOR, "operator")
    return Principal(
        client_id="console",
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind.OPERATOR,
        scopes=frozenset({"hub:admin"}),
    )


async def events_of(db: Database) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))
        return list(rows.scalars())


async def in_transaction(db: Database, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    async with db.transaction() as session:
        return await work(session)


async def test_admin_changes_are_audited_without_secrets(db: Database, operator: Principal) -> None:
    p = operator
    await in_transaction(
        db,
        lambda s: admin.create_organization(
            s,
            p,
            admin.OrganizationFields(
                slug="acme", name="Acme", kind="distributor", attributes={"regions": ["EU"]}
            ),
        ),
    )
    await in_transaction(
        db,
        lambda s: admin.update_organization(
            s, p, "acme", admin.OrganizationFields(name="Acme Ltd")
        ),
    )
    registered = await in_transaction(
        db,
        lambda s: admin.register_client(
            s, p, admin.RegisterFields("acme", "sync", ["customers:read"])
        ),
    )
    client_id = registered.client.client_id
    rotated = await in_transaction(db, lambda s: admin.rotate_client_secret(s, p, client_id, 60))
    await in_transaction(db, lambda s: admin.disable_client(s, p, client_id))
    staff = await in_transaction(
        db,
        lambda s: admin.add_staff_user(
            s, p, admin.StaffUserFields("operator", "Ann@Example.com", "Ann", ["admin"])
        ),
    )
    await in_transaction(db, lambda s: admin.disable_staff_user(s, p, "ann@example.com"))
    await in_transaction(db, lambda s: admin.disable_organization(s, p, "acme"))

    events = await events_of(db)
    assert [(e.action, e.target) for e in events] == [
        ("organization.create", "organization:acme"),
        ("organization.update", "organization:acme"),
        ("client.register", f"client:{client_id}"),
        ("client.rotate_secret", f"client:{client_id}"),
        ("client.disable", f"client:{client_id}"),
        ("staff_user.create", "staff_user:ann@example.com"),
        ("staff_user.disable", "staff_user:ann@example.com"),
        ("organization.disable", "organization:acme"),
    ]
    assert {(e.actor, e.organization, e.client) for e in events} == {
        ("operator/console", "operator", "console")
    }
    details = [e.details for e in events]
    assert details[0] == {
        "slug": "acme",
        "name": "Acme",
        "kind": "distributor",
        "attributes": {"regions": ["EU"]},
    }
    assert details[1] == {"changes": {"name": {"before": "Acme", "after": "Acme Ltd"}}}
    assert details[2] == {
        "organization": "acme",
        "name": "sync",
        "scopes": ["customers:read"],
        "auth_method": "client_secret_basic",
    }
    assert details[5] == {"organization": "operator", "name": "Ann", "roles": ["admin"]}
    logged = json.dumps([e.details for e in events])
    for secret in (registered.secret, rotated.secret, staff.initial_password):
        assert secret and secret not in logged
    assert await verify(db) == (len(events), None)


async def test_a_refused_admin_change_leaves_no_event(db: Database, operator: Principal) -> None:
    with pytest.raises(InvalidInputError):
        await in_transaction(
            db,
            lambda s: admin.create_organization(
                s, operator, admin.OrganizationFields(slug="Bad Slug", name="x", kind="vendor")
            ),
        )

    # A change rolled back after the fact takes its event with it (same transaction).
    class Abort(Exception):
        pass

    async def create_then_abort() -> None:
        async with db.transaction() as session:
            fields = admin.OrganizationFields(slug="gone", name="x", kind="vendor")
            await admin.create_organization(session, operator, fields)
            raise Abort

    with pytest.raises(Abort):
        await create_then_abort()
    assert await events_of(db) == []
    async with db.session() as session:
        found = await session.execute(select(Organization).where(col(Organization.slug) == "gone"))
        assert found.first() is None
