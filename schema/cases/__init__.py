"""Support cases and their notes: the types, the queries and the writes."""

from schema.areas import Area
from schema.cases.mutations import CaseMutations
from schema.cases.queries import CaseQueries

AREA = Area(position=40, queries=(CaseQueries,), mutations=(CaseMutations,))
