"""hub.logs.JSONFormatter: one JSON object per line, whatever the fields hold."""

from __future__ import annotations

import json
import logging
import uuid

from hub.logs import JSONFormatter, request_id


def _line(**fields: object) -> dict[str, object]:
    record = logging.LogRecord("hub.http", logging.INFO, __file__, 1, "request", None, None)
    record.fields = fields
    token = request_id.set("abc")
    try:
        text = JSONFormatter().format(record)
    finally:
        request_id.reset(token)
    assert "\n" not in text
    parsed: dict[str, object] = json.loads(text)
    return parsed


def test_a_line_holds_the_message_the_request_id_and_the_fields() -> None:
    some = uuid.uuid4()
    line = _line(status=200, path="/graphql", client_id=None, who=some, ratio=0.5)
    assert line["message"] == "request" and line["request_id"] == "abc"
    assert line["level"] == "INFO" and line["logger"] == "hub.http"
    assert (line["status"], line["path"], line["client_id"], line["ratio"]) == (
        200,
        "/graphql",
        None,
        0.5,
    )
    assert line["who"] == str(some)  # what JSON cannot hold is written as text


def test_values_the_fast_encoder_refuses_still_make_a_line() -> None:
    assert _line(big=2**70)["big"] == 2**70
