"""Benchmark the hub over HTTP against PostGraphile and a bare ceiling: ``python -m bench.run``.

For each backend: seed a fresh database with ``hub demo``, time ``hub policy preview`` and
``hub policy publish`` of a small policy change on it, serve it with ``hub serve``, measure
(a) ``customer(id)``, (b) a partner's page of 50 customers with their feedback, (d) the
same page as the operator (no policy conditions) and (e) a three-level query; on
PostgreSQL, serve the same database with PostGraphile v4 (no policy) and measure (a), the
page and (e) on it; then serve (b)'s captured body from a bare Starlette app and measure
that as (c). ``--rounds`` repeats this, alternating the hub and PostGraphile, and reports
medians. See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.databases import BACKENDS, DatabaseSetupError, analyze, check_pg_url, database_url
from bench.drive import REPO_ROOT, LoadError, LoadOptions, drive
from bench.hubapi import (
    CUSTOMER_QUERY,
    NESTED_QUERY,
    PAGE_SIZE,
    PARTNER_PAGE_QUERY,
    Credential,
    HubCallError,
    HubClient,
    PageShape,
    credentials,
    page_shape,
    request_body,
)
from bench.load import CLIENTS
from bench.peers import (
    PEERS,
    POSTGRAPHILE,
    PeerError,
    ensure_postgraphile,
    node_missing,
    postgraphile_command,
    postgraphile_version,
)
from bench.pgcpu import PostgresCpu
from bench.policytime import PolicyTiming, PolicyTimingError, time_policy
from bench.procs import HOST, ServerError, free_port, server
from bench.queries import POSTGRAPHILE as POSTGRAPHILE_DIALECT
from bench.queries import compare, customer_query, id_uuid, nested_query, page_query
from bench.results import BackendResult, ScenarioResult, key, table, write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CUSTOMER_IDS = 500  # ids scenario (a) picks from
SEED_TIMEOUT = 1800.0


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--backend", choices=[*BACKENDS, "both"], default="both", help="database to run on"
    )
    parser.add_argument(
        "--customers", type=_bounded(int, 1, 1_000_000), default=10_000, help="customers to seed"
    )
    parser.add_argument(
        "--duration", type=_bounded(float, 1, 600), default=15.0, help="seconds per scenario"
    )
    parser.add_argument(
        "--warmup", type=_bounded(float, 0, 60), default=3.0, help="seconds before measuring"
    )
    parser.add_argument(
        "--concurrency", type=_bounded(int, 1, 256), default=16, help="requests in flight"
    )
    parser.add_argument(
        "--workers", type=_bounded(int, 1, 16), default=1, help="server worker processes"
    )
    parser.add_argument(
        "--client-processes",
        type=_bounded(int, 1, 16),
        default=1,
        help="load generator processes sharing --concurrency",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="raw",
        help="load client: a lean HTTP/1.1 client (raw) or httpx.AsyncClient",
    )
    parser.add_argument(
        "--rounds",
        type=_bounded(int, 1, 50),
        default=1,
        help="repeat the scenarios, alternating the hub and its peers; report medians",
    )
    parser.add_argument(
        "--peers",
        choices=["auto", *PEERS, "none"],
        default="auto",
        help="servers measured beside the hub on PostgreSQL (auto: PostGraphile if node"
        " and npm are installed)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="leave the seeded PostgreSQL tables without planner statistics",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (admin)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON results go"
    )
    args = parser.parse_args(argv)
    if args.client_processes > args.concurrency:
        parser.error("--client-processes cannot exceed --concurrency")
    return args


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _hub_executable() -> str:
    beside = Path(sys.executable).parent / "hub"
    found = str(beside) if beside.exists() else shutil.which("hub")
    if found is None:
        raise BenchError("the `hub` command is not installed: pip install -e . in the venv")
    return found


def _hub_env(db_url: str) -> dict[str, str]:
    # Only our settings: a HUB_ISSUER or HUB_DATABASE_URL from the shell would break the run.
    env = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=db_url,
        HUB_EXPOSE_SQL_COUNT="true",
        HUB_LOG_LEVEL="WARNING",
        # One client sends every request: a budget that never runs out (the limiter still
        # spends each request's cost, so its own cost is measured).
        HUB_GRAPHQL_COST_PER_CLIENT=str(10**15),
    )
    return env


def _seed(hub: str, customers: int, port: int, cwd: Path, env: dict[str, str]) -> float:
    argv = [hub, "demo", "--customers", str(customers), "--no-serve", "--port", str(port)]
    argv += ["--credentials-out", "creds.json"]
    began = time.monotonic()
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=SEED_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"hub demo failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - began


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _check_pages(pages: dict[str, PageShape], customers: int) -> list[str]:
    """Raise if the operator's page (d) is not a full page with feedback; return warnings
    about the partner's page (b), which the policy may legitimately shorten."""
    operator, partner = pages[key("hub", "d")], pages[key("hub", "b")]
    if operator.customers != min(PAGE_SIZE, customers) or not operator.feedback:
        raise BenchError(
            f"the operator's page (d) should hold {min(PAGE_SIZE, customers)} customers with"
            f" feedback, it holds {operator.customers} customers and {operator.feedback}"
            " feedback"
        )
    if not partner.customers:
        raise BenchError("the distributor's page (b) is empty: (b)/(d) would compare nothing")
    warnings = []
    if partner.customers < operator.customers:
        warnings.append(
            f"the distributor's page (b) holds {partner.customers} customers, the operator's"
            f" (d) {operator.customers}: (b)/(d) compares unequal pages"
        )
    if not partner.feedback:
        warnings.append("the distributor's page (b) holds no feedback")
    return warnings


