"""Time the sharing-policy commands on the seeded database, before the hub serves it.

:func:`time_policy` exports the version in force (``hub policy export``), adds one
harmless rule (a vendor reads a few fields of its own interactions: allowed by the
guardrails and the default policy's expectations), and times, as subprocesses (wall time,
Python start-up and imports included, as an operator at a shell would wait):

- ``hub policy preview FILE --json`` (validate, guardrails, expectations, and per
  organization and resource two ``COUNT(*)`` over the data: what a publish would change);
- ``hub policy publish FILE --reason bench`` (validate, guardrails, expectations, insert
  the next version and its audit event).

Then ``python -m bench.policytime`` runs the same two commands in one process after
importing the hub, with a second variant of the file (the added rule's description
differs), and times only the commands: the cost without interpreter start-up.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY_TIMEOUT = 600.0
RULE_NAME = "bench-vendor-own-interactions"


class PolicyTimingError(Exception):
    """A policy command failed; the message carries its output."""


@dataclass
class PolicyTiming:
    """Seconds per command; ``*_inprocess_s`` exclude Python start-up and imports."""

    export_s: float
    preview_s: float
    publish_s: float
    published_version: str
    preview_changes: list[str] = field(default_factory=list)
    import_s: float | None = None
    preview_inprocess_s: float | None = None
    publish_inprocess_s: float | None = None
    inprocess_error: str | None = None


def with_bench_rule(source: str, description: str) -> str:
    """``source`` (an exported policy, YAML or JSON) with one harmless rule appended."""
    name, suffix = RULE_NAME, 1
    while name in source:  # a database the benchmark already published to
        suffix += 1
        name = f"{RULE_NAME}-{suffix}"
    rule: dict[str, Any] = {
        "name": name,
        "description": description,
        "subjects": [{"kind": "vendor"}],
        "resource": "Interaction",
        "rows": {"organization": {"eq": "$subject.org"}},
        "read": {"visible": ["id", "channel", "occurred_at"]},
    }
    if source.lstrip().startswith("{"):
        document = json.loads(source)
        document.setdefault("rules", []).append(rule)
        return json.dumps(document, indent=2) + "\n"
    # YAML: insert the rule as text at the end of the top-level `rules:` sequence, so the
    # rest of the source (comments, anchors) stays as published.
    lines = source.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "rules:")
    except StopIteration:
        raise PolicyTimingError("the exported policy has no top-level `rules:`") from None
    end, indent = len(lines), None
    for i in range(start + 1, len(lines)):
        stripped = lines[i].lstrip(" ")
        if indent is None and stripped.startswith("- "):
            indent = len(lines[i]) - len(stripped)
        if lines[i][:1] not in ("", " ", "#", "-", "\n"):
            end = i
            break
    pad = " " * (indent or 0)
    block = [
        f"{pad}- name: {name}\n",
        f"{pad}  description: {json.dumps(description)}\n",
        f"{pad}  subjects: [{{kind: vendor}}]\n",
        f"{pad}  resource: Interaction\n",
        f"{pad}  rows: {{organization: {{eq: $subject.org}}}}\n",
        f"{pad}  read: {{visible: [id, channel, occurred_at]}}\n",
        "\n",
    ]
    if end == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join([*lines[:end], *block, *lines[end:]])


def _hub(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, str]:
    began = time.monotonic()
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=POLICY_TIMEOUT, check=False
    )
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        raise PolicyTimingError(
            f"{' '.join(argv[1:])} failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return elapsed, done.stdout, done.stderr


def _changes(preview_json: str) -> list[str]:
    """The preview's changes, one line each; raise if it reports publish problems."""
    payload = json.loads(preview_json)
    if payload["problems"]:
        raise PolicyTimingError(f"the preview reports problems: {payload['problems']}")
    lines = []
    for org in payload["organizations"]:
        for r in org["resources"]:
            if r["fields_gained"] or r["fields_lost"] or r["rows_gained"] or r["rows_lost"]:
                lines.append(
                    f"{org['organization']} {r['resource']}: fields +{r['fields_gained']} "
                    f"-{r['fields_lost']}, rows +{r['rows_gained']} -{r['rows_lost']}"
                )
    return lines


def time_policy(hub: str, workdir: Path, env: dict[str, str]) -> PolicyTiming:
    """Export, preview and publish a small change; see the module docstring."""
    export_s, source, _ = _hub([hub, "policy", "export"], workdir, env)
    (workdir / "policy.yaml").write_text(source)
    edited = workdir / "policy-bench.yaml"
    edited.write_text(with_bench_rule(source, "Added by bench/run.py to time a publish."))
    preview_s, preview_out, _ = _hub(
        [hub, "policy", "preview", str(edited), "--json"], workdir, env
    )
    changes = _changes(preview_out)
    publish_s, _, publish_err = _hub(
        [hub, "policy", "publish", str(edited), "--reason", "bench"], workdir, env
    )
    timing = PolicyTiming(
        export_s=export_s,
        preview_s=preview_s,
        publish_s=publish_s,
        published_version=" ".join(publish_err.split()),
        preview_changes=changes,
    )
    second = workdir / "policy-bench-2.yaml"
    second.write_text(with_bench_rule(source, "Added by bench/run.py (in-process publish)."))
    try:
        # In the work directory (the hub's key file is there), with bench importable.
        helper_env = {**env, "PYTHONPATH": str(REPO_ROOT)}
        argv = [sys.executable, "-m", "bench.policytime", str(second)]
        _, out, _ = _hub(argv, workdir, helper_env)
        inprocess = json.loads(out)
        timing.import_s = inprocess["import_s"]
        timing.preview_inprocess_s = inprocess["preview_s"]
        timing.publish_inprocess_s = inprocess["publish_s"]
    except (PolicyTimingError, ValueError, KeyError) as error:
        # Optional: the subprocess timings above are the result.
        timing.inprocess_error = str(error)[-1000:]
    return timing


def _inprocess(path: str) -> dict[str, float]:
    began = time.perf_counter()
    from hub.cli import app

    imported = time.perf_counter()

    def run(argv: list[str]) -> tuple[float, str]:
        captured = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(captured):
            code = app(argv, standalone_mode=False, prog_name="hub")
        elapsed = time.perf_counter() - start
        if code:
            raise SystemExit(f"hub {' '.join(argv)} exited with {code}")
        return elapsed, captured.getvalue()

    preview_s, preview_out = run(["policy", "preview", path, "--json"])
    _changes(preview_out)
    publish_s, _ = run(["policy", "publish", path, "--reason", "bench (in-process)"])
    return {"import_s": imported - began, "preview_s": preview_s, "publish_s": publish_s}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.policytime POLICY_FILE", file=sys.stderr)
        return 2
    result = _inprocess(argv[1])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
