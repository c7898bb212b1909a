"""Benchmark the hub over HTTP against a bare-Starlette ceiling: ``python -m bench.run``.

For each backend: seed a fresh database with ``hub demo``, time ``hub policy preview`` and
``hub policy publish`` of a small policy change on it, serve it with ``hub serve``, measure
(a) ``customer(id)``, (b) a partner's page of 50 customers with their feedback and (d) the
same page as the operator (no policy conditions), then serve (b)'s captured body from a
bare Starlette app and measure that as (c). See bench/README.md for how to read the table.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.databases import BACKENDS, DatabaseSetupError, analyze, check_pg_url, database_url
from bench.drive import REPO_ROOT, LoadError, LoadOptions, drive
from bench.hubapi import (
    CUSTOMER_QUERY,
    PAGE_SIZE,
    PARTNER_PAGE_QUERY,
    HubCallError,
    HubClient,
    PageShape,
    credentials,
    page_shape,
    request_body,
)
from bench.load import CLIENTS
from bench.policytime import PolicyTimingError, time_policy
from bench.procs import HOST, ServerError, free_port, server
from bench.results import BackendResult, table, write_json

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
    operator, partner = pages["d"], pages["b"]
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


def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    hub = _hub_executable()
    options = LoadOptions(
        concurrency=args.concurrency,
        processes=args.client_processes,
        warmup=args.warmup,
        duration=args.duration,
        client=args.client,
    )
    with (
        tempfile.TemporaryDirectory(prefix="pbench-") as tmp,
        database_url(backend, Path(tmp), args.pg_url) as db_url,
    ):
        workdir = Path(tmp)

        def measure(key: str, url: str, token: str, bodies: list[str], pid: int) -> None:
            _say(f"[{backend}] ({key}) {args.warmup:g} s warm-up + {args.duration:g} s")
            result.scenarios[key] = drive(
                key,
                url=url,
                headers={"Authorization": f"Bearer {token}"},
                bodies=bodies,
                options=options,
                server_pid=pid,
                workdir=workdir,
            )

        port = free_port()
        env = _hub_env(db_url)
        _say(f"[{backend}] seeding {args.customers} customers ...")
        seed_seconds = _seed(hub, args.customers, port, workdir, env)
        _say(f"[{backend}] seeded in {seed_seconds:.1f} s")
        if backend == "postgresql" and not args.no_analyze:
            analyze(db_url)
        _say(f"[{backend}] timing hub policy preview/publish ...")
        policy = time_policy(hub, workdir, env)
        _say(
            f"[{backend}] policy preview --json {policy.preview_s:.2f} s, publish"
            f" {policy.publish_s:.2f} s (wall, subprocess); in-process preview"
            f" {_seconds(policy.preview_inprocess_s)}, publish"
            f" {_seconds(policy.publish_inprocess_s)}"
        )
        rows = json.loads((workdir / "creds.json").read_text())
        operator, partner = credentials(rows, "operator"), credentials(rows, "distributor")
        page_body = [request_body(PARTNER_PAGE_QUERY)]

        serve = [hub, "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)]
        with server(serve, cwd=workdir, env=env, port=port, log=workdir / "hub.log") as hub_process:
            base = f"http://{HOST}:{port}"
            client = HubClient(base)
            try:
                ids = client.customer_ids(client.token(operator), CUSTOMER_IDS)
                page = client.graphql(client.token(partner), PARTNER_PAGE_QUERY).content
                (workdir / "page.json").write_bytes(page)
                operator_page = client.graphql(client.token(operator), PARTNER_PAGE_QUERY)
                (workdir / "page-operator.json").write_bytes(operator_page.content)
                result = BackendResult(backend, args.customers, seed_seconds, len(page))
                result.policy = policy
                result.pages = {"b": page_shape(page), "d": page_shape(operator_page.content)}
                result.warnings = _check_pages(result.pages, args.customers)
                for warning in result.warnings:
                    _say(f"[{backend}] WARNING {warning}")
                customer_bodies = [request_body(CUSTOMER_QUERY, {"id": i}) for i in ids]
                # A fresh token per scenario: a long --duration must not outlive one.
                url = f"{base}/graphql"
                measure("a", url, client.token(operator), customer_bodies, hub_process.pid)
                page_token = client.token(partner)
                measure("b", url, page_token, page_body, hub_process.pid)
                measure("d", url, client.token(operator), page_body, hub_process.pid)
            finally:
                client.close()

        # The ceiling runs after the hub has stopped, so the two never share the CPUs.
        ceiling_port = free_port()
        ceiling = [sys.executable, "-m", "uvicorn", "bench.ceiling:create_app", "--factory"]
        ceiling += ["--app-dir", str(REPO_ROOT), "--host", HOST, "--port", str(ceiling_port)]
        ceiling += ["--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
        ceiling_env = {**env, "BENCH_CEILING_BODY": str(workdir / "page.json")}
        log = workdir / "ceiling.log"
        with server(ceiling, cwd=workdir, env=ceiling_env, port=ceiling_port, log=log) as process:
            url = f"http://{HOST}:{ceiling_port}/graphql"
            measure("c", url, page_token, page_body, process.pid)
    return result


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
        for backend in backends:
            result = run_backend(backend, args)
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
        PolicyTimingError,
    ) as error:
        _say(f"error: {error}")
        return 1
    finally:
        if results:
            print(table(results))
    for result in results:
        for s in result.scenarios.values():
            if s.errors:
                _say(f"[{result.backend}] ({s.scenario}) {s.errors} errors, e.g. {s.error_sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