@dataclass
class _Run:
    """One backend's run: what every round needs, and what the first rounds captured."""

    backend: str
    args: argparse.Namespace
    hub: str
    node: str | None
    workdir: Path
    env: dict[str, str]
    db_url: str
    options: LoadOptions
    operator: Credential
    partner: Credential
    postgres: PostgresCpu | None
    result: BackendResult
    # Set-up captures, taken the first time each server runs: request bodies per scenario
    # and one reply per scenario, by key (``hub:d``).
    bodies: dict[str, list[str]] = field(default_factory=dict)
    replies: dict[str, bytes] = field(default_factory=dict)
    hub_ids: list[str] = field(default_factory=list)
    # The ceiling is sent (b)'s request, token included (it does not read it).
    partner_token: str | None = None

    def measure(
        self,
        index: int,
        server_name: str,
        scenario: str,
        *,
        url: str,
        token: str | None,
        pid: int,
    ) -> ScenarioResult:
        rounds = self.args.rounds
        where = f"round {index + 1}/{rounds} " if rounds > 1 else ""
        _say(
            f"[{self.backend}] {where}{server_name} ({scenario})"
            f" {self.args.warmup:g} s warm-up + {self.args.duration:g} s"
        )
        return drive(
            scenario,
            url=url,
            headers={} if token is None else {"Authorization": f"Bearer {token}"},
            bodies=self.bodies[key(server_name, scenario)],
            options=self.options,
            server_pid=pid,
            workdir=self.workdir,
            server=server_name,
            postgres=None if server_name == "ceiling" else self.postgres,
        )


def _capture_hub(run: _Run, client: HubClient) -> None:
    """The hub's set-up: customer ids, the request bodies, one reply per scenario."""
    operator = client.token(run.operator)
    run.hub_ids = client.customer_ids(operator, CUSTOMER_IDS)
    run.partner_token = client.token(run.partner)
    page = client.graphql(run.partner_token, PARTNER_PAGE_QUERY).content
    (run.workdir / "page.json").write_bytes(page)
    run.replies[key("hub", "b")] = page
    run.replies[key("hub", "d")] = client.graphql(operator, PARTNER_PAGE_QUERY).content
    run.replies[key("hub", "e")] = client.graphql(operator, NESTED_QUERY).content
    first = {"id": run.hub_ids[0]}
    run.replies[key("hub", "a")] = client.graphql(operator, CUSTOMER_QUERY, first).content
    run.bodies[key("hub", "a")] = [request_body(CUSTOMER_QUERY, {"id": i}) for i in run.hub_ids]
    for scenario, query in (("b", PARTNER_PAGE_QUERY), ("d", PARTNER_PAGE_QUERY)):
        run.bodies[key("hub", scenario)] = [request_body(query)]
    run.bodies[key("hub", "e")] = [request_body(NESTED_QUERY)]
    run.bodies[key("ceiling", "c")] = [request_body(PARTNER_PAGE_QUERY)]
    result = run.result
    result.response_bytes = len(page)
    for scenario in ("a", "b", "d", "e"):
        name = key("hub", scenario)
        reply = run.replies[name]
        result.pages[name] = (
            PageShape(len(reply), 0, 0, 0) if scenario == "a" else page_shape(reply)
        )
    result.warnings += _check_pages(result.pages, run.args.customers)
    for warning in result.warnings:
        _say(f"[{run.backend}] WARNING {warning}")


