"""The fast preparation of an imported feedback record (``feedback_values.plain``) gives
what the reference (``feedback_values.checked``, which validates as the API does) gives,
on every record it accepts; it accepts the usual record, and leaves every record with a
problem to the reference (which words the dead letter)."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.sync.feedback import FeedbackTarget
from hub.sync.feedback_values import checked, plain

EXAMPLES = max(200, int(os.environ.get("HUB_HYPOTHESIS_EXAMPLES", "200")) * 5)
COLUMNS = FeedbackTarget().columns

# Long values made by a function: a strategy's repr shows its sampled values.
_LONG = st.sampled_from([40, 41, 120, 121, 200, 201, 5000, 5001]).map(lambda n: "x" * n)
_TEXTY = st.one_of(
    st.sampled_from(["", " ", "  x  ", "a\x00b", "Late again", "é"]),
    _LONG,
    st.text(max_size=12),
    st.integers(-3, 12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)
_FIELDS: dict[str, Any] = {
    "customer_email": st.one_of(
        st.sampled_from(
            [
                "person0@example.com",
                " PERSON1@Example.COM ",
                "not-an-email",
                "",
                "   ",
                "a@b",
                "x@localhost",
                "ünï@exämple.com",
            ]
        ),
        st.integers(),
        st.none(),
    ),
    "customer_phone": st.one_of(
        st.sampled_from(["+14155552671", "12", "", "+33 1 23 45 67 89", "0612345678"]),
        st.integers(0, 10**12),
    ),
    "customer_external_id": st.one_of(
        st.sampled_from(["C-1", " C-2 ", "", "  ", "a\x00"]), _LONG, st.integers()
    ),
    "channel": st.one_of(st.sampled_from(["email", "chat", "fax", " email", "EMAIL"]), _TEXTY),
    "kind": st.one_of(st.sampled_from(["complaint", "praise", "bug", "nonsense"]), _TEXTY),
    "text": st.one_of(st.sampled_from(["Late again", " Broken lid ", "", "\t"]), _TEXTY),
    "scale": st.one_of(st.sampled_from(["nps", "csat", "NPS", "stars"]), _TEXTY),
    "score": st.one_of(
        st.integers(-2, 12),
        st.sampled_from([9.0, 2.5, "7", " 3 ", "x", True, None, 10**12]),
    ),
    "product": st.one_of(st.sampled_from(["Kettle", " Blender ", "", "  ", "p\x00"]), _TEXTY),
    "tags": st.one_of(
        st.sampled_from([["late", "Box"], "late;box", "a, b|c", "", ";;", ["a\x00"], [" "], 5]),
        st.lists(st.sampled_from(["a", "B", " c ", "", "a"]), max_size=22),
        st.lists(_LONG, max_size=2),
        _TEXTY,
    ),
    "visibility": st.one_of(st.sampled_from(["internal", "partners", "public!"]), _TEXTY),
    "createdAt": st.one_of(
        st.sampled_from(
            [
                "2025-03-01T10:00:00",
                " 2025-06-30T08:15:00+02:00 ",
                "2025-03-01",
                "2025-13-45",
                "2099-01-01T00:00:00",
                "yesterday",
            ]
        ),
        _TEXTY,
    ),
}
_VALID = st.fixed_dictionaries(
    {
        "customer_email": st.sampled_from(["person0@example.com", " PERSON1@Example.COM "]),
        "channel": st.sampled_from(["email", "chat", "phone"]),
        "kind": st.sampled_from(["complaint", "praise", "bug"]),
        "text": st.sampled_from(["Late again", " Broken lid ", "x" * 5000]),
    },
    optional={
        "customer_external_id": st.sampled_from(["C-1", " C-2 "]),
        "scale_score": st.sampled_from([("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5)]),
        "product": st.sampled_from(["Kettle", " Blender ", "", "p" * 120]),
        "tags": st.sampled_from([["late", "Box"], "late;box", "a, b|c", [], ["x" * 40]]),
        "visibility": st.sampled_from(["internal", "partners"]),
        "createdAt": st.sampled_from(["2025-03-01T10:00:00", "2025-06-30T08:15:00+02:00"]),
    },
)


def _unpacked(record: dict[str, Any]) -> dict[str, Any]:
    if "scale_score" in record:
        record["scale"], record["score"] = record.pop("scale_score")
    return record


# Records of any shape, and valid ones with a few fields changed or taken out.
RECORDS = st.one_of(
    st.fixed_dictionaries({}, optional=_FIELDS),
    st.tuples(
        _VALID.map(_unpacked),
        st.fixed_dictionaries({}, optional=_FIELDS).filter(lambda d: len(d) <= 2),
        st.lists(st.sampled_from(sorted(_FIELDS)), max_size=2),
    ).map(lambda t: {k: v for k, v in (t[0] | t[1]).items() if k not in t[2]}),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(RECORDS)
def test_the_fast_path_gives_what_the_reference_gives(record: dict[str, Any]) -> None:
    fast = plain(record, COLUMNS)
    reference, problems = checked(record, COLUMNS)
    if fast is not None:
        assert problems == []
        assert fast == reference
    if problems:
        assert fast is None


def test_the_usual_record_takes_the_fast_path() -> None:
    record = {
        "customer_email": "C12@EXAMPLE.COM",
        "channel": "chat",
        "kind": "complaint",
        "text": "The kettle arrived with a cracked lid.",
        "product": "Aero kettle",
        "scale": "nps",
        "score": 3,
        "tags": ["delivery", "Packaging"],
        "createdAt": "2025-02-03T10:00:00+00:00",
    }
    fast = plain(record, COLUMNS)
    assert fast is not None
    assert fast == checked(record, COLUMNS)[0]
    assert fast["customer_email"] == "C12@example.com"
    assert fast["tags"] == ["delivery", "packaging"]
    assert plain({**record, "customer_email": "nobody"}, COLUMNS) is None
    assert checked({**record, "customer_email": "nobody"}, COLUMNS)[1]
