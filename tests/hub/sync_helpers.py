"""Shared setup of the sync tests: a support department, customers to match, a runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlmodel import SQLModel, col

from hub.access import Resource
from hub.db import Database, make_engine
from hub.models import Feedback, Organization
from hub.models.sync import SyncDeadLetter
from hub.sync import Runner
from hub.sync.imports import define_import, readable_file
from tests.conftest import SECRET, make_org
from tests.hub.factories import make_customers

T = TypeVar("T")


def run_db(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """``work`` on a database of its own, from a test that is not async (the CLI's
    ``asyncio.run`` needs one)."""

    async def go() -> T:
        database = Database(make_engine(database_url))
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


async def support_org(db: Database, slug: str = "support") -> Organization:
    return await make_org(db, "department", slug, attributes={"roles": ["support"]})


async def customers(db: Database, count: int) -> None:
    await make_customers(db, [{"email": f"person{n}@example.com"} for n in range(count)])


def runner(db: Database, **options: Any) -> Runner:
    return Runner(db, SECRET.encode(), backoff=0.01, **options)


async def import_file(
    db: Database,
    path: Path,
    *,
    org: str = "support",
    resource: Resource = Resource.FEEDBACK,
    mapping: dict[str, Any] | None = None,
) -> str:
    async with db.transaction() as session:
        return await define_import(session, resource, readable_file(path), org, mapping)


async def count(db: Database, model: type[SQLModel], *where: Any) -> int:
    async with db.session() as session:
        statement = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(statement)).scalar_one())


async def feedback_count(db: Database) -> int:
    return await count(db, Feedback)


async def dead_letters(db: Database) -> list[SyncDeadLetter]:
    async with db.session() as session:
        rows = await session.execute(select(SyncDeadLetter).order_by(col(SyncDeadLetter.position)))
        return list(rows.scalars())
