"""Customers: the customer type, its queries (lists, lookups, duplicates, the review
queue) and its writes (create, update, upsert, merge, proposed-change decisions)."""

from schema.areas import Area
from schema.customers.mutations import CustomerMutations
from schema.customers.queries import CustomerQueries, ReviewQueries

AREA = Area(position=10, queries=(CustomerQueries, ReviewQueries), mutations=(CustomerMutations,))