def _hub_round(run: _Run, index: int, port: int) -> dict[str, ScenarioResult]:
    argv = [run.hub, "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(run.args.workers)]
    log = run.workdir / f"hub-{index}.log"
    with server(argv, cwd=run.workdir, env=run.env, port=port, log=log) as process:
        client = HubClient(f"http://{HOST}:{port}")
        try:
            if not run.hub_ids:
                _capture_hub(run, client)
            url = f"http://{HOST}:{port}/graphql"
            results = {}
            # A fresh token per scenario: a long --duration must not outlive one.
            for scenario in ("a", "b", "d", "e"):
                who = run.partner if scenario == "b" else run.operator
                token = client.token(who)
                results[key("hub", scenario)] = run.measure(
                    index, "hub", scenario, url=url, token=token, pid=process.pid
                )
        finally:
            client.close()
    return results


def _capture_postgraphile(run: _Run, client: HubClient) -> None:
    """PostGraphile's set-up: the same customers' node ids, the request bodies, one reply
    per scenario, and warnings where its replies are not the hub's."""
    d = POSTGRAPHILE_DIALECT
    ids = client.customer_ids(None, CUSTOMER_IDS)
    result, peer = run.result, POSTGRAPHILE
    if [id_uuid(i) for i in ids] != [id_uuid(i) for i in run.hub_ids]:
        result.warnings.append(
            f"(a) {peer}'s first {len(ids)} customers by name are not the hub's"
            f" {len(run.hub_ids)}: (a) looks up other customers"
        )
    queries = {"a": customer_query(d), "d": page_query(d), "e": nested_query(d)}
    run.bodies[key(peer, "a")] = [request_body(queries["a"], {"id": i}) for i in ids]
    run.bodies[key(peer, "d")] = [request_body(queries["d"])]
    run.bodies[key(peer, "e")] = [request_body(queries["e"])]
    for scenario, query in queries.items():
        variables = {"id": ids[0]} if scenario == "a" else None
        reply = client.graphql(None, query, variables).content
        name = key(peer, scenario)
        run.replies[name] = reply
        result.pages[name] = (
            PageShape(len(reply), 0, 0, 0) if scenario == "a" else page_shape(reply, d)
        )
        warnings = compare(scenario, run.replies[key("hub", scenario)], reply, peer, d)
        for warning in warnings:
            _say(f"[{run.backend}] WARNING {warning}")
        result.warnings += warnings


def _postgraphile_round(run: _Run, index: int) -> dict[str, ScenarioResult]:
    assert run.node is not None
    port = free_port()
    argv, env = postgraphile_command(
        run.node, port=port, db_url=run.db_url, workers=run.args.workers
    )
    log = run.workdir / f"postgraphile-{index}.log"
    with server(argv, cwd=run.workdir, env=env, port=port, log=log) as process:
        client = HubClient(f"http://{HOST}:{port}", POSTGRAPHILE_DIALECT)
        try:
            if key(POSTGRAPHILE, "d") not in run.replies:
                _capture_postgraphile(run, client)
        finally:
            client.close()
        url = f"http://{HOST}:{port}/graphql"
        return {
            key(POSTGRAPHILE, scenario): run.measure(
                index, POSTGRAPHILE, scenario, url=url, token=None, pid=process.pid
            )
            for scenario in ("a", "d", "e")
        }


def _ceiling_round(run: _Run, index: int) -> dict[str, ScenarioResult]:
    # The ceiling runs after the hub has stopped, so the two never share the CPUs.
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.ceiling:create_app", "--factory"]
    argv += ["--app-dir", str(REPO_ROOT), "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(run.args.workers), "--log-level", "warning", "--no-access-log"]
    env = {**run.env, "BENCH_CEILING_BODY": str(run.workdir / "page.json")}
    log = run.workdir / f"ceiling-{index}.log"
    with server(argv, cwd=run.workdir, env=env, port=port, log=log) as process:
        url = f"http://{HOST}:{port}/graphql"
        measured = run.measure(
            index, "ceiling", "c", url=url, token=run.partner_token, pid=process.pid
        )
    return {key("ceiling", "c"): measured}


def run_backend(
    backend: str, args: argparse.Namespace, peers: list[str], node: str | None
) -> BackendResult:
    hub = _hub_executable()
    options = LoadOptions(
        concurrency=args.concurrency,
        processes=args.client_processes,
        warmup=args.warmup,
        duration=args.duration,
        client=args.client,
    )
    peers = peers if backend == "postgresql" else []
    with (
        tempfile.TemporaryDirectory(prefix="pbench-") as tmp,
        database_url(backend, Path(tmp), args.pg_url) as db_url,
    ):
        workdir = Path(tmp)
        port = free_port()
        env = _hub_env(db_url)
        _say(f"[{backend}] seeding {args.customers} customers ...")
        seed_seconds = _seed(hub, args.customers, port, workdir, env)
        _say(f"[{backend}] seeded in {seed_seconds:.1f} s")
        if backend == "postgresql" and not args.no_analyze:
            analyze(db_url)
        policy = _time_policy(backend, hub, workdir, env)
        rows = json.loads((workdir / "creds.json").read_text())
        run = _Run(
            backend=backend,
            args=args,
            hub=hub,
            node=node,
            workdir=workdir,
            env=env,
            db_url=db_url,
            options=options,
            operator=credentials(rows, "operator"),
            partner=credentials(rows, "distributor"),
            postgres=PostgresCpu(db_url) if backend == "postgresql" else None,
            result=BackendResult(backend, args.customers, seed_seconds, 0, peers=peers),
        )
        run.result.policy = policy
        # Alternate who goes first, so that a machine's drift over a run spreads over both.
        # The hub goes first in the first round: the others need its captures.
        sides = ["hub", *peers]
        for index in range(args.rounds):
            results: dict[str, ScenarioResult] = {}
            try:
                for side in sides if index % 2 == 0 else sides[::-1]:
                    if side == "hub":
                        results |= _hub_round(run, index, port)
                    else:
                        results |= _postgraphile_round(run, index)
                results |= _ceiling_round(run, index)
            except (ServerError, HubCallError, LoadError) as error:
                if not run.result.rounds:
                    raise
                # A long run keeps the rounds it completed (a server that no longer starts,
                # e.g. a work tree edited meanwhile, should not lose them).
                lines = str(error).strip().splitlines() or [type(error).__name__]
                said = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
                warning = f"round {index + 1} failed, the results hold {index}: {said}"
                _say(f"[{backend}] WARNING {warning}")
                run.result.warnings.append(warning)
                break
            run.result.rounds.append(results)
        for name, s in run.result.scenarios.items():
            if s.pg_error:
                run.result.warnings.append(f"({name}) PostgreSQL CPU not measured: {s.pg_error}")
    return run.result


def _time_policy(backend: str, hub: str, workdir: Path, env: dict[str, str]) -> PolicyTiming:
    _say(f"[{backend}] timing hub policy preview/publish ...")
    policy = time_policy(hub, workdir, env)
    _say(
        f"[{backend}] policy preview --json {policy.preview_s:.2f} s, publish"
        f" {policy.publish_s:.2f} s (wall, subprocess); in-process preview"
        f" {_seconds(policy.preview_inprocess_s)}, publish"
        f" {_seconds(policy.publish_inprocess_s)}"
    )
    return policy


def _peers(args: argparse.Namespace, backends: list[str]) -> tuple[list[str], str | None]:
    """The peers to measure and the ``node`` to run them with; installs PostGraphile on
    first use. ``auto`` skips it, with a note, where Node is missing."""
    if args.peers == "none" or "postgresql" not in backends:
        if args.peers == POSTGRAPHILE:
            raise BenchError("PostGraphile serves PostgreSQL only: use --backend postgresql")
        return [], None
    if args.peers == "auto" and (reason := node_missing()) is not None:
        _say(f"PostGraphile not measured: {reason}; --peers none silences this")
        return [], None
    node = ensure_postgraphile(_say)
    _say(f"PostGraphile {postgraphile_version()} measured beside the hub on PostgreSQL")
    return [POSTGRAPHILE], node


def _run_info(args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "started_at": started.isoformat(),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.run", *sys.argv[1:]]),
        "options": {
            "customers": args.customers,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "client_processes": args.client_processes,
            "client": args.client,
            "analyze": not args.no_analyze,
            "rounds": args.rounds,
            "peers": args.peers,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "git_commit": commit,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    _say(
        f"{os.cpu_count()} CPUs shared by the server, the load generator"
        f"{' and PostgreSQL' if 'postgresql' in backends else ''}"
    )
    results: list[BackendResult] = []
    try:
        if "postgresql" in backends:
            check_pg_url(args.pg_url)
        peers, node = _peers(args, backends)
        for backend in backends:
            result = run_backend(backend, args, peers, node)
            results.append(result)
            path = args.results_dir / f"{stamp}-{backend}.json"
            write_json(path, result, _run_info(args, started))
            _say(f"[{backend}] results in {path}")
    except (
        BenchError,
        DatabaseSetupError,
        ServerError,
        HubCallError,
        LoadError,
        PeerError,
        PolicyTimingError,
    ) as error:
        _say(f"error: {error}")
        return 1
    finally:
        if results:
            print(table(results))
    for result in results:
        for name, s in result.scenarios.items():
            if s.errors:
                _say(f"[{result.backend}] ({name}) {s.errors} errors, e.g. {s.error_sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
