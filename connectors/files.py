"""CSV and JSONL files: one file or a folder of them, streamed, gzip accepted.

A record's position is its file line (``line 12``; ``name.csv line 12`` in a folder) and
its cursor the file and the last line it used, so a run resumes after the last record
stored. A folder is read in file-name order: files added later with names sorting after
the checkpoint's are read by the next run (name them by date, as exports usually are).
Files are read line by line, never whole, and gzip is recognised by its magic bytes
(``.gz`` or not).

Configuration (``config`` of a ``files`` connector)::

    path: /srv/exports/support-desk      # a file or a folder
    format: jsonl                        # csv or jsonl; default: from the file name
    pattern: "*.jsonl*"                  # a folder's files (default: every file)
    delimiter: ";"                       # CSV only (default ",")
    encoding: utf-8                      # default utf-8 (a BOM is skipped)
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from connectors.base import MAX_DEPTH, Record, SourceError
from connectors.config import ConfigError, optional_text, required_text

FORMATS = ("csv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_GZIP_MAGIC = b"\x1f\x8b"
# A raw line kept in a dead letter is cut here: enough to see what was wrong.
RAW_LIMIT = 10_000
# csv refuses fields past 128 KiB by default; a feedback text is far below this.
csv.field_size_limit(1 << 20)
MAX_LINE = 5 * 1024 * 1024
"""The longest line read, in bytes (JSONL) or characters (CSV), as a webhook's largest
body. A longer one is read past in pieces, never held whole (a gzip bomb's single line
of a gigabyte took 7 GB of memory): a bad record in JSONL, the end of the read in CSV."""


class _Cut(bytes):
    """The head of a JSONL line longer than :data:`MAX_LINE` (the rest was skipped)."""


def _jsonl_lines(raw: IO[bytes] | gzip.GzipFile) -> Iterator[bytes]:
    """The lines of ``raw``; a :class:`_Cut` in place of one past :data:`MAX_LINE`."""
    while True:
        line = raw.readline(MAX_LINE + 1)
        if len(line) <= MAX_LINE or line.endswith(b"\n"):
            if not line:
                return
            yield line
            continue
        while (rest := raw.readline(MAX_LINE)) and not rest.endswith(b"\n"):
            pass
        yield _Cut(line[:RAW_LIMIT])


def _csv_lines(text: IO[str], name: str) -> Iterator[str]:
    """The lines of ``text``; :class:`SourceError` at one past :data:`MAX_LINE`."""
    number = 0
    while True:
        line = text.readline(MAX_LINE + 1)
        number += 1
        if len(line) > MAX_LINE and not line.endswith(("\n", "\r")):
            raise SourceError(f"{name}: line {number} is longer than {MAX_LINE:,} characters")
        if not line:
            return
        yield line


@dataclass(frozen=True)
class FilesConfig:
    path: Path
    format: str | None = None
    pattern: str = "*"
    delimiter: str = ","
    encoding: str = "utf-8"

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> FilesConfig:
        """Read a ``files`` connector's configuration; :class:`ConfigError` names the key."""
        unknown = sorted(set(config) - {"path", "format", "pattern", "delimiter", "encoding"})
        if unknown:
            raise ConfigError(f"config.{unknown[0]}: not a setting of a files connector")
        fmt = optional_text(config, "format")
        if fmt is not None and fmt not in FORMATS:
            raise ConfigError(f"config.format: must be csv or jsonl, not {fmt!r}")
        delimiter = optional_text(config, "delimiter") or ","
        if len(delimiter) != 1:
            raise ConfigError("config.delimiter: must be one character")
        encoding = optional_text(config, "encoding") or "utf-8"
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"config.encoding: unknown encoding {encoding!r}") from None
        return cls(
            path=Path(required_text(config, "path")).expanduser(),
            format=fmt,
            pattern=optional_text(config, "pattern") or "*",
            delimiter=delimiter,
            encoding=encoding,
        )


@dataclass(frozen=True)
class _Cursor:
    file: str
    line: int

    @classmethod
    def parse(cls, text: str | None) -> _Cursor | None:
        if text is None:
            return None
        try:
            value = json.loads(text)
            return cls(str(value["file"]), int(value["line"]))
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"the checkpoint {text!r} is not a files connector's") from None

    def text(self) -> str:
        return json.dumps({"file": self.file, "line": self.line}, separators=(",", ":"))

    @staticmethod
    def texts(file: str) -> Callable[[int], str]:
        """``_Cursor(file, line).text()`` for each line of one file, the file's part
        encoded once: the same text, without encoding a dict a record (3 µs a record
        with the standard library's encoder, a fifth of reading one)."""
        head = json.dumps({"file": file, "line": 0}, separators=(",", ":"))[: -len("0}")]
        return lambda line: f"{head}{line:d}}}"


