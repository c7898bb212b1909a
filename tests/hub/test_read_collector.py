"""The read collector's event against a plain model of it (pure, no database).

The collector keeps what a request received grouped as the event lists it (per resource,
per set of fields), regrouping a record noted again with more fields or whose remote field
is taken back; the event must be what a record-by-record account of the same calls gives.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub import disclosures
from hub.models import OrgKind
from hub.principal import Principal

WHO = Principal(
    client_id="acme-client",
    organization_id=uuid.uuid4(),
    organization_slug="acme",
    organization_kind=OrgKind.DISTRIBUTOR,
)
IDS = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(6)]
FIELDS = ["id", "name", "email", "loyaltyTier"]

note = st.tuples(
    st.just("note"),
    st.sampled_from(["Customer", "Feedback"]),
    st.sampled_from(IDS),  # the record
    st.sampled_from(IDS),  # the customer it is about (feedback)
    st.frozensets(st.sampled_from(FIELDS), min_size=1),
    st.one_of(st.none(), st.integers(1, 4)),
)
forget = st.tuples(
    st.just("forget"),
    st.sampled_from(["Customer", "Feedback"]),
    st.sampled_from(IDS),
    st.sampled_from(FIELDS),
)


def model(calls: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The event's customers, version and disclosed groups, worked out record by record."""
    seen: dict[tuple[str, str], list[Any]] = {}  # (resource, id) -> [customer, fields]
    versions: set[int] = set()
    for call in calls:
        if call[0] == "note":
            _, resource, record, about, fields, version = call
            customer = record if resource == "Customer" else about
            if version is not None:
                versions.add(version)
            if (resource, record) in seen:
                seen[resource, record][1] = seen[resource, record][1] | fields
            else:
                seen[resource, record] = [customer, fields]
        else:
            _, resource, record, name = call
            if (resource, record) in seen:
                seen[resource, record][1] = seen[resource, record][1] - {name}
    disclosed: dict[str, list[dict[str, Any]]] = {}
    for resource in sorted({resource for resource, _ in seen}):
        groups: dict[frozenset[str], list[str]] = {}
        for (res, record), (_, fields) in sorted(seen.items()):
            if res == resource:
                groups.setdefault(fields, []).append(record)
        listed = []
        for fields, ids in sorted(groups.items(), key=lambda item: item[1][0]):
            group: dict[str, Any] = {"fields": sorted(fields), "ids": ids}
            if resource != "Customer":
                group["customers"] = [seen[resource, record][0] for record in ids]
            listed.append(group)
        disclosed[resource] = listed
    return {
        "customers": sorted({customer for customer, _ in seen.values()}),
        "policy_version": max(versions) if versions else None,
        "disclosed": disclosed,
    }


@given(st.lists(st.one_of(note, note, forget), min_size=1, max_size=30))
def test_the_event_is_what_the_calls_disclosed_record_by_record(
    calls: list[tuple[Any, ...]],
) -> None:
    reads = disclosures.ReadCollector(WHO, None, "h")
    for call in calls:
        if call[0] == "note":
            _, resource, record, about, fields, version = call
            customer = record if resource == "Customer" else about
            reads.note_fields(resource, version, record, customer, fields)
        else:
            _, resource, record, name = call
            reads.forget_field(resource, record, name)
    details = reads.entry().details
    expected = model(calls)
    assert {key: details[key] for key in expected} == expected
    assert [str(c) for c in reads.customer_ids] == expected["customers"]
