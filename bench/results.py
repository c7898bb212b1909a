"""Scenario results: merging load reports, percentiles, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load import LoadReport
from bench.policytime import PolicyTiming
from bench.queries import PageShape

SCENARIOS = {
    "a": "customer(id), 8 fields, operator",
    "b": "partner page 50x(8 fields + feedback(5))",
    "d": "the same page as the operator (no policy conditions)",
    "e": "3 levels: 20 customers > feedback(5) > customer",
    "c": "ceiling: bare Starlette, (b)'s body",
}
# What a peer serves for a scenario, where the words above do not fit.
PEER_LABELS = {"d": "the page, no policy (peer of (b) and (d))"}
# The servers, in the order the table lists them within a scenario.
SERVERS = ("hub", "postgraphile", "ceiling")
# (b)/(d) on req/s: the share of the operator's speed a partner's page keeps.
POLICY_GOAL = 0.95  # issue 11's
# Which peer scenario each hub scenario is compared with: a peer has no policy, so its
# one page stands against both the partner's (b) and the operator's (d).
PEER_OF = {"a": "a", "b": "d", "d": "d", "e": "e"}


def key(server: str, scenario: str) -> str:
    """A scenario result's key: ``hub:b``, ``postgraphile:d``, ``ceiling:c``."""
    return f"{server}:{scenario}"


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
    # The rest of the machine's busy CPU: anything else running (noise), and PostgreSQL
    # where its backends were not measured apart (pg_cpu_*).
    other_cpu_cores: float | None
    server: str = "hub"  # one of SERVERS
    # The CPU time of the PostgreSQL backends connected to the benchmark database
    # (bench/pgcpu.py); None on SQLite, for the ceiling, or when they cannot be read.
    pg_cpu_cores: float | None = None
    pg_cpu_ms_per_request: float | None = None
    pg_backends: int | None = None
    pg_error: str | None = None
    rounds: int = 1  # how many rounds this result is the median of

    @property
    def label(self) -> str:
        if self.server != "hub" and self.scenario in PEER_LABELS:
            return PEER_LABELS[self.scenario]
        return SCENARIOS[self.scenario]

    @property
    def key(self) -> str:
        return key(self.server, self.scenario)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_of(results: Sequence[ScenarioResult]) -> ScenarioResult:
    """One scenario's rounds as one result: each figure the median of its rounds (so the
    medians of req/s and of CPU/request may come from different rounds); errors summed."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    sql: Counter[str] = Counter()
    for result in results:
        sql.update(result.sql_distribution)

    def med(name: str) -> float:
        # A round without a measured request has NaN percentiles: leave it out.
        values = [float(getattr(r, name)) for r in results]
        kept = [v for v in values if not math.isnan(v)]
        return statistics.median(kept) if kept else float("nan")

    def opt(name: str) -> float | None:
        return _median([getattr(r, name) for r in results])

    backends = opt("pg_backends")
    return ScenarioResult(
        scenario=first.scenario,
        requests=round(med("requests")),
        requests_per_s=med("requests_per_s"),
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        mean_ms=med("mean_ms"),
        sql_per_request=opt("sql_per_request"),
        sql_distribution=dict(sql),
        errors=sum(r.errors for r in results),
        error_sample=next((r.error_sample for r in results if r.error_sample), None),
        client_cpu_cores=med("client_cpu_cores"),
        server_cpu_cores=opt("server_cpu_cores"),
        server_cpu_ms_per_request=opt("server_cpu_ms_per_request"),
        other_cpu_cores=opt("other_cpu_cores"),
        server=first.server,
        pg_cpu_cores=opt("pg_cpu_cores"),
        pg_cpu_ms_per_request=opt("pg_cpu_ms_per_request"),
        pg_backends=None if backends is None else round(backends),
        pg_error=next((r.pg_error for r in results if r.pg_error), None),
        rounds=len(results),
    )


@dataclass
class BackendResult:
    backend: str
    customers: int
    seed_seconds: float
    response_bytes: int
    # Every round's results by key (``hub:b``); rounds alternate the hub and its peers.
    rounds: list[dict[str, ScenarioResult]] = field(default_factory=list)
    # The captured replies by key (``hub:b``, ``postgraphile:d``): what each server sent.
    pages: dict[str, PageShape] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    policy: PolicyTiming | None = None
    peers: list[str] = field(default_factory=list)

    @property
    def scenarios(self) -> dict[str, ScenarioResult]:
        """Each scenario's median over the rounds, in the table's order."""
        keys = {k: None for r in self.rounds for k in r}
        ordered = sorted(
            keys,
            key=lambda k: (
                list(SCENARIOS).index(k.split(":")[1]),
                SERVERS.index(k.split(":")[0]),
            ),
        )
        return {k: median_of([r[k] for r in self.rounds if k in r]) for k in ordered}

    def ratio(self, metric: str, numerator: str, denominator: str) -> float | None:
        """``numerator``/``denominator`` (keys) for ``metric`` (a ScenarioResult
        attribute): the median over the rounds holding both of the ratio within a round,
        the two having run side by side."""
        ratios = []
        for r in self.rounds:
            top, bottom = r.get(numerator), r.get(denominator)
            if top is None or bottom is None:
                continue
            up, down = getattr(top, metric), getattr(bottom, metric)
            if up is not None and down:
                ratios.append(float(up) / float(down))
        return statistics.median(ratios) if ratios else None

    def ratios(self, numerator: str, denominator: str) -> dict[str, float | None]:
        metrics = ("requests_per_s", "p50_ms", "p99_ms")
        return {m: self.ratio(m, numerator, denominator) for m in metrics}

    def peer_ratios(self, peer: str) -> dict[str, dict[str, float | None]]:
        """Hub / ``peer`` per hub scenario (see :data:`PEER_OF`), for the table and JSON."""
        metrics = ("requests_per_s", "p50_ms", "server_cpu_ms_per_request", "pg_cpu_ms_per_request")
        return {
            scenario: {m: self.ratio(m, key("hub", scenario), key(peer, theirs)) for m in metrics}
            for scenario, theirs in PEER_OF.items()
            if any(key(peer, theirs) in r and key("hub", scenario) in r for r in self.rounds)
        }


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
    *,
    server: str = "hub",
    pg_cpu_s: float | None = None,
    pg_backends: int | None = None,
    pg_error: str | None = None,
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
        else max(0.0, machine_cpu_s - server_cpu_s - client_cpu_s - (pg_cpu_s or 0.0))
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
        server=server,
        pg_cpu_cores=None if pg_cpu_s is None else pg_cpu_s / window,
        pg_cpu_ms_per_request=(
            None if pg_cpu_s is None or not requests else pg_cpu_s * 1000 / requests
        ),
        pg_backends=pg_backends,
        pg_error=pg_error,
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _percent(ratio: float | None) -> str:
    return _fmt(None if ratio is None else ratio * 100, ".1f")


def page_text(shape: PageShape | None) -> str:
    if shape is None:
        return "-"
    text = f"{shape.bytes} bytes"
    if shape.customers:
        text += (
            f", {shape.customers} customers ({shape.customers_with_feedback} with feedback),"
            f" {shape.feedback} feedback"
        )
    if shape.nested_customers:
        text += f", {shape.nested_customers} customers under feedback"
    return text


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


def _peer_lines(result: BackendResult) -> list[str]:
    lines = []
    medians = result.scenarios
    for peer in result.peers:
        for scenario, ratios in result.peer_ratios(peer).items():
            hub, theirs = medians[key("hub", scenario)], medians[key(peer, PEER_OF[scenario])]
            rps = ratios["requests_per_s"]
            lines.append(
                f"{result.backend}: ({scenario}) hub / {peer} ({PEER_OF[scenario]}):"
                f" req/s {_fmt(rps, '.3f')}, p50 {_fmt(ratios['p50_ms'], '.2f')}x;"
                f" ms CPU/req hub {_fmt(hub.server_cpu_ms_per_request, '.2f')}"
                f" vs {_fmt(theirs.server_cpu_ms_per_request, '.2f')}"
                f" ({_fmt(ratios['server_cpu_ms_per_request'], '.1f')}x),"
                f" PostgreSQL {_fmt(hub.pg_cpu_ms_per_request, '.2f')}"
                f" vs {_fmt(theirs.pg_cpu_ms_per_request, '.2f')}"
                f" ({_fmt(ratios['pg_cpu_ms_per_request'], '.1f')}x)"
            )
    return lines


def table(results: Sequence[BackendResult]) -> str:
    width = 4 + max(len(label) for label in (*SCENARIOS.values(), *PEER_LABELS.values()))
    header = (
        f"{'backend':<10} {'server':<12} {'scenario':<{width}} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'SQL/req':>7} {'errors':>6} {'srv CPU':>7} {'ms CPU/req':>10} "
        f"{'PG ms/req':>9} {'client CPU':>10} {'other CPU':>9}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        for s in result.scenarios.values():
            lines.append(
                f"{result.backend:<10} {s.server:<12} {f'({s.scenario}) {s.label}':<{width}} "
                f"{s.requests_per_s:>8.1f} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f} "
                f"{_fmt(s.sql_per_request, 'g'):>7} {s.errors:>6} "
                f"{_fmt(s.server_cpu_cores, '.2f'):>7} "
                f"{_fmt(s.server_cpu_ms_per_request, '.2f'):>10} "
                f"{_fmt(s.pg_cpu_ms_per_request, '.2f'):>9} {s.client_cpu_cores:>10.2f} "
                f"{_fmt(s.other_cpu_cores, '.2f'):>9}"
            )
    lines.append("")
    for result in results:
        rounds = len(result.rounds)
        if rounds > 1:
            lines.append(
                f"{result.backend}: medians of {rounds} rounds (figures and ratios alike; a"
                " ratio is the median of the ratios within a round)"
            )
        b, c, d = key("hub", "b"), key("ceiling", "c"), key("hub", "d")
        rps, p50 = result.ratio("requests_per_s", b, c), result.ratio("p50_ms", b, c)
        lines.append(
            f"{result.backend}: (b)/(c) req/s = {_fmt(rps, '.3f')}"
            f" ({_percent(rps)}% of the ceiling), p50 = {_fmt(p50, '.1f')}x;"
            f" seed {result.seed_seconds:.1f} s"
        )
        rps, p50 = result.ratio("requests_per_s", b, d), result.ratio("p50_ms", b, d)
        verdict = "-" if rps is None else ("met" if rps >= POLICY_GOAL else "NOT met")
        lines.append(
            f"{result.backend}: (b)/(d) partner / operator req/s = {_fmt(rps, '.3f')}"
            f" ({_percent(rps)}% of the operator's page; goal >= {POLICY_GOAL}: {verdict}),"
            f" p50 = {_fmt(p50, '.2f')}x"
        )
        lines.extend(_peer_lines(result))
        for name, shape in result.pages.items():
            server, scenario = name.split(":")
            lines.append(f"{result.backend}: ({scenario}) {server} body {page_text(shape)}")
        lines.extend(_policy_lines(result))
        lines.extend(f"{result.backend}: WARNING {w}" for w in result.warnings)
    return "\n".join(lines)


def write_json(path: Path, result: BackendResult, run: dict[str, Any]) -> None:
    data = {
        **run,
        "backend": result.backend,
        "seed_seconds": result.seed_seconds,
        "response_bytes": result.response_bytes,
        "peers": result.peers,
        # Medians over the rounds; every round's own results under "rounds".
        "scenarios": {k: {**asdict(s), "label": s.label} for k, s in result.scenarios.items()},
        "rounds": [{k: asdict(s) for k, s in r.items()} for r in result.rounds],
        "ratios_b_over_c": result.ratios(key("hub", "b"), key("ceiling", "c")),
        "ratios_b_over_d": result.ratios(key("hub", "b"), key("hub", "d")),
        "policy_goal_b_over_d_requests_per_s": POLICY_GOAL,
        "ratios_hub_over_peer": {peer: result.peer_ratios(peer) for peer in result.peers},
        "peer_of": PEER_OF,
        "pages": {k: asdict(shape) for k, shape in result.pages.items()},
        "policy_timing_s": None if result.policy is None else asdict(result.policy),
        "warnings": result.warnings,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
