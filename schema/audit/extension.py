"""Recording partner reads: the GraphQL side of :mod:`hub.disclosures`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from strawberry.extensions import SchemaExtension

from hub import disclosures
from schema.context import Context


def disclosure_writer(request: Request) -> disclosures.DisclosureWriter | None:
    """The app's background disclosure writer (``app.py`` lifespan), if it runs one."""
    writer = getattr(request.app.state, "disclosures", None)
    return writer if isinstance(writer, disclosures.DisclosureWriter) else None


class ReadAuditExtension(SchemaExtension):
    """Opens a :class:`hub.disclosures.ReadCollector` around each operation of a partner
    (when ``HUB_AUDIT_READS`` is on) and hands what it collected to the background writer.

    The access module feeds the collector from every projection, so every channel a query
    can reach (lists, ``node``, ``_entities``, nested connections, mutation payloads) is
    covered without a per-resolver hook. Staff operations open nothing.

    Example::

        HubSchema(query=Query, extensions=[ReadAuditExtension])
    """

    async def on_operation(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if not isinstance(context, Context):
            yield
            return
        with disclosures.collect(
            context.principal,
            operation=execution.operation_name,
            query=execution.query or "",
            enabled=context.settings.audit_reads,
        ) as reads:
            yield
        if reads is None or not reads.records:
            return
        # Without an operationName the name comes from the document, parsed by now.
        reads.operation = execution.operation_name
        await submit_reads(context, reads)


async def submit_reads(context: Context, reads: disclosures.ReadCollector) -> None:
    """Hand what one request disclosed to the background writer (or write it now)."""
    writer = disclosure_writer(context.request)
    if writer is not None:
        writer.submit(reads)
        return
    # No background writer (an app driven without its lifespan): write it now rather
    # than lose it.
    async with context.database.transaction() as session:
        await disclosures.write_reads(session, [reads])
