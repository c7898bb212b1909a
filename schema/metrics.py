"""Operation metrics: the GraphQL side of :mod:`hub.metrics`."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from hub import metrics
from schema.context import Context


class OperationMetricsExtension(SchemaExtension):
    """Notes which operation (type and name) a request ran on its ASGI scope, for
    :class:`hub.metrics.MetricsMiddleware` to count when the response ends; the HTTP view
    notes the outcome. Only the document tells a query from a mutation, and only
    strawberry's execution context holds the parsed document.

    Example::

        HubSchema(query=Query, extensions=[OperationMetricsExtension])
    """

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        finally:
            execution = self.execution_context
            context = execution.context
            if isinstance(context, Context):
                operation_type: str | None = None
                if execution.graphql_document is not None:
                    try:
                        operation_type = execution.operation_type.value
                    except RuntimeError:  # operationName names no operation of the document
                        operation_type = None
                metrics.note_operation(
                    context.request.scope, operation_type, execution.operation_name
                )
