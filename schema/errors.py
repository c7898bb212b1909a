"""How errors leave the API: a code on every error, no suggestions, no internals."""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError

from hub.errors import ConflictError, HubError

log = logging.getLogger("hub.graphql")

# graphql-core appends suggestions ("Did you mean 'email'?") that would name fields the
# caller is not shown; they are cut from every message (CHECKLIST: property level).
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?", re.IGNORECASE)


def strip_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message).rstrip(" ;")


def format_error(error: GraphQLError, *, phase: str) -> dict[str, Any]:
    """The client-facing dict of one error. ``phase`` is ``request`` or ``execution``."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = strip_suggestions(error.message)
    if isinstance(original, HubError):
        extensions["code"] = original.code
        if isinstance(original, ConflictError) and original.current_version is not None:
            extensions["currentVersion"] = original.current_version
    elif original is not None and not isinstance(original, GraphQLError):
        log.error("unexpected error in resolver", exc_info=original)
        message = "Internal server error"
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
    elif "code" not in extensions:
        if "more than" in message and "tokens" in message:
            extensions["code"] = "MAX_TOKENS_EXCEEDED"
        elif message.startswith("Syntax Error"):
            extensions["code"] = "GRAPHQL_PARSE_FAILED"
        elif message.startswith("Variable"):
            extensions["code"] = "BAD_USER_INPUT"
        elif phase == "request":
            extensions["code"] = "GRAPHQL_VALIDATION_FAILED"
        else:
            extensions["code"] = "BAD_USER_INPUT"
    formatted = error.formatted
    result: dict[str, Any] = {"message": message}
    if "locations" in formatted:
        result["locations"] = formatted["locations"]
    if "path" in formatted:
        result["path"] = formatted["path"]
    result["extensions"] = extensions
    return result
