"""Form bodies of console requests (``application/x-www-form-urlencoded``, which is what
browsers and htmx send): repeated names kept as lists, sizes bounded."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_BODY_BYTES = 2 * 1024 * 1024  # a policy document with room to spare
FORM_TYPE = "application/x-www-form-urlencoded"


class FormError(ValueError):
    """The body is not a form the console accepts; the message says why."""


@dataclass(frozen=True)
class Form:
    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, []))


async def read_form(request: Request) -> Form:
    """The request's form; an empty one for a body-less POST (htmx buttons) and for
    other media types (their handlers read them)."""
    if request.method != "POST":
        return Form()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != FORM_TYPE:
        # Not a form (the explorer's JSON): the handler reads the body; the CSRF token
        # can then only come in the header.
        return Form()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise FormError(f"the form is over {MAX_BODY_BYTES} bytes")
    if not body:
        return Form()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form is malformed") from None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise FormError("the form holds a NUL character")
        values.setdefault(name, []).append(value.replace("\r\n", "\n"))
    return Form(values)
