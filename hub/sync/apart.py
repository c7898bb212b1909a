"""A run's records read and prepared in a child process, while the run's own process
stores the batches before (docs/sync.md, "Fourth round").

Reading, mapping, validating a record and its digest cost the hub about a third of its
CPU per new record; storing a batch (the lookups, rows, ``COPY``, audit event and
outbox) the rest. On a machine with a core to spare, the two overlap: a child forked at
the start of the run reads the source from the checkpoint, prepares each record exactly
as the runner does in-process (:meth:`hub.sync.runner.Runner._prepare`: the same
mapping, target and digest, inherited by the fork), and sends the batches down a pipe;
the run's process only decodes them and stores them, as before, in order, with the
checkpoint in each batch's transaction. Nothing about what is stored changes: the
child's batches are the batches the runner would have made, item for item.

Only for sources that read local storage synchronously (:class:`LocalSource`: files):
the child uses no network, no credentials, no database and no event loop. A batch is
encoded with :mod:`marshal` (prepared values are plain: text, numbers, lists; a time is
sent as its ISO 8601 text and made again, equal and in the same zone), and with
:mod:`pickle` when a value is not plain. The pipe holds the child back when the run's
process is behind (a few batches read ahead at most: memory stays flat); a run's
process killed leaves the child writing to a closed pipe, and it ends there.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import pickle
import signal
import struct
import sys
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from connectors import Record, SourceError, TransientSourceError
from hub.bulk import TURN_EVERY, take_turn
from hub.sync.target import Item

# A message: its kind (one byte), its length, then its bytes.
_MARSHAL, _PICKLE, _DONE, _SOURCE, _TRANSIENT, _FAILED = b"MPDSTF"
_HEADER = struct.Struct("<BI")
_VERSION = 4  # marshal's format version (both ends run the same interpreter)


@runtime_checkable
class LocalSource(Protocol):
    """A source that reads local storage synchronously, with no network, credentials
    or event loop: it may be read by a child process (the ``files`` kind)."""

    def records(self, cursor: str | None) -> Iterator[Record]:
        """The records after ``cursor``, in order (as ``read`` yields them)."""
        ...


Prepare = Callable[[Record], Item | str]
Batch = tuple[list[Record], list[Item | str]]


class RawData(Mapping[str, Any]):
    """A record's data kept as the JSON text of its dead letter (what :func:`hub.sync.
    letters.raw_record` writes), parsed only if read: the run's process needs the data
    of a record only to dead-letter it."""

    __slots__ = ("_parsed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed: dict[str, Any] | None = None

    def _data(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = orjson.loads(self.text)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())


async def batches_apart(
    source: LocalSource, cursor: str | None, batch_size: int, prepare: Prepare
) -> AsyncGenerator[Batch, None]:
    """The batches of ``source`` after ``cursor``, each with its records prepared by
    ``prepare``, read and prepared in a child process. Raises what the source raised
    (:class:`SourceError`, :class:`TransientSourceError`) after the batch read before it,
    as the runner's own reading does."""
    loop = asyncio.get_running_loop()
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(write_end, source, cursor, batch_size, prepare)
    os.close(write_end)
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", buffering=0)
    )
    ended = False
    try:
        while True:
            try:
                kind, size = _HEADER.unpack(await reader.readexactly(_HEADER.size))
                payload = await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise SourceError("the process reading the source ended unexpectedly") from None
            if kind == _MARSHAL:
                yield await _decode(marshal.loads(payload))  # noqa: S302 — our child's bytes
            elif kind == _PICKLE:
                yield await _decode(pickle.loads(payload))  # noqa: S301 — our child's bytes
            elif kind == _DONE:
                ended = True
                return
            elif kind == _TRANSIENT:
                ended = True
                raise TransientSourceError(payload.decode())
            elif kind == _SOURCE:
                ended = True
                raise SourceError(payload.decode())
            else:
                ended = True
                raise RuntimeError(f"reading the source failed: {payload.decode()}")
    finally:
        transport.close()
        if not ended:  # the run stopped early: the child need not read on
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await _reaped(pid)


async def _reaped(pid: int) -> None:
    """Wait for the child to end (it does once its pipe is closed or its work done)."""
    delay = 0.001
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 — never blocks
        except ChildProcessError:
            return
        if done:
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _decode(encoded: list[tuple[Any, ...]]) -> Batch:
    records: list[Record] = []
    prepared: list[Item | str] = []
    for n, entry in enumerate(encoded, start=1):
        if not n % TURN_EVERY:
            await take_turn()
        if len(entry) == 4:
            position, cursor, raw, reason = entry
            records.append(Record(RawData(raw), position, cursor))
            prepared.append(reason)
            continue
        position, cursor, raw, external_id, values, digest, times = entry
        for name in times:
            values[name] = datetime.fromisoformat(values[name])
        records.append(Record(RawData(raw), position, cursor))
        prepared.append(Item(external_id, values, digest))
    return records, prepared


def _encode(records: list[Record], prepare: Prepare) -> list[tuple[Any, ...]]:
    encoded: list[tuple[Any, ...]] = []
    dumps = orjson.dumps
    for record in records:
        data = record.data
        # What raw_record writes of it, made here: the data itself is not sent.
        raw = dumps(data if type(data) is dict else dict(data), default=str).decode()
        item = prepare(record)
        if isinstance(item, str):
            encoded.append((record.position, record.cursor, raw, item))
            continue
        values = item.values
        times = tuple(name for name, value in values.items() if type(value) is datetime)
        if times:
            values = dict(values)
            for name in times:
                values[name] = values[name].isoformat()
        encoded.append(
            (record.position, record.cursor, raw, item.external_id, values, item.digest, times)
        )
    return encoded


def _child(
    out: int, source: LocalSource, cursor: str | None, batch_size: int, prepare: Prepare
) -> None:
    """Read, prepare and send every batch, then end the process (never returns)."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process decides
        batch: list[Record] = []
        try:
            for record in source.records(cursor):
                batch.append(record)
                if len(batch) >= batch_size:
                    _send_batch(out, batch, prepare)
                    batch = []
        except SourceError as failure:
            if batch:
                _send_batch(out, batch, prepare)
            kind = _TRANSIENT if isinstance(failure, TransientSourceError) else _SOURCE
            _send(out, kind, str(failure).encode())
            return
        if batch:
            _send_batch(out, batch, prepare)
        _send(out, _DONE, b"")
    except BrokenPipeError:
        code = 1  # the run's process is gone
    except BaseException as failure:  # noqa: BLE001 — reported; the run's process fails the run
        code = 1
        with contextlib.suppress(Exception):
            _send(out, _FAILED, f"{type(failure).__name__}: {failure}"[:2000].encode())
    finally:
        os._exit(code)


def _send_batch(out: int, batch: list[Record], prepare: Prepare) -> None:
    encoded = _encode(batch, prepare)
    try:
        payload, kind = marshal.dumps(encoded, _VERSION), _MARSHAL
    except ValueError:  # a value marshal does not take (not plain): pickled
        payload, kind = pickle.dumps(encoded, pickle.HIGHEST_PROTOCOL), _PICKLE
    _send(out, kind, payload)


def _send(out: int, kind: int, payload: bytes) -> None:
    data = memoryview(_HEADER.pack(kind, len(payload)) + payload)
    while data:
        written = os.write(out, data)
        data = data[written:]


__all__ = ["LocalSource", "RawData", "batches_apart"]
