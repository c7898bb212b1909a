"""client_credentials tokens per second on one ``hub serve`` worker (SQLite).

    .venv/bin/python -m bench.tokens [--duration 15] [--concurrency 32] [--client-processes 1]

Seeds a throw-away ``hub demo`` database, starts ``hub serve`` (one worker), and drives
``POST /oauth/token`` (client_secret_basic) with the same lean load generator as
``bench.run`` (``bench.load``, in its own process). Reports tokens/s, p50 and p99 latency,
and the server's CPU per token, which says what one dedicated core would sustain on a
machine where the load generator shares the cores. Goal: >= 1,000/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.drive import LoadOptions, drive
from bench.procs import free_port, server

HUB = shutil.which("hub", path=str(Path(sys.executable).parent)) or "hub"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--log-level", default="INFO", help="the server's HUB_LOG_LEVEL")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-tokens-") as tmp:
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env["HUB_LOG_LEVEL"] = options.log_level
        # One client sends every request: lift the per-client and per-address limits (the
        # limiter still counts each request, so its cost is measured).
        env["HUB_TOKEN_RATE_PER_CLIENT"] = env["HUB_TOKEN_RATE_PER_ADDRESS"] = "1000000000"
        port = free_port()
        seed = [HUB, "demo", "--customers", "10", "--no-serve", "--port", str(port)]
        seed += ["--credentials-out", "creds.json"]
        subprocess.run(seed, cwd=workdir, env=env, check=True, capture_output=True)
        row = json.loads((workdir / "creds.json").read_text())[0]
        basic = base64.b64encode(f"{row['client_id']}:{row['client_secret']}".encode()).decode()
        argv = [HUB, "serve", "--port", str(port), "--workers", "1"]
        with server(argv, cwd=workdir, env=env, port=port, log=workdir / "serve.log") as process:
            result = drive(
                "tokens",
                url=f"http://127.0.0.1:{port}/oauth/token",
                headers={
                    "Authorization": f"Basic {basic}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                bodies=["grant_type=client_credentials"],
                options=LoadOptions(
                    concurrency=options.concurrency,
                    processes=options.client_processes,
                    warmup=options.warmup,
                    duration=options.duration,
                    client="raw",
                ),
                server_pid=process.pid,
                workdir=workdir,
            )
    per_token = result.server_cpu_ms_per_request
    report = {
        "tokens": result.requests,
        "tokens_per_second": round(result.requests_per_s, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
        "error_sample": result.error_sample,
        "server_cpu_cores": result.server_cpu_cores,
        "server_cpu_ms_per_token": per_token,
        "tokens_per_second_per_dedicated_core": round(1000 / per_token, 1) if per_token else None,
        "client_cpu_cores": result.client_cpu_cores,
        "other_cpu_cores": result.other_cpu_cores,
        "concurrency": options.concurrency,
        "workers": 1,
        "database": "sqlite",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
