"""`hub import` and `hub sync` in-process: summaries, dead letters listed, and one clear
line (no traceback) for each mistake a user makes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import Database
from tests.conftest import SECRET
from tests.hub.sync_helpers import customers, feedback_count, run_db, support_org

CSV = (
    "external_id,customer_email,channel,kind,text\n"
    "a1,person0@example.com,email,praise,Great service\n"
    "a2,person1@example.com,email,complaint,\n"
    "a3,person1@example.com,phone,question,When?\n"
)


def invoke(database_url: str, *args: str) -> Any:
    env = {
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_LOG_JSON": "false",
        "COLUMNS": "240",
    }
    return CliRunner().invoke(cli, list(args), env=env)


def said(result: Any) -> str:
    return " ".join(result.output.split())


@pytest.fixture
async def desk(db: Database, tmp_path: Path) -> Path:
    await support_org(db)
    await customers(db, 2)
    path = tmp_path / "desk.csv"
    path.write_text(CSV)
    return path


def test_import_prints_a_summary_and_the_dead_letters(desk: Path, database_url: str) -> None:
    result = invoke(database_url, "import", "feedback", str(desk), "--as", "support")
    assert result.exit_code == 0, result.output
    assert "import of desk.csv as support: succeeded; read 3, created 2, updated 0, " in said(
        result
    )
    assert "dead letter line 3: text: must not be empty" in said(result)
    again = invoke(database_url, "import", "feedback", str(desk), "--as", "support", "-q")
    assert "read 3, created 0, updated 0, unchanged 2" in said(again)
    assert run_db(database_url, feedback_count) == 2
    status = invoke(database_url, "sync", "status", "--imports")
    assert status.exit_code == 0, status.output
    assert "succeeded" in said(status) and "support" in said(status)


@pytest.mark.parametrize(
    ("args", "mapping", "message"),
    [
        (
            ["import", "feedback", "{desk}", "--as", "nobody"],
            None,
            "--as: no organization with slug 'nobody'",
        ),
        (
            ["import", "tickets", "{desk}", "--as", "support"],
            None,
            "RESOURCE: unknown resource 'tickets' (known: customers, feedback)",
        ),
        (["import", "feedback", "{missing}", "--as", "support"], None, "missing.csv: no such file"),
        (
            ["import", "feedback", "{pipe}", "--as", "support"],
            None,
            "pipe.csv: it is not a regular file",
        ),
        (
            ["import", "feedback", "{desk}", "--as", "support", "--mapping", "{mapping}"],
            "mapping:\n  external_id: id\n  kind: {from: type, map: [1, 2]}\n",
            "mapping.kind.map: must map source values to plain values",
        ),
        (
            ["import", "feedback", "{desk}", "--as", "support", "--mapping", "{mapping}"],
            "text: body\n",
            "mapping.external_id: required",
        ),
        (
            ["import", "feedback", "{desk}", "--as", "support", "--mapping", "{mapping}"],
            "external_id: id\ncolour: c\n",
            "mapping.colour: not a field this connector can set",
        ),
        (
            ["import", "feedback", "{desk}", "--as", "support", "--mapping", "{mapping}"],
            "external_id: [id\n",
            "is not valid YAML at line 2",
        ),
        (["sync", "run", "nothing"], None, "no connector named 'nothing'"),
    ],
)
def test_mistakes_get_one_line(
    desk: Path,
    database_url: str,
    tmp_path: Path,
    args: list[str],
    mapping: str | None,
    message: str,
) -> None:
    mapping_path = tmp_path / "mapping.yaml"
    if mapping is not None:
        mapping_path.write_text(mapping)
    values = {
        "desk": str(desk),
        "missing": str(tmp_path / "missing.csv"),
        "mapping": str(mapping_path),
        "pipe": str(tmp_path / "pipe.csv"),
    }
    os.mkfifo(tmp_path / "pipe.csv")  # a named pipe: read once, never again from the start
    result = invoke(database_url, *[a.format(**values) for a in args])
    assert result.exit_code in (1, 2), result.output
    assert message in said(result), result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_apply_run_and_status(desk: Path, database_url: str, tmp_path: Path) -> None:
    definition = tmp_path / "connectors.yaml"
    definition.write_text(
        f"""
connectors:
  - name: desk
    kind: files
    resource: feedback
    organization: support
    schedule: 15m
    config: {{path: {desk}}}
    credentials: {{token: s3cret}}
"""
    )
    applied = invoke(database_url, "sync", "apply", str(definition))
    assert applied.exit_code == 0, applied.output
    assert said(applied) == "created connector desk"
    assert said(invoke(database_url, "sync", "apply", str(definition))) == "updated connector desk"
    ran = invoke(database_url, "sync", "run", "desk", "-q")
    assert ran.exit_code == 0, ran.output
    assert "desk: succeeded; read 3, created 2" in said(ran)
    status = said(invoke(database_url, "sync", "status"))
    assert "desk files Feedback support 15m" in status
    assert "succeeded" in status and "read 3, +2" in status

    definition.write_text("name: desk\nkind: files\nresource: feedback\norganization: support\n")
    bad = invoke(database_url, "sync", "apply", str(definition))
    assert bad.exit_code == 2
    assert said(bad).endswith("connectors.yaml: connector.config.path: required (text)")
    definition.write_text(
        f"name: desk\nkind: files\nresource: feedback\norganization: x\nconfig: {{path: {desk}}}\nschedule: 2s\n"
    )
    assert "connector.schedule: at least 10 seconds" in said(
        invoke(database_url, "sync", "apply", str(definition))
    )
