"""The dashboard's numbers, week by week: feedback volume and average CSAT by product and
by contributing organization, disclosures per partner, sync runs by outcome and dead
letters, and the policy version in force.

Each chart covers the :data:`WEEKS` weeks up to the newest week holding its data (today
at the latest), so a hub whose feedback stopped arriving a while ago (or the demo's data,
seeded up to a fixed date) still shows its last half-year rather than an empty one.
Aggregates only (counts and averages, no customer's data). Rows of a window are read and
folded into weeks here, the same on SQLite and PostgreSQL; the window bounds the work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.console.charts import Chart, Series, top_series
from hub.disclosures import customer_count
from hub.models import Feedback, Organization, PolicyVersion
from hub.models.policy import Disclosure
from hub.models.sync import SyncDeadLetter, SyncRun

WEEKS = 26


def weeks_until(end: date) -> list[date]:
    """The Mondays of the :data:`WEEKS` weeks ending with ``end``'s week."""
    monday = end - timedelta(days=end.weekday())
    return [monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]


def _start(weeks: list[date]) -> datetime:
    return datetime.combine(weeks[0], time(), tzinfo=UTC)


def _index(weeks: list[date], at: datetime) -> int | None:
    i = (at.astimezone(UTC).date() - weeks[0]).days // 7
    return i if 0 <= i < len(weeks) else None


def counts_by_week(
    weeks: list[date], rows: Sequence[tuple[datetime, str]]
) -> dict[str, list[float]]:
    """``{name: [count per week]}`` of ``(when, name)`` rows."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    for at, name in rows:
        i = _index(weeks, at)
        if i is not None:
            counts[name][i] += 1
    return dict(counts)


async def _newest(session: AsyncSession, column: Any, today: date) -> date:
    newest = (await session.execute(select_columns(func.max(column)))).scalar_one_or_none()
    if not isinstance(newest, datetime):
        return today
    return min(today, newest.astimezone(UTC).date())


async def _feedback(session: AsyncSession, today: date) -> list[Chart]:
    weeks = weeks_until(await _newest(session, col(Feedback.created_at), today))
    slugs = dict(
        (await session.execute(select(col(Organization.id), col(Organization.slug)))).all()
    )
    rows = (
        await session.execute(
            select_columns(
                col(Feedback.created_at),
                col(Feedback.product),
                col(Feedback.organization_id),
                col(Feedback.scale),
                col(Feedback.score),
            ).where(col(Feedback.created_at) >= _start(weeks))
        )
    ).all()
    by_product = counts_by_week(weeks, [(r[0], r[1] or "(no product)") for r in rows])
    by_org = counts_by_week(weeks, [(r[0], slugs.get(r[2], "?")) for r in rows])
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    seen: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    for at, product, _org, scale, score in rows:
        i = _index(weeks, at)
        if i is None or scale != "csat" or score is None:
            continue
        name = product or "(no product)"
        sums[name][i] += score
        seen[name][i] += 1
    products = [s.name for s in top_series(by_product, limit=5) if s.name != "other"]
    csat = [
        Series(
            name, [sums[name][i] / seen[name][i] if seen[name][i] else None for i in range(WEEKS)]
        )
        for name in products
        if name in seen
    ]
    return [
        Chart(
            "feedback-product",
            "Feedback per week, by product",
            weeks,
            top_series(by_product),
            "bars",
        ),
        Chart("csat-product", "Average CSAT (1 to 5) per week, by product", weeks, csat, "line"),
        Chart(
            "feedback-org",
            "Feedback per week, by contributing organization",
            weeks,
            top_series(by_org),
            "bars",
        ),
    ]


async def _disclosures(session: AsyncSession, today: date) -> Chart:
    weeks = weeks_until(await _newest(session, col(Disclosure.at), today))
    # An index row names the customers of a read (all of them on PostgreSQL, one on
    # SQLite): each counts.
    rows = await session.execute(
        select_columns(
            col(Disclosure.at),
            col(Disclosure.organization),
            customer_count(col(Disclosure.customer_ids)),
        ).where(col(Disclosure.at) >= _start(weeks))
    )
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    for at, organization, customers in rows:
        i = _index(weeks, at)
        if i is not None:
            counts[organization][i] += customers
    return Chart(
        "disclosures",
        "Customers disclosed to partners per week (one per read and customer), by partner",
        weeks,
        top_series(dict(counts)),
        "bars",
    )


async def _sync(session: AsyncSession, today: date) -> Chart:
    weeks = weeks_until(await _newest(session, col(SyncRun.started_at), today))
    start = _start(weeks)
    runs = (
        await session.execute(
            select(col(SyncRun.started_at), col(SyncRun.status)).where(
                col(SyncRun.started_at) >= start
            )
        )
    ).all()
    letters = (
        await session.execute(
            select(col(SyncDeadLetter.created_at)).where(col(SyncDeadLetter.created_at) >= start)
        )
    ).all()
    counts = counts_by_week(weeks, [(at, f"runs {status}") for at, status in runs])
    counts["dead letters"] = counts_by_week(weeks, [(r[0], "x") for r in letters]).get(
        "x", [0.0] * WEEKS
    )
    series = [Series(name, list[float | None](values)) for name, values in sorted(counts.items())]
    return Chart("sync", "Sync runs per week by outcome, and new dead letters", weeks, series)


async def _policies(session: AsyncSession, today: date) -> Chart:
    weeks = weeks_until(today)
    versions = (
        await session.execute(
            select(col(PolicyVersion.created_at), col(PolicyVersion.number)).order_by(
                col(PolicyVersion.number)
            )
        )
    ).all()
    in_force: list[float | None] = []
    for week in weeks:
        end = datetime.combine(week + timedelta(days=7), time(), tzinfo=UTC)
        numbers = [n for at, n in versions if at < end]
        in_force.append(float(max(numbers)) if numbers else None)
    start = _start(weeks)
    published = [f"version {n}: {at:%Y-%m-%d}" for at, n in versions if at >= start]
    return Chart(
        "policies", "Policy version in force", weeks, [Series("version", in_force)], notes=published
    )


async def dashboard(session: AsyncSession, now: datetime | None = None) -> list[Chart]:
    today = (now or datetime.now(UTC)).date()
    return [
        *await _feedback(session, today),
        await _disclosures(session, today),
        await _sync(session, today),
        await _policies(session, today),
    ]
