"""The measured queries, written once per server's naming, and what a reply holds.

The hub and PostGraphile name the same things differently (``customers`` /
``allCustomers``, ``feedback`` / ``feedbacksByCustomerId``, a global ``id`` / ``nodeId``),
so each query is built from a :class:`Dialect`: the same selections, page sizes and
ordering in each server's words. :func:`page_shape` counts what a reply holds and
:func:`fingerprint` extracts the rows it shows without the ids (whose encodings differ),
so that the benchmark can check that two servers answered with the same rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

# Scenario (b)/(d): a page of 50 customers with their 5 latest feedback each.
PAGE_SIZE = 50
FEEDBACK_PER_CUSTOMER = 5
# Scenario (e): three levels, customers -> feedback -> the feedback's customer. Support
# cases would make a more natural third level, but `hub demo` seeds one case per 25
# customers: a page of 20 customers would hold one or two.
NESTED_PAGE_SIZE = 20
# The customer fields every customer query selects, besides the id.
CUSTOMER_FIELDS = "name company city region country segment lifecycleStage"


@dataclass(frozen=True)
class Dialect:
    """How one server's schema names the fields the benchmark's queries use."""

    customers: str  # the root connection of customers
    customer_order: str  # arguments ordering it by name, then id ("" for the default)
    lookup: str  # the root field and argument finding one customer by global id
    id: str  # a customer's global id
    feedback: str  # a customer's feedback connection
    feedback_order: str  # arguments ordering it newest first, then by id descending
    feedback_customer: str  # a feedback's customer
    cursor_type: str  # the type of a connection's ``after`` argument


HUB = Dialect(
    customers="customers",
    customer_order="",  # the hub lists customers by name, then id, by default
    lookup="customer(id: $id)",
    id="id",
    feedback="feedback",
    feedback_order="",  # newest first, then id descending, by default
    feedback_customer="customer",
    cursor_type="String",
)
POSTGRAPHILE = Dialect(
    customers="allCustomers",
    customer_order=", orderBy: [NAME_ASC, ID_ASC]",
    lookup="customer(nodeId: $id)",
    id="nodeId",
    feedback="feedbacksByCustomerId",
    feedback_order=", orderBy: [CREATED_AT_DESC, ID_DESC]",
    feedback_customer="customerByCustomerId",
    cursor_type="Cursor",
)


def customer_query(d: Dialect) -> str:
    """(a) one customer by global id, 8 fields."""
    return f"query Customer($id: ID!) {{ {d.lookup} {{ {d.id} {CUSTOMER_FIELDS} }} }}"


def page_query(d: Dialect) -> str:
    """(b)/(d) 50 customers, 8 fields each, with their 5 latest feedback (3 fields)."""
    return (
        f"{{ {d.customers}(first: {PAGE_SIZE}{d.customer_order}) {{ edges {{ node {{ "
        f"{d.id} {CUSTOMER_FIELDS} "
        f"{d.feedback}(first: {FEEDBACK_PER_CUSTOMER}{d.feedback_order}) "
        "{ edges { node { kind text createdAt } } } } } } }"
    )


def nested_query(d: Dialect) -> str:
    """(e) 20 customers -> their 5 latest feedback -> each feedback's customer."""
    return (
        f"{{ {d.customers}(first: {NESTED_PAGE_SIZE}{d.customer_order}) {{ edges {{ node {{ "
        f"{d.id} name {d.feedback}(first: {FEEDBACK_PER_CUSTOMER}{d.feedback_order}) "
        f"{{ edges {{ node {{ kind createdAt {d.feedback_customer} {{ {d.id} name city }} }} }} }}"
        " } } } }"
    )


def ids_query(d: Dialect, first: int, *, after: bool) -> str:
    """Global ids of customers in the page order (``$after`` paging where ``after``)."""
    paging = "(first: {first}, after: $after{order})" if after else "(first: {first}{order})"
    head = f"query Ids($after: {d.cursor_type}) " if after else ""
    arguments = paging.format(first=first, order=d.customer_order)
    return (
        f"{head}{{ {d.customers}{arguments} "
        f"{{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {d.id} }} }} }} }}"
    )


class ReplyError(Exception):
    """A reply is not the shape its query asks for."""


