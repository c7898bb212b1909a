"""Opaque Relay global IDs: base64url of ``Type:uuid``."""

from __future__ import annotations

import base64
import binascii
import uuid

from hub.access.registry import NODES

NODE_TYPES = frozenset(NODES)
"""The type names global ids may carry: the registry's nodes."""


def to_global_id(type_name: str, value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{value}".encode()).decode().rstrip("=")


NO_CUSTOMER = uuid.UUID(int=0)
"""What a filter's customer ID that names no customer becomes: it matches nothing."""


def customer_filter(value: object | None) -> uuid.UUID | None:
    """A list filter's ``customerId``: ``None`` when not given; an ID that is not a
    customer's matches nothing, like an unknown one."""
    if value is None:
        return None
    return expect_id(str(value), "Customer") or NO_CUSTOMER


def customer_reference(customer_id: object, masked: object = None) -> str | None:
    """What ``customerRef`` answers for a record about a customer: the pseudonym (or other
    mask) a policy puts in its place, else the customer's global id."""
    ref = customer_id if masked is None else masked
    if isinstance(ref, uuid.UUID):
        return to_global_id("Customer", ref)
    return None if ref is None else str(ref)


def from_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """``(type, uuid)``, or ``None`` for anything that is not one of our node IDs."""
    parsed = _decode(global_id)
    return parsed if parsed is not None and parsed[0] in NODE_TYPES else None


def expect_id(global_id: str, type_name: str) -> uuid.UUID | None:
    parsed = from_global_id(global_id) if type_name in NODE_TYPES else _decode(global_id)
    if parsed is None or parsed[0] != type_name:
        return None
    return parsed[1]


def _decode(global_id: str) -> tuple[str, uuid.UUID] | None:
    """Any ``Type:uuid`` id, for types that are not nodes (e.g. ``ProposedChange``)."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return type_name, uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
