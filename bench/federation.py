"""bench: the cost of one remote field on a partner's page.

A benchmark, not a test: it asserts nothing about speed. On a fresh SQLite demo database
it registers the Node loyalty subgraph of the conformance tests
(``tests/conformance/loyalty_subgraph.mjs``, on 127.0.0.1; its packages installed with
``npm ci`` there) with ``hub subgraphs add``, publishes the default policy with
``loyaltyTier`` shown to distributors, serves the hub, and loads the distributor's page
(bench (b): 50 customers, 8 fields, their 5 latest feedback) at the same concurrency:
as it is, and with ``loyaltyTier`` on each customer (one batched ``_entities`` request to
the subgraph per page); once with compiled reads (the plain page is one SQL statement, the
page with a remote field is resolved field by field) and once without (both resolved).
The goal (issue 13) is at most +20 % latency.

Run from the repository root::

    .venv/bin/python -m bench.federation                       # 2,000 customers, 10 s each
    .venv/bin/python -m bench.federation --customers 5000 --duration 20 --concurrency 16
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.drive import LoadOptions, drive
from bench.hubapi import HubClient, credentials, request_body
from bench.procs import HOST, free_port, server
from bench.queries import CUSTOMER_FIELDS, HUB, page_query
from bench.results import ScenarioResult
from bench.run import _hub_env, _hub_executable, _seed

ROOT = Path(__file__).resolve().parent.parent
NODE_TOOLS = ROOT / "tests" / "conformance"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    hub = _hub_executable()
    results: dict[str, ScenarioResult] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-federation-") as tmp:
        workdir = Path(tmp)
        env = _hub_env(f"sqlite+aiosqlite:///{workdir / 'hub.db'}")
        env["HUB_FEDERATION_ALLOW_LOOPBACK"] = "true"
        port = free_port()
        print(f"seeding {args.customers} customers...", file=sys.stderr)
        _seed(hub, args.customers, port, workdir, env)
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
            # With compiled reads (the default) the plain page is one SQL statement and a
            # page with a remote field goes to the resolver path; without, both resolve.
            for mode, extra in (("compiled", {}), ("resolvers", {"HUB_COMPILED_READS": "false"})):
                log = workdir / f"hub-{mode}.log"
                argv_ = [hub, "serve", "--host", HOST, "--port", str(port)]
                with server(
                    argv_, cwd=workdir, env={**env, **extra}, port=port, log=log
                ) as process:
                    client = HubClient(f"http://{HOST}:{port}")
                    token = client.token(partner)
                    client.graphql(token, remote)  # fails loudly if the field is not served
                    client.close()
                    for name, query in (("page", plain), ("page + loyaltyTier", remote)):
                        results[f"{name} ({mode})"] = drive(
                            name,
                            url=f"http://{HOST}:{port}/graphql",
                            headers={"Authorization": f"Bearer {token}"},
                            bodies=[request_body(query)],
                            options=options,
                            server_pid=process.pid,
                            workdir=workdir,
                        )
        finally:
            loyalty.terminate()
            loyalty.wait()
    print(f"\n{'scenario':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, result in results.items():
        print(
            f"{name:<32} {result.requests_per_s:>8.1f} {result.p50_ms:>8.1f} "
            f"{result.p99_ms:>8.1f} {result.errors:>7}"
        )
    print(f"\np50 latency with one remote field, concurrency {args.concurrency}:")
    for mode in ("compiled", "resolvers"):
        base, more = results[f"page ({mode})"], results[f"page + loyaltyTier ({mode})"]
        print(f"  against the page on the {mode} path: {more.p50_ms / base.p50_ms - 1:+.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
