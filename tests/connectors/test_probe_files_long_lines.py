"""Lines too long to hold: a JSONL line past MAX_LINE is a bad record read past in
pieces (a gzip bomb's single line of a gigabyte took 7 GB of memory and then failed the
run on the database's refusal); a CSV line past it, or a field past csv's limit (an
unclosed quote), ends the read with a SourceError naming the file and the line (it was
an unexpected ``_csv.Error``)."""

from __future__ import annotations

import gzip
import json
import resource
from pathlib import Path

import pytest

from connectors import Record, SourceError
from connectors.files import MAX_LINE, FilesSource


def read(path: Path) -> list[Record]:
    return list(FilesSource.from_config({"path": str(path)}).records(None))


def line(external_id: str) -> str:
    return json.dumps({"external_id": external_id, "text": "fine"})


def test_a_jsonl_line_too_long_is_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "desk.jsonl"
    long = json.dumps({"external_id": "t2", "text": "x" * MAX_LINE})
    path.write_text(f"{line('t1')}\n{long}\n{line('t3')}\n")
    records = read(path)
    assert [r.position for r in records] == ["line 1", "line 2", "line 3"]
    assert records[1].problem == f"longer than {MAX_LINE:,} bytes"
    assert records[1].data["raw"].startswith('{"external_id": "t2"')
    assert len(records[1].data["raw"]) <= 10_000
    assert [r.data["external_id"] for r in (records[0], records[2])] == ["t1", "t3"]


def test_a_jsonl_line_of_exactly_max_line_is_read(tmp_path: Path) -> None:
    path = tmp_path / "desk.jsonl"
    head = '{"external_id": "t1", "text": "'
    exact = head + "x" * (MAX_LINE - len(head) - 2) + '"}'
    assert len(exact) == MAX_LINE
    path.write_text(f"{exact}\n{line('t2')}")
    records = read(path)
    assert [r.problem for r in records] == [None, None]
    assert len(records[0].data["text"]) == MAX_LINE - len(head) - 2


def test_a_gzip_bomb_of_one_line_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "desk.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b'{"external_id": "bomb", "text": "')
        chunk = b"x" * (1 << 20)
        for _ in range(400):  # 400 MiB on one line, 400 KiB compressed
            out.write(chunk)
        out.write(b'"}\n' + line("after").encode() + b"\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records = read(path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [r.problem for r in records] == [f"longer than {MAX_LINE:,} bytes", None]
    assert records[1].data["external_id"] == "after"
    assert grown_mib < 100, grown_mib


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"external_id,text\nt1,fine\nt2,{'x' * (MAX_LINE + 10)}\n", "line 3"),
        ('external_id,text\nt1,fine\nt2,"' + "x\n" * 600_000 + "\n", "line "),
    ],
    ids=["a line too long", "a field past csv's limit"],
)
def test_a_csv_line_or_field_too_long_ends_the_read_naming_it(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "desk.csv"
    path.write_text(text)
    records: list[Record] = []
    with pytest.raises(SourceError, match=rf"^desk\.csv: {where}"):
        records.extend(FilesSource.from_config({"path": str(path)}).records(None))
    assert [r.data["external_id"] for r in records] == ["t1"]
