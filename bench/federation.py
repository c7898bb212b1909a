"""bench: the cost of one remote field on a partner's page.

A benchmark, not a test: it asserts nothing about speed. On a fresh demo database (SQLite,
or with ``--backend postgresql`` PostgreSQL, whose backends' CPU per request it reports too)
it registers the Node loyalty subgraph of the conformance tests
(``tests/conformance/loyalty_subgraph.mjs``, on 127.0.0.1; its packages installed with
``npm ci`` there) with ``hub subgraphs add``, publishes the default policy with
``loyaltyTier`` shown to distributors, serves the hub, and loads the distributor's page
(bench (b): 50 customers, 8 fields, their 5 latest feedback) at the same concurrency:
as it is (``page``), and with ``loyaltyTier`` on each customer (``page + loyaltyTier``:
one batched ``_entities`` request to the subgraph per page).

With compiled reads (the default) **both** pages are compiled plans: the plain page is
answered from one SQL statement where the compiled path has them for the database, else
from the access module's records, and the page with ``loyaltyTier`` is the same plan plus
one ``_entities`` request after it (:mod:`schema.compiled.remote`). ``--resolvers``
also runs both pages with compiled reads off (both resolved field by field). The bench
reads the hub's ``hub_graphql_read_paths_total`` around every round and prints the share
each scenario took on the compiled path, so the path is measured, not assumed.

The machine is small and shared, so one run of each scenario says little. The scenarios
alternate within one server (plain, remote, plain, remote, ... ``--rounds`` times each)
and the table gives the **median of the rounds**: latency p50/p99, throughput, the hub's
CPU per request (its process tree, from ``/proc``) and the subgraph's (estimated over
the round, warm-up included). The overhead is given two ways: the ratio of the medians,
and the median of each round's ratio against the plain round just before it.

``--pin split`` runs the hub on CPU 0 and the bench, its load generators and the Node
subgraph on CPU 1 (``taskset``, ``os.sched_setaffinity``), so the subgraph cannot take
the hub's core (the hub's event loop and SQLite's thread then share one core). The
default, ``--pin none``, leaves the placement to the scheduler. Neither isolates the
bench from other work on the machine: the table says which placement was used, and the
"other" column (busy CPU of the machine outside the hub and the load generators, the
subgraph included) how much else was running.

Run from the repository root::

    .venv/bin/python -m bench.federation                       # 2,000 customers, 5 rounds
    .venv/bin/python -m bench.federation --concurrency 1 --rounds 7 --resolvers
    .venv/bin/python -m bench.federation --pin split
    .venv/bin/python -m bench.federation --backend postgresql   # a fresh database, dropped after
    .venv/bin/python -m bench.federation --json federation.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.databases import BACKENDS, analyze, check_pg_url, database_url
from bench.drive import LoadOptions, drive
from bench.hubapi import HubClient, credentials, request_body
from bench.pgcpu import PostgresCpu
from bench.procs import HOST, free_port, server, tree_cpu_seconds
from bench.queries import CUSTOMER_FIELDS, HUB, page_query
from bench.results import ScenarioResult
from bench.run import DEFAULT_PG_URL, _hub_env, _hub_executable, _seed

ROOT = Path(__file__).resolve().parent.parent
NODE_TOOLS = ROOT / "tests" / "conformance"
HUB_CPU = 0
"""With ``--pin``: the hub's CPU; everything else the bench starts runs on the next."""
PLAIN, REMOTE = "page", "page + loyaltyTier"
_PATHS = re.compile(r'^hub_graphql_read_paths_total\{path="(\w+)"\} ([0-9.e+]+)$', re.M)


@dataclass
class Round:
    """One scenario's round: the load result and what the bench measured around it."""

    result: ScenarioResult
    compiled_share: float | None
    subgraph_cpu_ms_per_request: float | None


@dataclass
class Scenario:
    name: str
    mode: str
    rounds: list[Round] = field(default_factory=list)

    def median(self, value: str) -> float | None:
        values = [v for v in (_value(r, value) for r in self.rounds) if v is not None]
        return statistics.median(values) if values else None


def _value(round_: Round, name: str) -> float | None:
    if hasattr(round_, name):
        found: float | None = getattr(round_, name)
        return found
    found = getattr(round_.result, name)
    return found