class FilesSource:
    """Records from a CSV or JSONL file, or from every matching file of a folder."""

    def __init__(self, config: FilesConfig) -> None:
        self.config = config

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], credentials: Mapping[str, str] | None = None
    ) -> FilesSource:
        del credentials  # files need none
        return cls(FilesConfig.parse(config))

    def files(self) -> list[Path]:
        """The files to read, in order; :class:`SourceError` if the path is unusable."""
        path = self.config.path
        if path.is_dir():
            return sorted(p for p in path.glob(self.config.pattern) if p.is_file())
        if path.is_file():
            return [path]
        if not path.exists():
            raise SourceError(f"cannot read {path}: no such file or folder")
        raise SourceError(f"cannot read {path}: not a regular file or folder")

    def format_of(self, path: Path) -> str:
        if self.config.format is not None:
            return self.config.format
        suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
        found = _SUFFIXES.get(suffixes[-1]) if suffixes else None
        if found is None:
            raise SourceError(
                f"{path.name}: cannot tell CSV from JSONL by its name; set config.format"
            )
        return found

    async def read(self, cursor: str | None) -> AsyncIterator[Record]:
        for record in self.records(cursor):
            yield record

    def records(self, cursor: str | None) -> Iterator[Record]:
        """:meth:`read` without an event loop: the files are local and read line by
        line, so a runtime may read them in another process (``hub.sync.apart``)."""
        after = _Cursor.parse(cursor)
        files = self.files()
        several = self.config.path.is_dir()
        for path in files:
            name = path.name
            if after is not None and name < after.file:
                continue
            skip = after.line if after is not None and name == after.file else 0
            prefix = f"{name} " if several else ""
            yield from self._read_file(path, skip, prefix)

    def _read_file(self, path: Path, skip: int, prefix: str) -> Iterator[Record]:
        fmt = self.format_of(path)
        try:
            with _open(path) as raw:
                if fmt == "jsonl":
                    yield from _jsonl(raw, path.name, skip, prefix, self.config.encoding)
                else:
                    encoding = _bom_aware(self.config.encoding)
                    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
                    yield from _csv(text, path.name, skip, prefix, self.config.delimiter)
        except OSError as error:
            if isinstance(error, gzip.BadGzipFile):
                raise SourceError(f"{path.name}: damaged gzip data ({error})") from None
            raise SourceError(f"cannot read {path}: {error.strerror or error}") from None
        except (EOFError, zlib.error) as error:
            raise SourceError(f"{path.name}: truncated or damaged gzip data ({error})") from None
        except UnicodeDecodeError:
            raise SourceError(
                f"{path.name}: not {self.config.encoding} text; set config.encoding"
            ) from None


def _bom_aware(encoding: str) -> str:
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


@contextmanager
def _open(path: Path) -> Iterator[IO[bytes] | gzip.GzipFile]:
    with path.open("rb") as handle:
        if handle.read(2) != _GZIP_MAGIC:
            handle.seek(0)
            yield handle
            return
        handle.seek(0)
        with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
            yield unzipped


def _jsonl(
    raw: IO[bytes] | gzip.GzipFile, name: str, skip: int, prefix: str, encoding: str
) -> Iterator[Record]:
    utf8 = codecs.lookup(encoding).name == "utf-8"
    cursor_at = _Cursor.texts(name)
    for number, line in enumerate(_jsonl_lines(raw), 1):
        if number <= skip:
            continue
        if type(line) is _Cut:
            problem = f"longer than {MAX_LINE:,} bytes"
            yield Record({"raw": _raw(line)}, f"{prefix}line {number}", cursor_at(number), problem)
            continue
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if not line.strip():
            continue
        position = f"{prefix}line {number}"
        cursor = cursor_at(number)
        try:
            value = orjson.loads(line if utf8 else line.decode(encoding))
        except (orjson.JSONDecodeError, UnicodeDecodeError) as error:
            reason = f"not valid JSON ({error})" if isinstance(error, ValueError) else str(error)
            yield Record({"raw": _raw(line)}, position, cursor, problem=reason)
            continue
        if not isinstance(value, dict):
            problem = f"a JSON {type(value).__name__}, not an object"
            yield Record({"raw": _raw(line)}, position, cursor, problem=problem)
            continue
        # orjson reads 1,024 levels but writes 254: a record deeper than that could not
        # be kept as a dead letter and failed the whole run. Counting brackets first
        # keeps the walk off the usual line.
        if line.count(b"[") + line.count(b"{") > MAX_DEPTH and _too_deep(value):
            problem = f"nests arrays and objects deeper than {MAX_DEPTH} levels"
            yield Record({"raw": _raw(line)}, position, cursor, problem=problem)
            continue
        yield Record(value, position, cursor)


def _too_deep(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_too_deep(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_too_deep(item, depth + 1) for item in value)
    return False


def _csv(text: IO[str], name: str, skip: int, prefix: str, delimiter: str) -> Iterator[Record]:
    reader = csv.reader(_csv_lines(text, name), delimiter=delimiter, strict=False)
    header: list[str] | None = None
    cursor_at = _Cursor.texts(name)
    ended = 0  # the physical line the previous row ended on
    try:
        for row in reader:
            start, ended = ended + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = _header(row, name)
                continue
            if ended <= skip:
                continue
            position = f"{prefix}line {start}"
            cursor = cursor_at(ended)
            if len(row) != len(header):
                problem = f"{len(row)} values, but the header has {len(header)} columns"
                raw = _raw(delimiter.join(row).encode())
                yield Record({"raw": raw}, position, cursor, problem=problem)
                continue
            yield Record(dict(zip(header, row, strict=True)), position, cursor)
    except csv.Error as error:  # a field past csv's limit (an unclosed quote): not ours
        raise SourceError(f"{name}: line {reader.line_num}: {error}") from None


def _header(row: list[str], name: str) -> list[str]:
    header = [cell.strip() for cell in row]
    if any(not cell for cell in header):
        raise SourceError(f"{name}: line 1, the header, has an empty column name")
    seen: set[str] = set()
    for cell in header:
        if cell in seen:
            raise SourceError(f"{name}: the header names the column {cell!r} twice")
        seen.add(cell)
    return header


def _raw(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r\n")[:RAW_LIMIT]


__all__ = ["FORMATS", "FilesConfig", "FilesSource"]
