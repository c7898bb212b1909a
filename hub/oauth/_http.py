"""Form parsing and error responses shared by the OAuth endpoints (RFC 6749 §3.2, §5.2)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_TYPE = "application/x-www-form-urlencoded"
# These endpoints answer before any client is authenticated, so their bodies are bounded
# (OWASP API4): an unbounded read let one request hold hundreds of megabytes. The largest
# legitimate form, a private_key_jwt assertion signed with a 4096-bit RSA key, is ~2 KiB.
MAX_FORM_BYTES = 64 * 1024


class FormTooLargeError(Exception):
    """The body is over :data:`MAX_FORM_BYTES`."""


async def read_body(request: Request) -> bytes:
    """The body, refused (:class:`FormTooLargeError`) once over :data:`MAX_FORM_BYTES`:
    by its declared length before reading, else while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, a description, and the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        return oauth_error(self.error, self.description, self.status)


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """RFC 6749 §5.2 error response; a 401 (``invalid_client``) carries a Basic challenge."""
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="partner-hub"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def parse_form(body: bytes) -> dict[str, str] | None:
    """RFC 6749 §3.2: parameters sent without a value are omitted; none may repeat.

    A NUL (``%00``) is refused anywhere: no OAuth parameter may hold one (RFC 6749
    Appendix A: visible ASCII), and PostgreSQL cannot compare text holding one. Percent
    escapes of invalid UTF-8 decode to U+FFFD, so no lone surrogate reaches a value."""
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form or "\x00" in name or "\x00" in value:
            return None
        if value:
            form[name] = value
    return form


async def read_form(request: Request) -> dict[str, str]:
    """The POST body as a form (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise OAuthError("invalid_request", f"the body must be {FORM_TYPE}")
    try:
        body = await read_body(request)
    except FormTooLargeError:
        raise OAuthError(
            "invalid_request", f"the body is over {MAX_FORM_BYTES} bytes", 413
        ) from None
    form = parse_form(body)
    if form is None:
        raise OAuthError(
            "invalid_request", "the body is malformed, repeats a parameter or holds a NUL"
        )
    return form
