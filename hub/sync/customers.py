"""Customers from another system: each record is an upsert by identity resolution
(:func:`hub.identity.upsert_customer`: the record's external id as a reference in the
organization's namespace, then email, then phone), under source precedence: fields a
higher-precedence source set become proposed changes (``queued``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import Resource
from hub.customers import CleanFields, CustomerFields
from hub.errors import HubError, InvalidInputError
from hub.identity import Reference, upsert_customer
from hub.sync.target import EXTERNAL_ID, Context, Item, Outcome, Stored, explain, input_names

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


class CustomerTarget:
    resource = Resource.CUSTOMER
    # Two batches could match or create the same person (by email or phone) at once:
    # one batch at a time.
    overlaps = False

    def __init__(self) -> None:
        self.columns = input_names(Resource.CUSTOMER, "CustomerInput")
        self.fields = frozenset({*self.columns, EXTERNAL_ID})

    def prepare(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        problems: list[str] = []
        given: dict[str, Any] = {}
        for name, value in values.items():
            column = self.columns.get(name)
            if column is None:
                continue
            given[column] = _typed(name, column, value, problems)
        if problems:
            return {}, problems
        form = CleanFields(CustomerFields(**given), creating=True, root="input")
        try:
            form.given()
        except InvalidInputError as error:
            return {}, [explain(error)]
        return dict(form.values), []

    async def store(
        self, session: AsyncSession, run: Context, items: Sequence[Item]
    ) -> list[Stored]:
        results: list[Stored] = []
        for item in items:
            try:
                async with session.begin_nested():
                    done = await upsert_customer(
                        session,
                        run.principal,
                        CustomerFields(**item.values),
                        reference=Reference(item.external_id),
                        source=run.source,
                    )
            except HubError as error:
                results.append(Stored(None, reason=explain(error)))
                continue
            results.append(Stored(Outcome(done.write.outcome), done.write.customer_id))
        return results


def _typed(name: str, column: str, value: Any, problems: list[str]) -> Any:
    """Text from a CSV file as the type the field takes (JSON values pass as they are)."""
    if column.startswith("consent_") and column != "consent_source":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        problems.append(f"{name}: must be true or false")
        return None
    if column == "lifetime_value":
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            problems.append(f"{name}: {str(value)[:40]!r} is not a number")
            return None
    if column == "traits":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                problems.append(f"{name}: must be a JSON object")
                return None
        if not isinstance(value, dict):
            problems.append(f"{name}: must be a JSON object")
            return None
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        problems.append(f"{name}: must be text")
        return None
    return value


__all__ = ["CustomerTarget"]
