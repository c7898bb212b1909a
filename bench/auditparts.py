"""What each part of the read audit costs a partner page: ``python -m bench.auditparts``.

One server, one seeded database, the distributor's page (scenario (b) of ``bench.run``)
measured in four modes switched inside the running server, plus the operator's page (d),
in alternating order round after round (so a shared machine's drift spreads over all):

- ``off``: no collector opened (as ``HUB_AUDIT_READS=false``);
- ``collect``: the request's reads collected (the SQL's ids and outcome bits, the
  collector's notes), then dropped instead of handed to the writer;
- ``noindex``: the ``read`` events written, the disclosure index not brought up to date
  (the writer's indexing is skipped while the mode lasts, and catches up in the next
  mode's warm-up);
- ``full``: the product as it runs;
- ``operator``: the operator's page, which is not read-audited (partner reads are).

The differences between neighbouring modes are the parts' costs: hub CPU and PostgreSQL
CPU per request, and requests/s. The modes are switched by a ``sitecustomize`` module
the benchmark writes for the server process only (it wraps
``hub.disclosures.collect`` and two methods of the ``DisclosureWriter``, reading the
mode from a file at most twice a second): nothing in the product knows of it. If those
names change, the server fails to start and this says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.auditreads import _say
from bench.databases import BACKENDS, analyze, check_pg_url, database_url
from bench.drive import LoadOptions, drive
from bench.hubapi import PARTNER_PAGE_QUERY, HubClient, credentials, request_body
from bench.pgcpu import PostgresCpu
from bench.procs import HOST, free_port, server
from bench.results import ScenarioResult
from bench.run import DEFAULT_PG_URL, _hub_env, _hub_executable, _seed

MODES = ("off", "collect", "noindex", "full", "operator")

# The server's switch. Wraps by name what the modes leave out; a rename fails start-up.
_SHIM = '''
"""bench.auditparts: the read audit's parts switched per mode (see that module)."""
import os
import time

_FILE = os.environ.get("BENCH_AUDIT_PARTS_MODE")
if _FILE:
    import hub.disclosures as _disclosures
    from hub.disclosures import write as _write

    _state = {"at": float("-inf"), "mode": "full"}

    def _mode():
        now = time.monotonic()
        if now - _state["at"] > 0.5:
            _state["at"] = now
            with open(_FILE) as handle:
                _state["mode"] = handle.read().strip()
        return _state["mode"]

    _collect = _disclosures.collect

    def collect(principal, *, operation, query, enabled=True):
        on = enabled and _mode() != "off"
        return _collect(principal, operation=operation, query=query, enabled=on)

    _disclosures.collect = collect
    _submit = _write.DisclosureWriter.submit

    def submit(self, reads):
        if _mode() != "collect":
            _submit(self, reads)

    _write.DisclosureWriter.submit = submit
    _index = _write.DisclosureWriter.index

    async def index(self):
        return 0 if _mode() == "noindex" else await _index(self)

    _write.DisclosureWriter.index = index
'''


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.auditparts", description=__doc__)
    parser.add_argument("--backend", choices=BACKENDS, default="postgresql")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per mode")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of all the modes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, list[ScenarioResult]]:
    """Every mode's results, round by round."""
    hub = _hub_executable()
    options = LoadOptions(
        concurrency=args.concurrency,
        processes=1,
        warmup=args.warmup,
        duration=args.duration,
        client="raw",
    )
    results: dict[str, list[ScenarioResult]] = {mode: [] for mode in MODES}
    with (
        tempfile.TemporaryDirectory(prefix="pbench-parts-") as tmp,
        database_url(args.backend, Path(tmp), args.pg_url) as db_url,
    ):
        workdir = Path(tmp)
        shim = workdir / "shim"
        shim.mkdir()
        (shim / "sitecustomize.py").write_text(_SHIM)
        mode_file = workdir / "mode"
        mode_file.write_text("full")
        port = free_port()
        env = _hub_env(db_url)
        _say(f"[{args.backend}] seeding {args.customers} customers ...")
        _say(f"[{args.backend}] seeded in {_seed(hub, args.customers, port, workdir, env):.1f} s")
        if args.backend == "postgresql":
            analyze(db_url)
        rows = json.loads((workdir / "creds.json").read_text())
        path = os.pathsep.join(p for p in (str(shim), env.get("PYTHONPATH", "")) if p)
        env.update(HUB_AUDIT_READS="true", BENCH_AUDIT_PARTS_MODE=str(mode_file), PYTHONPATH=path)
        argv = [hub, "serve", "--host", HOST, "--port", str(port), "--workers", "1"]
        with server(argv, cwd=workdir, env=env, port=port, log=workdir / "hub.log") as process:
            client = HubClient(f"http://{HOST}:{port}")
            try:
                partner = client.token(credentials(rows, "distributor"))
                operator = client.token(credentials(rows, "operator"))
            finally:
                client.close()
            body = [request_body(PARTNER_PAGE_QUERY)]
            for round_ in range(args.rounds):
                for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
                    mode_file.write_text("full" if mode == "operator" else mode)
                    token = operator if mode == "operator" else partner
                    result = drive(
                        f"{mode}-{round_}",
                        url=f"http://{HOST}:{port}/graphql",
                        headers={"Authorization": f"Bearer {token}"},
                        bodies=body,
                        options=options,
                        server_pid=process.pid,
                        workdir=workdir,
                        postgres=PostgresCpu(db_url) if args.backend == "postgresql" else None,
                    )
                    results[mode].append(result)
                    _say(f"[{args.backend}] round {round_ + 1} {_line(mode, [result])}")
    return results


def _line(mode: str, results: Sequence[ScenarioResult]) -> str:
    rate = statistics.median(r.requests_per_s for r in results)
    hub = statistics.median(r.server_cpu_ms_per_request or 0.0 for r in results)
    line = f"{mode:<9} {rate:8.1f} req/s  hub {hub:.3f} ms"
    pg = [r.pg_cpu_ms_per_request for r in results if r.pg_cpu_ms_per_request is not None]
    if pg:
        database = statistics.median(pg)
        line += f"  PostgreSQL {database:.3f} ms  both {hub + database:.3f}"
    errors = sum(r.errors for r in results)
    return line + (f"  ({errors} errors)" if errors else "")


def summary(results: dict[str, list[ScenarioResult]]) -> str:
    """Medians per mode, and each against the operator's page (req/s, CPU per request)."""
    operator = statistics.median(r.requests_per_s for r in results["operator"])
    lines = ["medians of the rounds (CPU in ms per request):"]
    for mode in MODES:
        rate = statistics.median(r.requests_per_s for r in results[mode])
        lines.append(f"  {_line(mode, results[mode])}  req/s / operator {rate / operator:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.backend == "postgresql":
        check_pg_url(args.pg_url)
    print(summary(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
