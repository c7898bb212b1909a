"""Outbound webhook subscriptions, managed by each subscriber for its own organization
(``webhooks:manage``): create (the secret shown once), rotate the secret, pause,
resume, and the deliveries made (docs/deliveries.md)."""

from schema.areas import Area
from schema.webhooks.mutations import WebhookMutations
from schema.webhooks.queries import WebhookQueries

AREA = Area(position=90, queries=(WebhookQueries,), mutations=(WebhookMutations,))
