"""CSV and JSONL files from a temp folder: positions, cursors, resume, gzip, bad lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from connectors import REGISTRY, ConfigError, Record, SourceError
from connectors.files import FilesSource


async def read_all(source: FilesSource, cursor: str | None = None) -> list[Record]:
    return [record async for record in source.read(cursor)]


def source(path: Path, **config: str) -> FilesSource:
    return FilesSource.from_config({"path": str(path), **config})


CSV = (
    "external_id,customer_email,text\n"
    "t1,a@example.com,Great\n"
    "\n"
    't2,b@example.com,"two\nlines"\n'
    "t3,c@example.com\n"
    "t4,d@example.com,last\n"
)


async def test_csv_records_carry_their_line(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text(CSV)
    records = await read_all(source(path))
    assert [r.position for r in records] == ["line 2", "line 4", "line 6", "line 7"]
    assert records[0].data == {
        "external_id": "t1",
        "customer_email": "a@example.com",
        "text": "Great",
    }
    assert records[1].data["text"] == "two\nlines"
    assert records[2].problem == "2 values, but the header has 3 columns"
    assert records[2].data == {"raw": "t3,c@example.com"}
    assert records[3].problem is None


@pytest.mark.parametrize("name", ["desk.jsonl", 'été "q".csv', "a\\b.csv"])
def test_cursor_texts_are_the_cursors_json(name: str) -> None:
    from connectors.files import _Cursor

    texts = _Cursor.texts(name)
    for line in (1, 12, 1_000_000):
        assert texts(line) == _Cursor(name, line).text()
        assert _Cursor.parse(texts(line)) == _Cursor(name, line)


async def test_records_are_what_read_yields(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(CSV)
    (tmp_path / "b.jsonl").write_text('{"external_id": "j1"}\nnot json\n')
    files = source(tmp_path)
    assert list(files.records(None)) == await read_all(files)
    cursor = (await read_all(files))[1].cursor
    assert list(files.records(cursor)) == await read_all(files, cursor)


async def test_resume_after_a_cursor_reads_the_rest_only(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text(CSV)
    first = await read_all(source(path))
    again = await read_all(source(path), first[1].cursor)
    assert [r.position for r in again] == ["line 6", "line 7"]
    assert await read_all(source(path), first[-1].cursor) == []


async def test_jsonl_gzip_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"external_id": "j1", "requester": {"email": "a@example.com"}}),
        "",
        "{not json",
        "[1, 2]",
        json.dumps({"external_id": "j2"}),
    ]
    path = tmp_path / "desk.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    records = await read_all(source(path))
    assert [r.position for r in records] == ["line 1", "line 3", "line 4", "line 5"]
    assert records[0].data["requester"] == {"email": "a@example.com"}
    assert records[1].problem is not None and records[1].problem.startswith("not valid JSON")
    assert records[1].data == {"raw": "{not json"}
    assert records[2].problem == "a JSON list, not an object"
    resumed = await read_all(source(path), records[1].cursor)
    assert [r.data.get("external_id") for r in resumed if r.problem is None] == ["j2"]


async def test_gzip_is_recognised_by_content(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"  # no .gz, but gzip inside
    path.write_bytes(gzip.compress(b"\xef\xbb\xbfa,b\n1,2\n"))  # with a UTF-8 BOM
    assert [r.data for r in await read_all(source(path))] == [{"a": "1", "b": "2"}]


async def test_a_folder_is_read_in_name_order_and_resumed_across_files(tmp_path: Path) -> None:
    (tmp_path / "2026-01-02.jsonl").write_text('{"n": 3}\n{"n": 4}\n')
    (tmp_path / "2026-01-01.jsonl").write_text('{"n": 1}\n{"n": 2}\n')
    (tmp_path / "notes.txt").write_text("ignored by the pattern\n")
    folder = source(tmp_path, pattern="*.jsonl")
    records = await read_all(folder)
    assert [r.data["n"] for r in records] == [1, 2, 3, 4]
    assert records[2].position == "2026-01-02.jsonl line 1"
    assert [r.data["n"] for r in await read_all(folder, records[1].cursor)] == [3, 4]
    (tmp_path / "2026-01-03.jsonl").write_text('{"n": 5}\n')
    assert [r.data["n"] for r in await read_all(folder, records[3].cursor)] == [5]


async def test_files_that_cannot_be_read_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        await read_all(source(tmp_path / "missing.csv"))
    (tmp_path / "data.bin").write_text("x")
    with pytest.raises(SourceError, match=r"set config\.format"):
        await read_all(source(tmp_path / "data.bin"))
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    with pytest.raises(SourceError, match="names the column 'a' twice"):
        await read_all(source(tmp_path / "dup.csv"))
    (tmp_path / "latin.csv").write_bytes("a\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(SourceError, match="not utf-8 text"):
        await read_all(source(tmp_path / "latin.csv"))
    assert [r.data for r in await read_all(source(tmp_path / "latin.csv", encoding="latin-1"))] == [
        {"a": "café"}
    ]
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:-30])
    with pytest.raises(SourceError, match="gzip"):
        await read_all(source(tmp_path / "cut.jsonl.gz"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config.path: required"),
        ({"path": "x", "format": "xml"}, "config.format: must be csv or jsonl"),
        ({"path": "x", "delimiter": ";;"}, "config.delimiter"),
        ({"path": "x", "encoding": "klingon"}, "config.encoding: unknown encoding"),
        ({"path": "x", "colour": "red"}, "config.colour: not a setting"),
    ],
)
def test_bad_configuration_names_the_key(config: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        REGISTRY["files"](config, None)
