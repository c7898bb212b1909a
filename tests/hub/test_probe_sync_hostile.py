"""Hostile records from a file and from a JSON API end as dead letters (or, for a body
that is not JSON, a run failed saying so), never as a run failed on an unexpected
error: records nested deeper than can be stored, lone surrogates, NUL characters."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hub.db import Database
from hub.netguard import NetPolicy
from hub.sync.config import parse_spec, save_connector
from tests.hub.sync_helpers import (
    customers,
    dead_letters,
    feedback_count,
    import_file,
    runner,
    support_org,
)

LOOPBACK = NetPolicy(allow_loopback=True)


def ticket(external_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "customer_email": "person0@example.com",
        "channel": "email",
        "kind": "praise",
        "text": "Thanks",
        **extra,
    }


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("apart", [True, False])
async def test_a_jsonl_record_nested_too_deep_is_a_dead_letter(
    db: Database, tmp_path: Path, apart: bool
) -> None:
    await support_org(db)
    await customers(db, 1)
    # 300 levels: orjson reads up to 1,024 but writes at most 254, so the record's dead
    # letter (its raw JSON) could not be made and the whole run failed on a TypeError.
    deep = json.dumps(ticket("t2"))[:-1] + f', "tags": {nested(300)}}}'
    path = tmp_path / "desk.jsonl"
    path.write_text(f"{json.dumps(ticket('t1'))}\n{deep}\n{json.dumps(ticket('t3'))}\n")
    name = await import_file(db, path)
    report = await runner(db, apart=apart).run(name)
    assert report.status == "succeeded", report.error
    assert (report.counts.created, report.counts.dead_lettered) == (2, 1)
    (letter,) = await dead_letters(db)
    assert letter.position == "line 2"
    assert "deeper than 32 levels" in letter.reason


async def test_an_external_id_holding_a_nul_is_a_dead_letter(db: Database, tmp_path: Path) -> None:
    await support_org(db)
    await customers(db, 1)
    path = tmp_path / "desk.jsonl"
    # PostgreSQL text cannot hold NUL: the run failed on the database's refusal.
    lines = [json.dumps(ticket("a\x00b")), json.dumps(ticket("t2"))]
    path.write_text("\n".join(lines) + "\n")
    name = await import_file(db, path)
    report = await runner(db).run(name)
    assert report.status == "succeeded", report.error
    assert (report.counts.created, report.counts.dead_lettered) == (1, 1)
    (letter,) = await dead_letters(db)
    assert (letter.position, letter.reason) == (
        "line 1",
        "external_id: must not contain NUL characters",
    )


@pytest.fixture
def api() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A JSON API on 127.0.0.1 answering each path with the bytes a test sets (the
    stdlib's server: it sends what it is given, lone surrogates escaped and all)."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0], b"[]")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


async def define_http(db: Database, url: str) -> None:
    definition = {
        "name": "desk-api",
        "kind": "http",
        "resource": "feedback",
        "organization": "support",
        "config": {"url": url, "pagination": {"type": "none"}, "retry": {"attempts": 1}},
    }
    async with db.transaction() as session:
        await save_connector(session, parse_spec(definition))


async def test_api_items_that_cannot_be_stored_are_dead_letters(
    db: Database, api: tuple[str, dict[str, bytes]]
) -> None:
    await support_org(db)
    await customers(db, 1)
    base, pages = api
    good = json.dumps(ticket("t1"))
    items = [
        good,
        json.dumps(ticket("t2"))[:-1] + f', "tags": {nested(300)}}}',
        json.dumps(ticket("t3", text="a\ud800b")),  # json.dumps escapes: "a\\ud800b"
        json.dumps(ticket("t4\udc00")),
        json.dumps(ticket("t5", **{"\ud800": "x"})),
        json.dumps("\ud800"),  # not an object, and its raw text a lone surrogate
    ]
    pages["/tickets"] = ("[" + ",".join(items) + "]").encode()
    await define_http(db, f"{base}/tickets")
    report = await runner(db, net_policy=LOOPBACK).run("desk-api")
    assert report.status == "succeeded", report.error
    assert (report.counts.read, report.counts.created, report.counts.dead_lettered) == (6, 1, 5)
    assert await feedback_count(db) == 1
    reasons = {letter.position: letter.reason for letter in await dead_letters(db)}
    assert reasons == {
        "first page item 2": "first page item 2 nests arrays and objects deeper than 32 levels",
        "first page item 3": "first page item 3 holds a lone surrogate (\\ud800-\\udfff)",
        "first page item 4": "first page item 4 holds a lone surrogate (\\ud800-\\udfff)",
        "first page item 5": "first page item 5 holds a lone surrogate (\\ud800-\\udfff)",
        "first page item 6": "first page item 6 is not a JSON object",
    }


async def test_an_api_body_nested_past_the_parser_is_not_json(
    db: Database, api: tuple[str, dict[str, bytes]]
) -> None:
    await support_org(db)
    base, pages = api
    pages["/tickets"] = nested(5000).encode()  # the stdlib parser's RecursionError
    await define_http(db, f"{base}/tickets")
    report = await runner(db, net_policy=LOOPBACK).run("desk-api")
    assert report.status == "failed"
    assert report.error == f"{base}/tickets: the answer is not JSON"
