"""bench: ``hub import feedback`` of a JSONL file, records/s and peak memory.

A benchmark, not a test: it asserts nothing about speed. Per backend and per file size it
makes a fresh database (migrated, a data key, the default sharing policy, a support
department and ``--customers`` customers with known email addresses), writes a JSONL file
of realistic support-desk feedback naming those customers by email (about 1% name nobody
the hub knows, or carry a bad date: dead letters), and runs the real ``hub import
feedback FILE --as support`` as a subprocess, twice: the first run creates every record,
the second finds each one unchanged. For each run it reports the wall time of the whole
command (process start-up included) and the run's own duration (as ``hub import``
prints it), the records per second of each, and the process's peak resident memory
(``ru_maxrss`` of that child, from ``os.wait4``).

Run from the repository root::

    .venv/bin/python -m bench.importing                                  # both, 10k and 100k
    .venv/bin/python -m bench.importing --backend postgresql --records 10000,100000
    .venv/bin/python -m bench.importing --backend sqlite --records 2000 --profile out

``--profile DIR`` runs each import under ``py-spy record`` (raw folded stacks in DIR).
``--against DIR`` compares this tree with another copy of it (``git archive REV hub
connectors | tar -x -C DIR``): each round runs both, alternating which goes first, each
on a fresh database, the other tree's ``hub`` and ``connectors`` put first on the
child's ``PYTHONPATH``; ``--rounds N`` repeats, and the medians per tree close the
table.
Everything stays on loopback; the PostgreSQL database made on ``--pg-url`` is dropped at
the end. On a local PostgreSQL server the CPU time of the backends serving the run is
measured too (``/proc``), so each import shows the hub's and the database's CPU per record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.databases import BACKENDS, DatabaseSetupError, analyze, check_pg_url, database_url

SECRET_KEY = "bench-importing-" + "k" * 40
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ORGANIZATION = "support"
_SUMMARY = re.compile(r"\(([\d.]+) s, ([\d,]+) records/s\)")

_PRODUCTS = ("Aero kettle", "Brio blender", "Cirrus fan", "Dune lamp", "Echo speaker", None)
_TEXTS = {
    "complaint": (
        "The {p} arrived with a cracked lid and nobody answered my email for a week.",
        "Second time the {p} stopped working after a month. Very disappointed.",
        "Delivery was three days late and the box was soaked.",
    ),
    "praise": (
        "The {p} works perfectly, and the support agent was lovely.",
        "Quick delivery, well packed, thank you!",
    ),
    "question": (
        "Can I order a spare filter for the {p}?",
        "Is the {p} compatible with 110 V outlets?",
        "Where is my order? The tracking page has not moved since Monday.",
    ),
    "suggestion": (
        "Please offer the {p} in a matte black finish.",
        "It would help to get an SMS when the courier is close.",
    ),
    "bug": (
        "The app crashes when I try to pair the {p}.",
        "Checkout fails with an error when I apply a voucher.",
    ),
}
_CHANNELS = ("email", "chat", "phone", "website", "social")
_TAGS = ("delivery", "packaging", "quality", "refund", "app", "billing", "spare-parts")


def write_feedback(path: Path, records: int, customers: int, seed: int = 11) -> int:
    """A JSONL file of ``records`` support-desk tickets about ``customers`` customers
    (``c<n>@example.com``); returns how many of them should become dead letters."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    bad = 0
    with path.open("w") as out:
        for n in range(records):
            kind = rng.choice(tuple(_TEXTS))
            product = rng.choice(_PRODUCTS)
            email = f"c{rng.randrange(customers)}@example.com"
            created = (start + timedelta(seconds=rng.randrange(300 * 86400))).isoformat()
            roll = rng.random()
            if roll < 0.005:
                email, bad = f"nobody{n}@example.com", bad + 1  # no such customer
            elif roll < 0.01:
                created, bad = "2025-13-45T10:00:00", bad + 1  # a bad date
            record: dict[str, Any] = {
                "external_id": f"T-{100000 + n}",
                # Addresses as people type them: case and spaces vary.
                "customer_email": email.upper() if rng.random() < 0.1 else email,
                "channel": rng.choice(_CHANNELS),
                "kind": kind,
                "text": rng.choice(_TEXTS[kind]).format(p=product or "order"),
                "createdAt": created,
            }
            if product is not None:
                record["product"] = product
            if rng.random() < 0.6:
                scale = rng.choice(("nps", "csat"))
                record["scale"] = scale
                record["score"] = rng.randrange(11) if scale == "nps" else rng.randrange(1, 6)
            if rng.random() < 0.5:
                record["tags"] = rng.sample(_TAGS, rng.randrange(1, 3))
            out.write(json.dumps(record) + "\n")
    return bad


