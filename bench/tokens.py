"""client_credentials tokens per second on one ``hub serve`` worker (SQLite).

    .venv/bin/python -m bench.tokens [--seconds 10] [--concurrency 32] [--clients 4]

Seeds a throw-away ``hub demo`` database, starts ``hub serve`` (one worker), and drives
``POST /oauth/token`` (client_secret_basic) from several load processes so the load
generator is not the bottleneck. Reports tokens/s, p50 and p99 latency. Goal: >= 1,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.procs import free_port, server

HUB = shutil.which("hub", path=str(Path(sys.executable).parent)) or "hub"


def _basic(client_id: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def _drive(url: str, auth: str, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await http.post(
                    "/oauth/token",
                    content=b"grant_type=client_credentials",
                    headers={
                        "Authorization": auth,
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                )
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text}")
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _load_process(args: tuple[str, str, float, int]) -> list[float]:
    return asyncio.run(_drive(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32, help="in-flight requests, total")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-tokens-") as tmp:
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        port = free_port()
        seed = [HUB, "demo", "--customers", "10", "--no-serve", "--port", str(port)]
        seed += ["--credentials-out", "creds.json"]
        subprocess.run(seed, cwd=workdir, env=env, check=True, capture_output=True)
        row = json.loads((workdir / "creds.json").read_text())[0]
        auth = _basic(row["client_id"], row["client_secret"])
        argv = [HUB, "serve", "--port", str(port), "--workers", "1"]
        with server(argv, cwd=workdir, env=env, port=port, log=workdir / "serve.log"):
            url = f"http://127.0.0.1:{port}"
            asyncio.run(_drive(url, auth, 1.0, 4))  # warm-up
            per = max(1, options.concurrency // options.clients)
            jobs = [(url, auth, options.seconds, per)] * options.clients
            started = time.perf_counter()
            with multiprocessing.Pool(options.clients) as pool:
                results = pool.map(_load_process, jobs)
            elapsed = time.perf_counter() - started
    latencies = sorted(x for part in results for x in part)
    quantiles = statistics.quantiles(latencies, n=100)
    report = {
        "tokens": len(latencies),
        "seconds": round(elapsed, 2),
        "tokens_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "concurrency": per * options.clients,
        "workers": 1,
        "database": "sqlite",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
