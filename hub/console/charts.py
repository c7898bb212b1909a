"""Charts as server-rendered SVG (no chart library, no script): weekly series drawn as
lines or stacked bars, each with a legend and the numbers in a table for screen readers
and for anyone who would rather read them.

Colours come from the stylesheet (classes ``s0``..``s7``), so the SVG carries no inline
style and passes the console's Content-Security-Policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28
PALETTE = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    """One chart: ``weeks`` (Mondays) along x, one value per week per series."""

    id: str
    title: str
    weeks: list[date]
    series: list[Series]
    kind: str = "line"  # or "bars" (stacked)
    unit: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(v for s in self.series for v in s.values if v)

    def svg(self) -> Markup:
        return Markup(_svg(self))  # noqa: S704 - every text in it is escaped


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for multiple in (1, 2, 2.5, 5, 10):
        if value <= step * multiple:
            return float(step * multiple)
    return float(step * 10)  # pragma: no cover


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def _svg(chart: Chart) -> str:
    n = len(chart.weeks)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if chart.kind == "bars":
        totals = [sum(s.values[i] or 0 for s in chart.series) for i in range(n)]
        top = _nice_max(max(totals, default=0))
    else:
        top = _nice_max(max((v or 0 for s in chart.series for v in s.values), default=0))
    slot = plot_w / max(n, 1)

    def x(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * (v / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart.id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart.id}-title">{escape(chart.title)}</title>',
    ]
    for k in range(5):
        tick = top * k / 4
        yy = y(tick)
        parts.append(
            f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
        )
        parts.append(f'<text x="{LEFT - 4}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    label_every = max(1, n // 6)
    for i, week in enumerate(chart.weeks):
        if i % label_every == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{week.strftime('%d %b')}</text>"
            )
    if chart.kind == "bars":
        width = max(slot * 0.7, 1)
        base = [0.0] * n
        for k, series in enumerate(chart.series):
            for i, value in enumerate(series.values):
                if not value:
                    continue
                y0, y1 = y(base[i]), y(base[i] + value)
                base[i] += value
                parts.append(
                    f'<rect class="s{k % PALETTE}" x="{x(i) - width / 2:.1f}" y="{y1:.1f}" '
                    f'width="{width:.1f}" height="{max(y0 - y1, 0.5):.1f}">'
                    f"<title>{escape(series.name)}, week of {chart.weeks[i].isoformat()}: "
                    f"{_fmt(value)}{escape(chart.unit)}</title></rect>"
                )
    else:
        for k, series in enumerate(chart.series):
            points = [(x(i), y(v)) for i, v in enumerate(series.values) if v is not None]
            if not points:
                continue
            joined = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline class="s{k % PALETTE}" points="{joined}"/>')
            for i, value in enumerate(series.values):
                if value is None:
                    continue
                parts.append(
                    f'<circle class="s{k % PALETTE}" cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5">'
                    f"<title>{escape(series.name)}, week of {chart.weeks[i].isoformat()}: "
                    f"{_fmt(value)}{escape(chart.unit)}</title></circle>"
                )
    parts.append("</svg>")
    return "".join(parts)


def top_series(
    counts: dict[str, list[float]], limit: int = 6, other: str = "other"
) -> list[Series]:
    """The ``limit`` largest series by total, the rest summed into ``other``."""
    ranked = sorted(counts, key=lambda name: -sum(counts[name]))
    kept = ranked[:limit]
    series: list[Series] = [Series(name, list[float | None](counts[name])) for name in kept]
    rest = ranked[limit:]
    if rest:
        size = len(counts[rest[0]])
        summed = [sum(counts[name][i] for name in rest) for i in range(size)]
        series.append(Series(other, list[float | None](summed)))
    return series
