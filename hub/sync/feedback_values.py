"""A feedback record's values from another system, typed and validated as the API
validates a submission (:func:`hub.feedback.clean_submission`), with the customer key
normalised as identity resolution does.

Two paths give the same answer. :func:`checked` is the reference: it coerces each field
(numbers given as text, tags as ``a;b``), builds a :class:`~hub.feedback.FeedbackSubmission`
and runs ``clean_submission`` on it, whose problems become the record's dead-letter
reason. :func:`plain` is the fast path an import takes for nearly every record: one pass
over the record with the checks precompiled (the allowed channels, kinds and scales as
sets, the lengths), accepting only records that need no coercion and break no rule, and
answering ``None`` for anything else, which then goes through :func:`checked`. A record's
problems are therefore always worded by the reference, and a property test holds the two
equal on the records :func:`plain` accepts.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hub.errors import InvalidInputError
from hub.feedback import FeedbackSubmission, clean_submission
from hub.models._types import utcnow
from hub.models.activity import CHANNELS, FEEDBACK_KINDS, SCALES, VISIBILITIES
from hub.sync.target import explain
from hub.validation import Problems

CUSTOMER_KEYS = ("customer_external_id", "customer_email", "customer_phone")
CREATED_AT = "createdAt"
TEXT_FIELDS = ("channel", "kind", "scale", "text", "product", "visibility")
_PLACEHOLDER = uuid.UUID(int=0)  # validation runs before the customer is known

# The limits clean_submission applies (hub.feedback), as sets and numbers for one pass.
_CHANNELS = frozenset(CHANNELS)
_KINDS = frozenset(FEEDBACK_KINDS)
_VISIBILITIES = frozenset(VISIBILITIES)
_MAX_TEXT = 5000
_MAX_PRODUCT = 120
_MAX_TAGS = 20
_MAX_TAG = 40
_MAX_KEY = 200
_TAG_SEPARATORS = re.compile(r"[;,|]")
CONTACT_CACHE = 32768
"""Addresses and numbers normalised, kept (bounded): a customer's address recurs across
their feedback, and checking one costs more than the rest of a record's preparation. Sized
for tens of thousands of customers, each address in a few spellings (case varies)."""


_seen_now = [utcnow()]
"""The latest moment :func:`plain` read from the clock."""


def plain(values: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any] | None:
    """The prepared values of a record that needs no coercion and breaks no rule (its
    customer key, the columns of ``columns`` by input name, ``createdAt``), as
    :func:`checked` would give them; ``None`` for any other record (:func:`checked`
    then decides, and words the problems)."""
    prepared: dict[str, Any] = {}
    ref = values.get("customer_external_id")
    if ref is not None:
        if type(ref) is not str:
            return None
        ref = ref.strip()
        if not ref or len(ref) > _MAX_KEY or "\x00" in ref:
            return None
        prepared["customer_external_id"] = ref
    for name in ("customer_email", "customer_phone"):
        value = values.get(name)
        if value is not None:
            if type(value) is not str:
                return None
            normal, problem = contact(name, value)
            if problem is not None:
                return None
            if normal is not None:
                prepared[name] = normal
    if not prepared:
        return None  # no customer key: checked() says so
    given = {columns[name]: value for name, value in values.items() if name in columns}
    for name in TEXT_FIELDS:
        if name in given and type(given[name]) is not str:
            return None  # a number given as text is coerced by checked(), None refused
    channel = given.get("channel")
    kind = given.get("kind")
    if channel not in _CHANNELS or kind not in _KINDS:
        return None
    text = given.get("text")
    if text is None or "\x00" in text:
        return None
    text = text.strip()
    if not text or len(text) > _MAX_TEXT:
        return None
    scale = given.get("scale")
    score = given.get("score")
    if scale is None:
        if score is not None:
            return None
    else:
        bounds = SCALES.get(scale)
        if bounds is None or type(score) is not int or not bounds[0] <= score <= bounds[1]:
            return None
    product = given.get("product")
    if product is not None:
        if "\x00" in product:
            return None
        product = product.strip() or None
        if product is not None and len(product) > _MAX_PRODUCT:
            return None
    raw_tags = given.get("tags")
    if raw_tags is None:
        tags: list[str] = []
    else:
        if type(raw_tags) is str:
            pieces = [t for t in _TAG_SEPARATORS.split(raw_tags) if t.strip()]
        elif type(raw_tags) is list and all(type(t) is str for t in raw_tags):
            pieces = raw_tags
        else:
            return None
        tags = [t.strip().lower() for t in pieces if t.strip()]
        if (
            len(tags) > _MAX_TAGS
            or any(len(t) > _MAX_TAG for t in tags)
            or any("\x00" in t for t in pieces)
        ):
            return None
    visibility = given.get("visibility", "internal")
    if visibility not in _VISIBILITIES:
        return None
    created_at = values.get(CREATED_AT)
    if created_at is not None:
        if type(created_at) is not str:
            return None
        try:
            created_at = datetime.fromisoformat(created_at.strip())
        except ValueError:
            return None
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        if created_at > _seen_now[0]:
            # Later than a moment already past: ask the clock (a record's time is nearly
            # always long past, and reading the clock a record costs more than the rest
            # of this check; the moment kept is never later than now, so nothing in the
            # future passes).
            _seen_now[0] = utcnow()
            if created_at > _seen_now[0]:
                return None
    prepared |= {
        "channel": channel,
        "kind": kind,
        "scale": scale,
        "score": score,
        "text": text,
        "product": product,
        "tags": sorted(set(tags)),
        "visibility": visibility,
    }
    if created_at is not None:
        prepared["created_at"] = created_at
    return prepared


def checked(
    values: Mapping[str, Any], columns: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """The reference preparation: typed, validated values, or the problems (``field:
    why``) with the API's wording (``clean_submission``'s)."""
    problems: list[str] = []
    keys = _customer_keys(values, problems)
    given = {columns[name]: value for name, value in values.items() if name in columns}
    for name in TEXT_FIELDS:
        if name in given and not isinstance(given[name], str):
            if isinstance(given[name], int | float) and not isinstance(given[name], bool):
                given[name] = str(given[name])
            else:
                problems.append(f"{name}: must be text")
                given.pop(name)
    score = _whole_number(given.get("score"), problems)
    tags = _tags(given.get("tags"), problems)
    created_at = _time(values.get(CREATED_AT), problems)
    # Validated here, so the database refusing a batch stays exceptional (PostgreSQL
    # stores no NUL in text; SQLite would).
    for name in ("text", "product"):
        if isinstance(given.get(name), str) and "\x00" in given[name]:
            problems.append(f"{name}: must not contain NUL characters")
    if any("\x00" in tag for tag in tags):
        problems.append("tags: must not contain NUL characters")
    if problems:
        return {}, problems
    submission = FeedbackSubmission(
        customer_id=_PLACEHOLDER,
        channel=given.get("channel", ""),
        kind=given.get("kind", ""),
        text=given.get("text", ""),
        scale=given.get("scale"),
        score=score,
        product=given.get("product"),
        tags=tags,
        visibility=given.get("visibility", "internal"),
        created_at=created_at,
    )
    try:
        clean = clean_submission(submission)
    except InvalidInputError as error:
        return {}, [explain(error)]
    prepared = {k: v for k, v in clean.values.items() if k not in ("customer_id", "external_ref")}
    if created_at is not None:
        prepared["created_at"] = created_at
    return {**keys, **prepared}, []


def _customer_keys(values: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    ref = values.get("customer_external_id")
    if ref is not None:
        ref = str(ref).strip()
        if not ref or len(ref) > _MAX_KEY or "\x00" in ref:
            problems.append("customer_external_id: must be 1 to 200 characters")
        else:
            keys["customer_external_id"] = ref
    for name in ("customer_email", "customer_phone"):
        value = values.get(name)
        if value is not None:
            keys[name], problem = contact(name, str(value))
            if problem is not None:
                problems.append(problem)
    if not any(keys.values()) and not problems:
        problems.append("customer: give customer_external_id, customer_email or customer_phone")
    return {k: v for k, v in keys.items() if v is not None}


@functools.lru_cache(maxsize=CONTACT_CACHE)
def contact(name: str, value: str) -> tuple[str | None, str | None]:
    """An email address or phone number normalised as identity resolution does, or the
    problem (cached: :data:`CONTACT_CACHE`)."""
    p = Problems("record")
    if name == "customer_email":
        normal = p.email(name, value)
    else:
        normal = p.phone(name, value, country=None)
    problem = next((f"{item.path[-1]}: {item.message}" for item in p.items), None)
    return normal, problem


def _whole_number(value: Any, problems: list[str]) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    problems.append(f"score: {str(value)[:40]!r} is not a whole number")
    return None


def _tags(value: Any, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [t for t in _TAG_SEPARATORS.split(value) if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return value
    problems.append("tags: must be a list of text, or text separated by ; or ,")
    return []


def _time(value: Any, problems: list[str]) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)
    problems.append(f"{CREATED_AT}: {str(value)[:40]!r} is not an ISO 8601 date and time")
    return None


__all__ = ["CONTACT_CACHE", "CREATED_AT", "CUSTOMER_KEYS", "checked", "contact", "plain"]
