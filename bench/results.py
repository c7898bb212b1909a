"""Scenario results: merging load reports, percentiles, the printed table and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.hubapi import PageShape
from bench.load import LoadReport
from bench.policytime import PolicyTiming

SCENARIOS = {
    "a": "customer(id), operator",
    "b": "partner page 50x(8 fields + feedback(5))",
    "d": "the same page as the operator (no policy conditions)",
    "c": "ceiling: bare Starlette, (b)'s body",
}
# (b)/(d) on req/s: the share of the operator's speed a partner's page keeps.
POLICY_GOAL = 0.85


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    sql_per_request: float | None  # the median of X-SQL-Statements; None when not sent
    sql_distribution: dict[str, int]
    errors: int
    error_sample: str | None
    client_cpu_cores: float  # load processes' CPU time / window: 1.0 is one busy core
    server_cpu_cores: float | None  # the server's process tree, likewise
    server_cpu_ms_per_request: float | None
    # The rest of the machine's busy CPU: PostgreSQL, and anything else running (noise).
    other_cpu_cores: float | None

    @property
    def label(self) -> str:
        return SCENARIOS[self.scenario]


@dataclass
class BackendResult:
    backend: str
    customers: int
    seed_seconds: float
    response_bytes: int
    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    pages: dict[str, PageShape] = field(default_factory=dict)  # the captured (b) and (d)
    warnings: list[str] = field(default_factory=list)
    policy: PolicyTiming | None = None

    def ratio(self, metric: str, over: str = "c") -> float | None:
        """(b)/(``over``) for ``metric`` (an attribute of ScenarioResult), if both ran."""
        b, other = self.scenarios.get("b"), self.scenarios.get(over)
        if b is None or other is None:
            return None
        denominator = getattr(other, metric)
        return None if not denominator else float(getattr(b, metric)) / float(denominator)

    def ratios(self, over: str) -> dict[str, float | None]:
        return {m: self.ratio(m, over) for m in ("requests_per_s", "p50_ms", "p99_ms")}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of sorted values, interpolating linearly."""
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def merge(
    scenario: str,
    reports: Sequence[LoadReport],
    server_cpu_s: float | None,
    machine_cpu_s: float | None,
) -> ScenarioResult:
    latencies = sorted(ms for report in reports for ms in report.latencies_ms)
    sql: Counter[str] = Counter()
    for report in reports:
        sql.update(report.sql_statements)
    counted = [int(n) for n, times in sql.items() if n.isdigit() for _ in range(times)]
    window = max(report.window_s for report in reports)
    requests = len(latencies)
    sample = next((r.error_sample for r in reports if r.error_sample), None)
    client_cpu_s = sum(report.cpu_s for report in reports)
    other_cpu_s = (
        None
        if machine_cpu_s is None or server_cpu_s is None
        else max(0.0, machine_cpu_s - server_cpu_s - client_cpu_s)
    )
    return ScenarioResult(
        scenario=scenario,
        requests=requests,
        requests_per_s=requests / window,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        mean_ms=statistics.fmean(latencies) if latencies else float("nan"),
        sql_per_request=statistics.median(counted) if counted else None,
        sql_distribution=dict(sql),
        errors=sum(report.errors for report in reports),
        error_sample=sample,
        client_cpu_cores=client_cpu_s / window,
        server_cpu_cores=None if server_cpu_s is None else server_cpu_s / window,
        server_cpu_ms_per_request=(
            None if server_cpu_s is None or not requests else server_cpu_s * 1000 / requests
        ),
        other_cpu_cores=None if other_cpu_s is None else other_cpu_s / window,
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _percent(ratio: float | None) -> str:
    return _fmt(None if ratio is None else ratio * 100, ".1f")


def _page(shape: PageShape | None) -> str:
    if shape is None:
        return "-"
    return (
        f"{shape.bytes} bytes, {shape.customers} customers"
        f" ({shape.customers_with_feedback} with feedback), {shape.feedback} feedback"
    )


def _policy_lines(result: BackendResult) -> list[str]:
    p = result.policy
    if p is None:
        return []
    lines = [
        f"{result.backend}: policy on {result.customers} customers, wall time of the command"
        f" (Python start-up included): preview --json {p.preview_s:.2f} s,"
        f" publish {p.publish_s:.2f} s (export {p.export_s:.2f} s)"
    ]
    if p.preview_inprocess_s is not None and p.publish_inprocess_s is not None:
        lines.append(
            f"{result.backend}: the same commands in-process (after {_fmt(p.import_s, '.2f')} s"
            f" of imports): preview {p.preview_inprocess_s:.3f} s,"
            f" publish {p.publish_inprocess_s:.3f} s"
        )
    elif p.inprocess_error:
        lines.append(f"{result.backend}: in-process policy timing failed: {p.inprocess_error}")
    return lines


def table(results: Sequence[BackendResult]) -> str:
    width = 4 + max(len(label) for label in SCENARIOS.values())
    header = (
        f"{'backend':<10} {'scenario':<{width}} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'SQL/req':>7} {'errors':>6} {'hub CPU':>7} {'ms CPU/req':>10} {'client CPU':>10} "
        f"{'other CPU':>9}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        for key, s in result.scenarios.items():
            lines.append(
                f"{result.backend:<10} {f'({key}) {s.label}':<{width}} {s.requests_per_s:>8.1f} "
                f"{s.p50_ms:>8.2f} {s.p99_ms:>8.2f} {_fmt(s.sql_per_request, 'g'):>7} "
                f"{s.errors:>6} {_fmt(s.server_cpu_cores, '.2f'):>7} "
                f"{_fmt(s.server_cpu_ms_per_request, '.2f'):>10} {s.client_cpu_cores:>10.2f} "
                f"{_fmt(s.other_cpu_cores, '.2f'):>9}"
            )
    lines.append("")
    for result in results:
        rps, p50 = result.ratio("requests_per_s"), result.ratio("p50_ms")
        lines.append(
            f"{result.backend}: (b)/(c) req/s = {_fmt(rps, '.3f')}"
            f" ({_percent(rps)}% of the ceiling), p50 = {_fmt(p50, '.1f')}x;"
            f" seed {result.seed_seconds:.1f} s"
        )
        rps, p50 = result.ratio("requests_per_s", "d"), result.ratio("p50_ms", "d")
        verdict = "-" if rps is None else ("met" if rps >= POLICY_GOAL else "NOT met")
        lines.append(
            f"{result.backend}: (b)/(d) req/s = {_fmt(rps, '.3f')}"
            f" ({_percent(rps)}% of the operator's page; goal >= {POLICY_GOAL}: {verdict}),"
            f" p50 = {_fmt(p50, '.2f')}x"
        )
        for key in ("b", "d"):
            lines.append(f"{result.backend}: ({key}) body {_page(result.pages.get(key))}")
        lines.extend(_policy_lines(result))
        lines.extend(f"{result.backend}: WARNING {w}" for w in result.warnings)
    return "\n".join(lines)


def write_json(path: Path, result: BackendResult, run: dict[str, Any]) -> None:
    data = {
        **run,
        "backend": result.backend,
        "seed_seconds": result.seed_seconds,
        "response_bytes": result.response_bytes,
        "scenarios": {key: {**asdict(s), "label": s.label} for key, s in result.scenarios.items()},
        "ratios_b_over_c": result.ratios("c"),
        "ratios_b_over_d": result.ratios("d"),
        "policy_goal_b_over_d_requests_per_s": POLICY_GOAL,
        "pages": {key: asdict(shape) for key, shape in result.pages.items()},
        "policy_timing_s": None if result.policy is None else asdict(result.policy),
        "warnings": result.warnings,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