async def seed(url: str, customers: int) -> None:
    """A migrated database with a data key, the default policy, the support department
    and ``customers`` customers with known addresses (bulk inserts)."""
    from hub.db import Database, make_engine
    from hub.migrate import upgrade
    from hub.models import Customer, Organization, OrgKind
    from hub.models._types import new_id, utcnow
    from hub.sharing import install_defaults
    from hub.vault import email_index, ensure_data_key, load_data_keys

    await upgrade(url)
    database = Database(make_engine(url))
    master = SECRET_KEY.encode()
    try:
        async with database.transaction() as session:
            await ensure_data_key(session, master)
            await install_defaults(session, author="bench")
        async with database.session() as session:
            await load_data_keys(session, master)
        async with database.transaction() as session:
            session.add(
                Organization(
                    slug=ORGANIZATION,
                    name="Support",
                    kind=OrgKind.DEPARTMENT,
                    attributes={"roles": ["support"]},
                )
            )
            session.add(Organization(slug="operator", name="Operator", kind=OrgKind.OPERATOR))
        for first in range(0, customers, 2000):
            async with database.transaction() as session:
                rows = []
                for n in range(first, min(customers, first + 2000)):
                    email = f"c{n}@example.com"
                    # Through the model, so the email is sealed as the hub does.
                    row = Customer(
                        id=new_id(),
                        name=f"Customer {n}",
                        email=email,
                        email_index=email_index(email),
                        country="FR",
                    )
                    row.created_at = row.updated_at = utcnow()
                    rows.append(row)
                session.add_all(rows)
                await session.flush()
    finally:
        await database.dispose()