@dataclass(frozen=True)
class PageShape:
    """What a captured reply holds (``nested_customers``: customers under feedback, (e))."""

    bytes: int
    customers: int
    customers_with_feedback: int
    feedback: int
    nested_customers: int = 0


def _data(body: bytes) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError) as error:
        raise ReplyError(f"not a GraphQL reply with data ({error!r}): {body[:300]!r}") from None
    if not isinstance(data, dict):
        raise ReplyError(f"no data in the reply: {body[:300]!r}")
    return data


def _customers(body: bytes, d: Dialect) -> list[dict[str, Any]]:
    try:
        return [edge["node"] for edge in _data(body)[d.customers]["edges"]]
    except (KeyError, TypeError) as error:
        raise ReplyError(f"not a {d.customers} page ({error!r}): {body[:300]!r}") from None


def _feedback(customer: dict[str, Any], d: Dialect) -> list[dict[str, Any]]:
    try:
        return [edge["node"] for edge in customer[d.feedback]["edges"]]
    except (KeyError, TypeError) as error:
        raise ReplyError(f"a customer without {d.feedback} edges ({error!r})") from None


def page_shape(body: bytes, d: Dialect = HUB) -> PageShape:
    """Count the customers, feedback and nested customers in a reply to a page query."""
    feedback = [_feedback(customer, d) for customer in _customers(body, d)]
    nested = sum(1 for items in feedback for item in items if item.get(d.feedback_customer))
    return PageShape(
        bytes=len(body),
        customers=len(feedback),
        customers_with_feedback=sum(1 for items in feedback if items),
        feedback=sum(len(items) for items in feedback),
        nested_customers=nested,
    )


# Fields the hub's schema types as enums (upper case names) and PostGraphile as the
# column's text (lower case).
_ENUMS = frozenset({"kind", "segment", "lifecycleStage"})


def _row(node: dict[str, Any], d: Dialect) -> tuple[Any, ...]:
    """A node's values without its id, in a form both servers agree on (:data:`_ENUMS`)."""
    values: list[Any] = []
    for key in sorted(node):
        value = node[key]
        if key == d.id:
            continue
        if key == d.feedback:
            values.append(tuple(_row(item, d) for item in _feedback(node, d)))
        elif key == d.feedback_customer:
            values.append(None if value is None else _row(value, d))
        elif key in _ENUMS and isinstance(value, str):
            values.append(value.lower())
        else:
            values.append(value)
    return tuple(values)


def fingerprint(body: bytes, d: Dialect) -> tuple[Any, ...]:
    """The rows a reply shows, ids left out: equal for the same rows in either dialect."""
    data = _data(body)
    if d.customers in data:
        return tuple(_row(node, d) for node in _customers(body, d))
    root = d.lookup.split("(")[0]
    node = data.get(root)
    if not isinstance(node, dict):
        raise ReplyError(f"no {root} in the reply: {body[:300]!r}")
    return _row(node, d)


def id_uuid(global_id: str) -> str | None:
    """The UUID inside a hub global id (base64 of ``Customer:<uuid>``) or a PostGraphile
    node id (base64 of ``["customers","<uuid>"]``), to check two servers list the same
    rows; None if it is neither."""
    standard = global_id.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    if raw.startswith("["):
        try:
            value = json.loads(raw)[-1]
        except (ValueError, IndexError, KeyError):
            return None
        return value if isinstance(value, str) else None
    return raw.partition(":")[2] or None


def compare(name: str, ours: bytes, theirs: bytes, peer: str, peer_dialect: Dialect) -> list[str]:
    """Warnings where a peer's reply to scenario ``name`` is not the hub's: other rows or
    values (ids aside), or a size more than a quarter apart."""
    warnings = []
    try:
        same = fingerprint(ours, HUB) == fingerprint(theirs, peer_dialect)
    except ReplyError as error:
        return [f"({name}) the {peer} reply cannot be compared with the hub's: {error}"]
    if not same:
        warnings.append(f"({name}) the hub and {peer} show different rows or values")
    if abs(len(ours) - len(theirs)) > 0.25 * max(len(ours), len(theirs)):
        warnings.append(
            f"({name}) the hub's reply is {len(ours)} bytes, {peer}'s {len(theirs)}:"
            " more than 25% apart"
        )
    return warnings
