"""Definitions an operator could write by mistake, or paste from anywhere: a schedule too
long for a date (it was stored, then every tick of `hub sync worker` failed on an
OverflowError and no scheduled connector ran), a number with thousands of digits, YAML
nested thousands deep. Each is refused naming the key or the file, in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import Database
from hub.models.sync import SyncConnector
from hub.sync.config import parse_schedule, parse_spec, read_yaml, save_connector
from hub.sync.errors import ConnectorConfigError
from hub.sync.worker import due_connectors
from tests.conftest import SECRET
from tests.hub.sync_helpers import runner, support_org


@pytest.mark.parametrize(
    "value", ["1000000000000", 10**12, "367d", "9" * 5000 + "s", "99999999999999999999999d"]
)
def test_a_schedule_past_a_year_is_refused(value: Any) -> None:
    with pytest.raises(ConnectorConfigError, match=r"^schedule: "):
        parse_schedule(value)


def test_a_schedule_of_a_year_is_taken() -> None:
    assert parse_schedule("366d") == 366 * 86400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 20_000 + "]" * 20_000, "nests"),
        ("name: x\nconfig: {page: " + "9" * 5000 + "}\n", "is not valid YAML"),
    ],
    ids=["nested 20,000 deep", "an integer of 5,000 digits"],
)
def test_yaml_past_what_python_takes_is_refused_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text(text)
    with pytest.raises(ConnectorConfigError, match=message) as raised:
        read_yaml(path)
    assert str(path) in str(raised.value)


def test_apply_says_so_in_one_line(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text("[" * 20_000 + "]" * 20_000)
    env = {"HUB_DATABASE_URL": database_url, "HUB_SECRET_KEY": SECRET, "COLUMNS": "240"}
    result = CliRunner().invoke(cli, ["sync", "apply", str(path)], env=env)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "desk.yaml" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


async def test_a_stored_schedule_too_long_does_not_stop_the_others(
    db: Database, tmp_path: Path
) -> None:
    # As a hub older than the bound may have stored it: on SQLite one a date cannot add;
    # PostgreSQL's integer column holds at most 2**31 - 1 seconds (68 years), past the
    # bound all the same.
    stored = 10**12 if db.engine.dialect.name == "sqlite" else 2**31 - 1
    await support_org(db)
    (tmp_path / "desk.csv").write_text("external_id,text\n")
    async with db.transaction() as session:
        for name in ("far", "often"):
            definition = {
                "name": name,
                "kind": "files",
                "resource": "feedback",
                "organization": "support",
                "schedule": "10s",
                "config": {"path": str(tmp_path / "desk.csv")},
            }
            await save_connector(session, parse_spec(definition))
        await session.execute(
            update(SyncConnector)
            .where(SyncConnector.name == "far")  # type: ignore[arg-type]
            .values(schedule_seconds=stored)
        )
    assert (await runner(db).run("far")).status == "succeeded"
    assert await due_connectors(runner(db)) == ["often"]