class DatabaseCPU:
    """The CPU time of the PostgreSQL backends serving one database while it runs: a
    thread reads ``/proc`` every ``every`` seconds for the processes titled ``postgres:
    ... <database> ...`` (a local server only) and sums what each used since it was
    first seen (from zero for a backend started meanwhile). ``None`` when no such
    process was ever seen (a remote server, or SQLite: its work is the hub's own)."""

    def __init__(self, url: str, every: float = 0.1) -> None:
        parsed = make_url(url)
        self.name = f" {parsed.database} " if parsed.drivername.startswith("postgresql") else None
        self.every = every
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> DatabaseCPU:
        if self.name is not None:
            self._sample(baseline=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.name is not None:
            self._stop.set()
            self._thread.join()
            self._sample(baseline=False)

    @property
    def seconds(self) -> float | None:
        if not self.last:
            return None
        return sum(used - self.first.get(pid, 0.0) for pid, used in self.last.items())

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self._sample(baseline=False)

    def _sample(self, *, baseline: bool) -> None:
        if self.name is None:
            return
        tick = os.sysconf("SC_CLK_TCK")
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if not title.startswith("postgres:") or self.name not in f"{title} ":
                    continue
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
            except (OSError, UnicodeDecodeError):
                continue
            used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            pid = int(proc.name)
            if baseline:
                self.first[pid] = used
            self.last[pid] = used


@dataclass(frozen=True)
class Measure:
    tree: str  # "this", or "against" (--against)
    backend: str
    records: int
    run: str  # first (creates) or again (unchanged)
    wall: float
    duration: float | None
    cpu: float
    db_cpu: float | None
    peak_rss_mib: float
    summary: str

    def row(self) -> list[str]:
        rate = f"{self.records / self.wall:,.0f}"
        inner = f"{self.records / self.duration:,.0f}" if self.duration else "?"
        per_record = self.cpu + (self.db_cpu or 0.0)
        return [
            self.tree,
            self.backend,
            f"{self.records:,}",
            self.run,
            f"{self.wall:.1f}",
            rate,
            inner,
            f"{self.cpu:.1f}",
            "-" if self.db_cpu is None else f"{self.db_cpu:.1f}",
            f"{per_record / self.records * 1e6:.0f}",
            f"{self.peak_rss_mib:.0f}",
        ]


def out_dir(profile: Path | None) -> Path:
    where = profile or Path(tempfile.gettempdir()) / "hub-bench-import-logs"
    where.mkdir(parents=True, exist_ok=True)
    return where


def run_import(
    url: str,
    path: Path,
    batch: int | None,
    profile: Path | None,
    label: str,
    tree: Path | None = None,
) -> tuple[float, float | None, float, float, str]:
    """``hub import feedback`` as a subprocess (from ``tree``'s code when given): wall
    seconds, the run's own duration, the process's CPU seconds (user and system), its
    peak RSS (MiB) and its summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {"HUB_DATABASE_URL": url, "HUB_SECRET_KEY": SECRET_KEY, "HUB_LOG_JSON": "false"}
    if tree is not None:
        # Before the editable install's path: the other tree's packages win.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    hub = str(Path(sys.executable).parent / "hub")
    command = [hub, "import", "feedback", str(path), "--as", ORGANIZATION, "-q"]
    if batch is not None:
        command += ["--batch-size", str(batch)]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        spy = str(Path(sys.executable).parent / "py-spy")
        out = profile / f"{label}.raw"
        command = [
            spy,
            "record",
            "--idle",
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--",
            *command,
        ]
    log = out_dir(profile) / f"{label}.out"
    errors = log.with_suffix(".err")
    started = time.monotonic()
    with log.open("w") as stdout, errors.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        # wait4 gives this child's own usage (getrusage(RUSAGE_CHILDREN) would give the
        # largest peak of every child so far).
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = {"out": log.read_text(), "err": errors.read_text()}
    if process.returncode != 0:
        raise SystemExit(f"hub import failed ({process.returncode}):\n{output['err']}")
    said = [line for line in output.get("out", "").splitlines() if "records/s" in line]
    summary = said[-1] if said else "?"
    found = _SUMMARY.search(summary)
    duration = float(found.group(1)) if found else None
    # ru_maxrss is in KiB on Linux.
    return wall, duration, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, summary


def bench(args: argparse.Namespace) -> list[Measure]:
    measures: list[Measure] = []
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    sizes = [int(s) for s in args.records.split(",")]
    trees: list[tuple[str, Path | None]] = [("this", None)]
    if args.against is not None:
        trees.append(("against", args.against.resolve()))
    with tempfile.TemporaryDirectory(prefix="hub-bench-import-") as tmp:
        workdir = Path(tmp)
        for backend in backends:
            for size in sizes:
                path = workdir / f"{backend}-{size}.jsonl"
                bad = write_feedback(path, size, args.customers)
                for turn in range(args.rounds):
                    # Alternate which tree goes first: the machine's load drifts.
                    for name, tree in trees if turn % 2 == 0 else trees[::-1]:
                        where = workdir / f"{backend}-{size}-{turn}-{name}"
                        where.mkdir()
                        measures += _one(args, backend, size, path, bad, where, name, tree)
    return measures


def _one(
    args: argparse.Namespace,
    backend: str,
    size: int,
    path: Path,
    bad: int,
    where: Path,
    name: str,
    tree: Path | None,
) -> list[Measure]:
    """Both runs (first, again) of one tree on a fresh database."""
    measures: list[Measure] = []
    with database_url(backend, where, args.pg_url) as url:
        t0 = time.monotonic()
        asyncio.run(seed(url, args.customers))
        if backend == "postgresql" and not args.no_analyze:
            analyze(url)
        print(
            f"{name} {backend} {size:,}: seeded {args.customers:,} customers in "
            f"{time.monotonic() - t0:.1f} s ({bad} records should be dead letters)",
            file=sys.stderr,
        )
        for run in ("first", "again"):
            label = f"{name}-{backend}-{size}-{run}-{where.name}"
            with DatabaseCPU(url) as database_cpu:
                wall, duration, cpu, rss, summary = run_import(
                    url, path, args.batch_size, args.profile, label, tree
                )
            print(f"  {run}: {summary}", file=sys.stderr)
            measures.append(
                Measure(
                    name,
                    backend,
                    size,
                    run,
                    wall,
                    duration,
                    cpu,
                    database_cpu.seconds,
                    rss,
                    summary,
                )
            )
    return measures


def medians(measures: list[Measure]) -> list[Measure]:
    """One row per tree, backend, size and run: each column's median on its own."""
    groups: dict[tuple[str, str, int, str], list[Measure]] = {}
    for m in measures:
        groups.setdefault((m.tree, m.backend, m.records, m.run), []).append(m)
    out = []
    for (tree, backend, records, run), group in sorted(groups.items()):
        durations = [m.duration for m in group if m.duration]
        db = [m.db_cpu for m in group if m.db_cpu is not None]
        out.append(
            Measure(
                f"{tree} (median of {len(group)})",
                backend,
                records,
                run,
                statistics.median(m.wall for m in group),
                statistics.median(durations) if durations else None,
                statistics.median(m.cpu for m in group),
                statistics.median(db) if db else None,
                statistics.median(m.peak_rss_mib for m in group),
                "",
            )
        )
    return out


def table(measures: list[Measure]) -> str:
    head = [
        "tree",
        "backend",
        "records",
        "run",
        "wall s",
        "rec/s wall",
        "rec/s run",
        "hub CPU s",
        "db CPU s",
        "CPU µs/rec",
        "peak RSS MiB",
    ]
    rows = [head, *(m.row() for m in measures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--records", default="10000,100000", help="file sizes, comma-separated")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: hub import's")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--no-analyze", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy raw profiles here")
    parser.add_argument(
        "--against", type=Path, default=None, help="another copy of the tree, run alternately"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repetitions (alternating trees)")
    args = parser.parse_args()
    try:
        check_pg_url(args.pg_url)
        measures = bench(args)
    except DatabaseSetupError as error:
        raise SystemExit(str(error)) from None
    print(table(measures))
    if args.rounds > 1 or args.against is not None:
        print()
        print(table(medians(measures)))
    print(
        "\nrec/s wall: the whole `hub import` command (start-up included); rec/s run: the "
        "run's own duration as hub import reports it; hub CPU s: the hub process's CPU "
        "time (user + system: what load on the machine does not inflate); db CPU s: the "
        "PostgreSQL backends' CPU time for the run (local server); CPU µs/rec: both, per "
        "record (start-up included); first: every "
        "record created; again: the same file, every record unchanged."
    )


if __name__ == "__main__":
    main()
