"""The two encoders of an event's canonical JSON (hub.audit.event_hash) agree.

Events whose details are plain JSON (``Entry.plain``, the read audit's) are hashed
through orjson when appended; verification recomputes every hash through the standard
library. The chain holds only if both write the same bytes for such details.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub import audit
from hub.access import Resource

# What Entry.plain admits: strings (any code point but lone surrogates, which a JSON
# column cannot store: UTF-8 cannot encode them), 64-bit integers, booleans, nulls, lists,
# string-keyed objects.
text = st.text(st.characters(codec="utf-8"), max_size=12)
leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | text
plain = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=25,
)


@given(st.dictionaries(text, plain, max_size=5), text, st.integers(1, 2**62))
def test_plain_details_hash_alike_through_either_encoder(
    details: dict[str, Any], actor: str, seq: int
) -> None:
    event: dict[str, Any] = {
        "seq": seq,
        "prev_hash": "f" * 64,
        "at": datetime(2026, 12, 6, 7, 0, 1, 123456, tzinfo=UTC),
        "actor": actor,
        "organization": "acme",
        "client": None,
        "action": "read",
        "target": "operation:Page",
        "details": details,
    }
    assert audit.event_hash(**event, plain_details=True) == audit.event_hash(**event)


def test_details_orjson_refuses_hash_through_the_standard_library() -> None:
    # A StrEnum key or a 65-bit integer is not plain; flagged plain by mistake, the event
    # still gets the hash verification will recompute.
    event: dict[str, Any] = {
        "seq": 1,
        "prev_hash": "0" * 64,
        "at": datetime(2026, 12, 6, tzinfo=UTC),
        "actor": "a",
        "organization": None,
        "client": None,
        "action": "read",
        "target": "t",
        "details": {Resource.CUSTOMER: [2**70]},
    }
    plain_hash = audit.event_hash(**event, plain_details=True)
    assert plain_hash == audit.event_hash(**event)
    stored = {**event, "details": {"Customer": [2**70]}}
    assert plain_hash == audit.event_hash(**stored)
