"""The dashboard's numbers, per week over the last :data:`WEEKS` weeks: feedback volume
and average CSAT by product and by contributing organization, disclosures per partner,
sync runs by outcome and dead letters, and the policy version in force.

Aggregates only (counts and averages, no customer's data). Rows of the window are read
and folded into weeks here, the same on SQLite and PostgreSQL; the window bounds the work.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.console.charts import Chart, Series, top_series
from hub.models import Feedback, Organization, PolicyVersion
from hub.models.policy import Disclosure
from hub.models.sync import SyncDeadLetter, SyncRun

WEEKS = 26


def _weeks(today: date) -> list[date]:
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]


def _index(weeks: list[date], at: datetime) -> int | None:
    day = at.astimezone(UTC).date()
    i = (day - weeks[0]).days // 7
    return i if 0 <= i < len(weeks) else None


def _counts(weeks: list[date], rows: list[tuple[datetime, str]]) -> dict[str, list[float]]:
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    for at, name in rows:
        i = _index(weeks, at)
        if i is not None:
            counts[name][i] += 1
    return dict(counts)


async def dashboard(session: AsyncSession, now: datetime | None = None) -> list[Chart]:
    now = now or datetime.now(UTC)
    weeks = _weeks(now.date())
    start = datetime.combine(weeks[0], time(), tzinfo=UTC)
    slugs = dict(
        (await session.execute(select(col(Organization.id), col(Organization.slug)))).all()
    )

    feedback = (
        await session.execute(
            select_columns(
                col(Feedback.created_at),
                col(Feedback.product),
                col(Feedback.organization_id),
                col(Feedback.scale),
                col(Feedback.score),
            ).where(col(Feedback.created_at) >= start)
        )
    ).all()
    by_product = _counts(weeks, [(r[0], r[1] or "(no product)") for r in feedback])
    by_org = _counts(weeks, [(r[0], slugs.get(r[2], "?")) for r in feedback])
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    seen: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(weeks))
    for at, product, _org, scale, score in feedback:
        i = _index(weeks, at)
        if i is None or scale != "csat" or score is None:
            continue
        name = product or "(no product)"
        sums[name][i] += score
        seen[name][i] += 1
    products = [s.name for s in top_series(by_product, limit=5) if s.name != "other"]
    csat = [
        Series(
            name,
            [sums[name][i] / seen[name][i] if seen[name][i] else None for i in range(len(weeks))],
        )
        for name in products
        if name in seen
    ]

    disclosed = (
        await session.execute(
            select(col(Disclosure.at), col(Disclosure.organization)).where(
                col(Disclosure.at) >= start
            )
        )
    ).all()
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
    run_counts = _counts(weeks, [(at, status) for at, status in runs])
    run_counts["dead letters"] = _counts(weeks, [(r[0], "x") for r in letters]).get(
        "x", [0.0] * len(weeks)
    )

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
    published = [f"version {n}: {at:%Y-%m-%d}" for at, n in versions if at >= start]

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
        Chart(
            "disclosures",
            "Customers disclosed to partners per week (one per read and customer), by partner",
            weeks,
            top_series(_counts(weeks, list(disclosed))),
            "bars",
        ),
        Chart(
            "sync",
            "Sync runs per week by outcome, and dead letters",
            weeks,
            [
                Series(name, list[float | None](values))
                for name, values in sorted(run_counts.items())
            ],
            "line",
        ),
        Chart(
            "policies",
            "Policy version in force",
            weeks,
            [Series("version", in_force)],
            "line",
            notes=published,
        ),
    ]