def _policy(hub: str, cwd: Path, env: dict[str, str]) -> None:
    """The default policy with ``loyaltyTier`` visible to distributors, published."""
    source = subprocess.run(
        [hub, "policy", "export"], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout
    marker = "    read:\n      visible: [id, kind, name, company, city, region, country, segment"
    at = source.index(marker, source.index("name: distributors-assigned-customers"))
    source = source[:at] + source[at:].replace("visible: [id,", "visible: [id, loyaltyTier,", 1)
    path = cwd / "policy.yaml"
    path.write_text(source)
    subprocess.run(
        [hub, "policy", "publish", str(path), "--reason", "bench: loyalty for distributors"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )


def _read_paths(base: str) -> dict[str, float]:
    """The hub's read-path counters (compiled, resolvers)."""
    text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    return {name: float(value) for name, value in _PATHS.findall(text)}


def _compiled_share(before: dict[str, float], after: dict[str, float]) -> float | None:
    compiled = after.get("compiled", 0.0) - before.get("compiled", 0.0)
    resolvers = after.get("resolvers", 0.0) - before.get("resolvers", 0.0)
    total = compiled + resolvers
    return None if total <= 0 else compiled / total


def _pin_self(pin: str) -> list[str]:
    """With ``pin == "split"``: the bench (and so every process it starts from now on: the load
    generators, the subgraph) on the CPU after the hub's; the prefix that starts the hub
    on its own."""
    if pin != "split":
        return []
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("--pin split needs two CPUs")
    os.sched_setaffinity(0, {HUB_CPU + 1})
    return ["taskset", "-c", str(HUB_CPU)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scenario (>= 3)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--resolvers", action="store_true", help="also with compiled reads off")
    parser.add_argument(
        "--pin",
        choices=("none", "split"),
        default="none",
        help="split: the hub on CPU 0, the rest on CPU 1 (see above)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sqlite",
        help="the hub's database (postgresql: a fresh database on --pg-url, dropped after)",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (admin)")
    parser.add_argument("--json", type=Path, help="write every round's figures there")
    args = parser.parse_args(argv)
    if args.backend == "postgresql":
        check_pg_url(args.pg_url)
    if args.rounds < 3:
        parser.error("--rounds: at least 3 (the figures are medians of rounds)")
    hub = _hub_executable()
    modes: list[tuple[str, dict[str, str]]] = [("compiled", {})]
    if args.resolvers:
        modes.append(("resolvers", {"HUB_COMPILED_READS": "false"}))
    scenarios: dict[str, Scenario] = {}
    with (
        tempfile.TemporaryDirectory(prefix="hub-bench-federation-") as tmp,
        database_url(args.backend, Path(tmp), args.pg_url) as db_url,
    ):
        workdir = Path(tmp)
        env = _hub_env(db_url)
        env["HUB_FEDERATION_ALLOW_LOOPBACK"] = "true"
        port = free_port()
        print(f"seeding {args.customers} customers ({args.backend})...", file=sys.stderr)
        _seed(hub, args.customers, port, workdir, env)
        postgres = None
        if args.backend == "postgresql":
            analyze(db_url)
            postgres = PostgresCpu(db_url)
        prefix = _pin_self(args.pin)
        loyalty = subprocess.Popen(
            ["node", str(NODE_TOOLS / "loyalty_subgraph.mjs"), "0"],
            cwd=NODE_TOOLS,
            stdout=subprocess.PIPE,
        )
        try:
            assert loyalty.stdout is not None
            url = json.loads(loyalty.stdout.readline())["url"]
            subprocess.run(
                [hub, "subgraphs", "add", "loyalty", url, "--timeout", "5"],
                cwd=workdir,
                env=env,
                check=True,
                capture_output=True,
            )
            _policy(hub, workdir, env)
            rows = json.loads((workdir / "creds.json").read_text())
            partner = credentials(rows, "distributor")
            options = LoadOptions(
                concurrency=args.concurrency,
                processes=1,
                warmup=args.warmup,
                duration=args.duration,
                client="raw",
            )
            plain = page_query(HUB)
            remote = plain.replace(CUSTOMER_FIELDS, f"{CUSTOMER_FIELDS} loyaltyTier", 1)
            base = f"http://{HOST}:{port}"
            for mode, extra in modes:
                log = workdir / f"hub-{mode}.log"
                argv_ = [*prefix, hub, "serve", "--host", HOST, "--port", str(port)]
                with server(
                    argv_, cwd=workdir, env={**env, **extra}, port=port, log=log
                ) as process:
                    client = HubClient(base)
                    token = client.token(partner)
                    client.graphql(token, remote)  # fails loudly if the field is not served
                    client.close()
                    for number in range(args.rounds):
                        for name, query in ((PLAIN, plain), (REMOTE, remote)):
                            scenario = scenarios.setdefault(
                                f"{name} ({mode})", Scenario(name, mode)
                            )
                            print(f"{scenario.name} ({mode}) round {number + 1}", file=sys.stderr)
                            paths = _read_paths(base)
                            node_before = tree_cpu_seconds(loyalty.pid)
                            result = drive(
                                f"{name}-{mode}-{number}".replace(" ", ""),
                                url=f"{base}/graphql",
                                headers={"Authorization": f"Bearer {token}"},
                                bodies=[request_body(query)],
                                options=options,
                                server_pid=process.pid,
                                workdir=workdir,
                                postgres=postgres,
                            )
                            node_after = tree_cpu_seconds(loyalty.pid)
                            scenario.rounds.append(
                                Round(
                                    result,
                                    _compiled_share(paths, _read_paths(base)),
                                    _subgraph_ms(
                                        node_before,
                                        node_after,
                                        result,
                                        args.warmup + args.duration,
                                    ),
                                )
                            )
        finally:
            loyalty.terminate()
            loyalty.wait()
    _report(scenarios, args)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "options": {k: str(v) for k, v in vars(args).items()},
                    "scenarios": {
                        key: [asdict(r) for r in s.rounds] for key, s in scenarios.items()
                    },
                },
                indent=2,
            )
        )
    return 0


def _subgraph_ms(
    before: float | None, after: float | None, result: ScenarioResult, seconds: float
) -> float | None:
    """The subgraph's CPU per hub request, estimated: its CPU over the round (warm-up
    included) over the requests the round's rate gives that long."""
    if before is None or after is None or result.requests_per_s <= 0:
        return None
    return (after - before) * 1000 / (result.requests_per_s * seconds)


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _report(scenarios: dict[str, Scenario], args: argparse.Namespace) -> None:
    pinned = (
        f"hub on CPU {HUB_CPU}, the rest on CPU {HUB_CPU + 1}"
        if args.pin == "split"
        else "not pinned"
    )
    print(
        f"\n{args.backend}: medians of {args.rounds} alternating rounds ({args.duration:g} s"
        f" each after {args.warmup:g} s warm-up), concurrency {args.concurrency}, {pinned}"
    )
    header = (
        f"{'scenario':<32} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'hub CPU':>8}"
        f" {'PG CPU':>7} {'subgraph':>8} {'other':>6} {'compiled':>8} {'errors':>6}"
    )
    print(header)
    print(
        f"{'':<32} {'':>7} {'':>7} {'':>7} {'ms/req':>8} {'ms/req':>7} {'ms/req':>8}"
        f" {'cores':>6} {'share':>8}"
    )
    for key, scenario in scenarios.items():
        shares = [r.compiled_share for r in scenario.rounds if r.compiled_share is not None]
        errors = sum(r.result.errors for r in scenario.rounds)
        print(
            f"{key:<32} {_ms(scenario.median('requests_per_s')):>7}"
            f" {_ms(scenario.median('p50_ms')):>7} {_ms(scenario.median('p99_ms')):>7}"
            f" {_cpu(scenario.median('server_cpu_ms_per_request')):>8}"
            f" {_cpu(scenario.median('pg_cpu_ms_per_request')):>7}"
            f" {_cpu(scenario.median('subgraph_cpu_ms_per_request')):>8}"
            f" {_cores(scenario.median('other_cpu_cores')):>6}"
            f" {min(shares) if shares else 0:>8.0%} {errors:>6}"
        )
    print("\nper round p50 ms (plain / remote):")
    for mode in dict.fromkeys(s.mode for s in scenarios.values()):
        base, more = scenarios[f"{PLAIN} ({mode})"], scenarios[f"{REMOTE} ({mode})"]
        pairs = [
            f"{a.result.p50_ms:.0f}/{b.result.p50_ms:.0f}"
            for a, b in zip(base.rounds, more.rounds, strict=True)
        ]
        print(f"  {mode}: {'  '.join(pairs)}")
    print("\noverhead of one remote field, same concurrency:")
    for mode in dict.fromkeys(s.mode for s in scenarios.values()):
        base, more = scenarios[f"{PLAIN} ({mode})"], scenarios[f"{REMOTE} ({mode})"]
        parts = []
        for value, label in (
            ("p50_ms", "p50"),
            ("p99_ms", "p99"),
            ("server_cpu_ms_per_request", "hub CPU/req"),
            ("pg_cpu_ms_per_request", "PG CPU/req"),
        ):
            a, b = base.median(value), more.median(value)
            if a and b:
                paired = statistics.median(
                    _value(y, value) / _value(x, value)  # type: ignore[operator]
                    for x, y in zip(base.rounds, more.rounds, strict=True)
                    if _value(x, value) and _value(y, value)
                )
                parts.append(f"{label} {b / a - 1:+.0%} (paired {paired - 1:+.0%})")
        print(f"  {mode}: {', '.join(parts)}")


if __name__ == "__main__":
    raise SystemExit(main())
