"""Input validation shared by every write: collects problems per input field."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from hub.errors import FieldProblem, InvalidInputError

_MONEY_LIMIT = Decimal("1e12")
COUNTRIES = frozenset(code for code in phonenumbers.SUPPORTED_REGIONS if code.isalpha())


class Problems:
    """Accumulates :class:`FieldProblem` for one input; :meth:`raise_any` ends validation."""

    def __init__(self, root: str = "input") -> None:
        self.root = root
        self.items: list[FieldProblem] = []

    def add(self, field: str, message: str, code: str = "INVALID") -> None:
        self.items.append(FieldProblem((self.root, field), message, code))

    def raise_any(self) -> None:
        if self.items:
            raise InvalidInputError(self.items)

    def text(
        self, field: str, value: str | None, *, max_length: int, required: bool = False
    ) -> str | None:
        """Strip; refuse empty when required, and values longer than ``max_length``."""
        if value is None:
            if required:
                self.add(field, "is required", "REQUIRED")
            return None
        cleaned = value.strip()
        if not cleaned:
            if required:
                self.add(field, "must not be empty", "REQUIRED")
            return None
        if len(cleaned) > max_length:
            self.add(field, f"must be at most {max_length} characters", "TOO_LONG")
            return None
        return cleaned

    def choice(
        self, field: str, value: str | None, allowed: Collection[str], *, required: bool = False
    ) -> str | None:
        if value is None:
            if required:
                self.add(field, "is required", "REQUIRED")
            return None
        if value not in allowed:
            self.add(field, f"must be one of {', '.join(sorted(allowed))}", "NOT_ALLOWED")
            return None
        return value

    def email(self, field: str, value: str | None) -> str | None:
        """Normalised address (domain lower-cased) or ``None`` with a problem recorded."""
        if value is None or not value.strip():
            return None
        try:
            result = validate_email(value.strip(), check_deliverability=False)
        except EmailNotValidError as error:
            self.add(field, f"is not a valid email address: {error}", "INVALID_EMAIL")
            return None
        return result.normalized

    def phone(self, field: str, value: str | None, *, country: str | None) -> str | None:
        """The number in E.164; national formats are read in ``country``'s numbering plan."""
        if value is None or not value.strip():
            return None
        try:
            parsed = phonenumbers.parse(value, country)
        except phonenumbers.NumberParseException:
            self.add(field, "is not a phone number (use +<country code><number>)", "INVALID_PHONE")
            return None
        if not phonenumbers.is_valid_number(parsed):
            self.add(field, "is not a valid phone number", "INVALID_PHONE")
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def country(self, field: str, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        code = value.strip().upper()
        if code not in COUNTRIES:
            self.add(field, "must be an ISO 3166-1 alpha-2 country code", "INVALID_COUNTRY")
            return None
        return code

    def currency(self, field: str, value: str) -> str | None:
        code = value.strip().upper()
        if len(code) != 3 or not code.isalpha():
            self.add(field, "must be an ISO 4217 currency code such as EUR", "INVALID_CURRENCY")
            return None
        return code

    def money(self, field: str, value: Decimal | None, *, minimum: Decimal) -> Decimal | None:
        if value is None:
            return None
        try:
            amount = Decimal(value)
        except (InvalidOperation, ValueError):
            self.add(field, "is not an amount", "INVALID")
            return None
        if not amount.is_finite():
            self.add(field, "is not an amount", "INVALID")
            return None
        # Range first: rounding a huge value overflows, and -0.001 must not become -0.00.
        if amount < minimum or amount >= _MONEY_LIMIT:
            self.add(field, f"must be at least {minimum} and below 10^12", "OUT_OF_RANGE")
            return None
        rounded = amount.quantize(Decimal("0.01"))
        if rounded >= _MONEY_LIMIT:
            self.add(field, f"must be at least {minimum} and below 10^12", "OUT_OF_RANGE")
            return None
        return rounded

    def integer(self, field: str, value: int | None, *, low: int, high: int) -> int | None:
        if value is None:
            return None
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}", "OUT_OF_RANGE")
            return None
        return value
