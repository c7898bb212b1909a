"""GraphQL over HTTP (the GraphQL-over-HTTP spec): content negotiation, status codes,
GET for queries only, body and document size limits, bearer authentication required.
The request's JSON is bounded and checked by :mod:`schema.input_guard` before anything
else reads it."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from hub.console.graphiql import graphiql_page
from hub.cost_budget import OverBudgetError
from hub.db import count_statements
from hub.metrics import note_outcome, note_path
from hub.oauth.bearer import PrincipalUser, unauthorized
from hub.outage import unavailable_dependency
from hub.runtime import Runtime
from schema import HubSchema
from schema.compiled import RESOLVERS, CompiledReads
from schema.context import Context
from schema.errors import format_error
from schema.input_guard import CODE as BAD_USER_INPUT
from schema.input_guard import InputRefused, check_json, load_json
from schema.limits import operation_cost, parsed
from schema.visibility import AudienceSchemas
from schema.withheld import withheld_paths

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class RequestError(Exception):
    """The HTTP request is not a GraphQL request we accept; ``status`` says why."""

    def __init__(
        self, status: int, message: str, code: str = "BAD_REQUEST", field: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field

    @classmethod
    def refused(cls, error: InputRefused) -> RequestError:
        """A 400 naming the refused input (``extensions.field``, as a user error's)."""
        return cls(400, str(error), BAD_USER_INPUT, error.field or None)


@lru_cache(maxsize=64)  # clients send the same few Accept headers again and again
def _negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or ``None`` if none fits."""
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(accept.split(",")):
        media, *params = (item.strip() for item in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE:
            chosen = GRAPHQL_RESPONSE
        elif media in (JSON, "*/*", "application/*"):
            chosen = JSON
        else:
            continue
        if quality > 0 and (best is None or (quality, -index) > (best[0], best[1])):
            best = (quality, -index, chosen)
    return None if best is None else best[2]


def _json_param(value: Any, name: str, *, max_depth: int | None) -> dict[str, Any] | None:
    """``variables`` or ``extensions``: a JSON object, or JSON text of one (in a query
    string: then ``max_depth`` bounds it, one level counted for the absent body object)."""
    if value is None:
        return None
    if max_depth is not None:
        try:
            value = load_json(value, max_depth=max_depth - 1, root=(name,))
            check_json(value, (name,))
        except InputRefused as error:
            raise RequestError.refused(error) from None
        except json.JSONDecodeError:
            raise RequestError(400, f"{name} is not valid JSON") from None
        if value is None:
            return None
    if not isinstance(value, dict):
        raise RequestError(400, f"{name} must be a JSON object")
    return value


def _raise_outage(errors: list[GraphQLError] | None) -> None:
    """A resolver that could not reach the database fails the whole request: the outage
    middleware (:mod:`hub.outage`) answers 503 with ``Retry-After``, rather than a partial
    answer carrying "Internal server error"."""
    for error in errors or ():
        original = error.original_error
        if original is not None and unavailable_dependency(original) is not None:
            raise original


class GraphQLEndpoint:
    """The ``/graphql`` ASGI endpoint. Each request runs against its caller's audience
    schema (:mod:`schema.visibility`)."""

    def __init__(self, schema: HubSchema, compiled: CompiledReads | None = None) -> None:
        self.schema = schema
        self.audiences = AudienceSchemas(schema)
        self.compiled = compiled

    @staticmethod
    def _compiled_response(
        compiled: dict[str, Any], media: str, statements: int, settings: Any
    ) -> Response:
        """The response of a query the compiled path answered (:mod:`schema.compiled`)."""
        data = compiled["data"]
        body: dict[str, Any] = {"data": data}
        if compiled.get("errors"):  # remote fields whose subgraph failed
            body["errors"] = compiled["errors"]
        if compiled["withheld"]:
            withheld = withheld_paths(compiled["withheld"], data)
            if withheld:
                body["extensions"] = {"withheld": withheld}
        headers = {}
        if settings.expose_sql_count:
            headers["X-SQL-Statements"] = str(statements)
        return Response(orjson.dumps(body), status_code=200, media_type=media, headers=headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        settings = runtime.settings
        accept = request.headers.get("accept")
        if (
            request.method == "GET"
            and settings.graphiql
            and "text/html" in (accept or "")
            and "query" not in request.query_params
        ):
            return graphiql_page()  # vendored assets, no CDN (hub/console/static/vendor)
        if request.method not in ("GET", "POST"):
            error = {"message": "use GET or POST", "extensions": {"code": "METHOD_NOT_ALLOWED"}}
            return JSONResponse(
                {"errors": [error]}, status_code=405, headers={"Allow": "GET, POST"}
            )
        media = _negotiate(accept)
        if media is None:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": f"Accept {JSON} or {GRAPHQL_RESPONSE}",
                            "extensions": {"code": "NOT_ACCEPTABLE"},
                        }
                    ]
                },
                status_code=406,
            )
        user = request.user if "user" in request.scope else None
        if not isinstance(user, PrincipalUser):
            return unauthorized()
        try:
            params = await self._params(request, settings.max_body_bytes, settings.max_json_depth)
            query = params.get("query")
            if not isinstance(query, str) or not query.strip():
                raise RequestError(400, "query must be a non-empty string")
            if len(query.encode()) > settings.max_document_bytes:
                raise RequestError(
                    400,
                    f"the document is over {settings.max_document_bytes} bytes",
                    "DOCUMENT_TOO_LARGE",
                )
            operation_name = params.get("operationName")
            if operation_name is not None and not isinstance(operation_name, str):
                raise RequestError(400, "operationName must be a string")
            depth = settings.max_json_depth if request.method == "GET" else None
            variables = _json_param(params.get("variables"), "variables", max_depth=depth)
            _json_param(params.get("extensions"), "extensions", max_depth=depth)
        except RequestError as error:
            return self._request_error(error, media)

        context = Context(
            request=request,
            principal=user.principal,
            database=runtime.database,
            settings=settings,
        )
        allowed = (
            (OperationType.QUERY,)
            if request.method == "GET"
            else (OperationType.QUERY, OperationType.MUTATION)
        )
        schema = self.audiences.for_principal(user.principal)
        document = parsed(query, settings.max_tokens)
        if document is not None:
            context.cost = operation_cost(
                schema._schema, document, operation_name, variables, settings.default_page_size
            )
        # Every request spends from its client's budget before it runs: its cost, or 1 when
        # it has none to run or is over the cost limit (then refused, by the resolver path).
        cost = context.cost
        try:
            await runtime.graphql_limiter.spend(
                user.principal.client_id,
                cost if cost is not None and cost <= settings.max_cost else 1,
            )
        except OverBudgetError as error:
            return self._rate_limited(error, media, request)
        if settings.compiled_reads and self.compiled is not None:
            with count_statements() as statements:
                compiled = await self.compiled.answer(
                    schema, query, operation_name, variables, context
                )
            if compiled is not None:
                note_outcome(request.scope, compiled.get("errors"))
                return self._compiled_response(compiled, media, statements[0], settings)
        note_path(request.scope, RESOLVERS)
        request.scope.setdefault("hub.log", {})["read_path"] = RESOLVERS
        with count_statements() as statements:
            try:
                result = await schema.execute(
                    query,
                    variable_values=variables,
                    context_value=context,
                    operation_name=operation_name,
                    allowed_operation_types=allowed,
                )
            except InvalidOperationTypeError:
                if request.method != "GET":
                    # A subscription by POST: the hub serves none over HTTP (a 405 saying
                    # "only queries ... with GET" named the wrong mistake).
                    refusal = "this endpoint runs queries and mutations, not subscriptions"
                    return self._request_error(RequestError(400, refusal), media)
                return Response(
                    status_code=405,
                    headers={"Allow": "POST"},
                    content=json.dumps(
                        {
                            "errors": [
                                {
                                    "message": "only queries may be sent with GET",
                                    "extensions": {"code": "METHOD_NOT_ALLOWED"},
                                }
                            ]
                        }
                    ),
                    media_type=media,
                )
            except MissingQueryError:
                return self._request_error(RequestError(400, "query is required"), media)
            except Exception as error:  # e.g. an unknown operationName
                if unavailable_dependency(error) is not None:
                    raise  # hub.outage answers 503
                return self._request_error(RequestError(400, str(error)), media)
        _raise_outage(result.errors)
        headers = {}
        if settings.expose_sql_count:
            headers["X-SQL-Statements"] = str(statements[0])
        errors = result.errors or []
        request_failed = isinstance(result, PreExecutionError) or (
            result.data is None and errors and all(not e.path for e in errors)
        )
        if request_failed:
            body: dict[str, Any] = {"errors": [format_error(e, phase="request") for e in errors]}
            # The spec: 4xx with graphql-response+json; legacy application/json answers 200.
            status = 400 if media == GRAPHQL_RESPONSE else 200
            note_outcome(request.scope, body["errors"])
            return Response(json.dumps(body), status_code=status, media_type=media, headers=headers)
        body = {"data": result.data}
        if errors:
            body["errors"] = [format_error(e, phase="execution") for e in errors]
        if context.withheld:
            withheld = withheld_paths(context.withheld, result.data)
            if withheld:
                body["extensions"] = {"withheld": withheld}
        note_outcome(request.scope, body.get("errors"))
        return Response(json.dumps(body), status_code=200, media_type=media, headers=headers)

    async def _params(self, request: Request, max_body: int, max_depth: int) -> dict[str, Any]:
        """The request's parameters, every string, key and number in them checked."""
        if request.method == "GET":
            params = dict(request.query_params)
            try:
                check_json(params)
            except InputRefused as error:
                raise RequestError.refused(error) from None
            return params
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        if media != JSON:
            # Refusing form posts and text/plain also blocks cross-site (CSRF) requests.
            raise RequestError(415, f"Content-Type must be {JSON}", "UNSUPPORTED_MEDIA_TYPE")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise RequestError(413, f"the body is over {max_body} bytes", "PAYLOAD_TOO_LARGE")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                raise RequestError(413, f"the body is over {max_body} bytes", "PAYLOAD_TOO_LARGE")
        try:
            # As json.loads(bytes): UTF-8, -16 or -32, told apart by the first bytes.
            params = load_json(body.decode(json.detect_encoding(body)), max_depth=max_depth)
        except InputRefused as error:
            raise RequestError.refused(error) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError(400, "the body is not valid JSON", "BAD_REQUEST") from None
        if isinstance(params, list):
            raise RequestError(400, "batched requests are not supported", "BATCH_NOT_SUPPORTED")
        if not isinstance(params, dict):
            raise RequestError(400, "the body must be a JSON object")
        try:
            check_json(params)
        except InputRefused as error:
            raise RequestError.refused(error) from None
        return params

    @staticmethod
    def _rate_limited(error: OverBudgetError, media: str, request: Request) -> Response:
        """429 (RFC 6585 §4) with ``Retry-After``; the operation did not run."""
        body = {"errors": [{"message": str(error), "extensions": {"code": error.code}}]}
        note_outcome(request.scope, body["errors"])
        return Response(
            json.dumps(body),
            status_code=429,
            media_type=media,
            headers={"Retry-After": str(error.retry_after)},
        )

    @staticmethod
    def _request_error(error: RequestError, media: str) -> Response:
        extensions: dict[str, Any] = {"code": error.code}
        if error.field:
            extensions["field"] = error.field
        body = {"errors": [{"message": str(error), "extensions": extensions}]}
        return Response(json.dumps(body), status_code=error.status, media_type=media)
